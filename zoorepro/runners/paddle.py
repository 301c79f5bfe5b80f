"""PaddlePaddle: PaddleVideo's main.py runs in paddle on `cpu`, or on `gpu` with a CUDA build of
paddle (paddlepaddle-gpu). The one place that knows how a target maps to a paddle device and what
paddle needs to use it."""
from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from ..errors import ToolchainMissing
from .base import Runner

DEVICES = {"cpu": "cpu", "cuda": "gpu"}


def check_device(device: str) -> None:
    """Refuse a paddle device this paddle cannot use, before a run fails deep inside PaddleVideo:
    `gpu` needs a CUDA build of paddle (no silent fallback to cpu)."""
    if device not in DEVICES.values():
        raise ToolchainMissing(f"paddle device {device!r}: expected one of {', '.join(DEVICES.values())}")
    if device == "cpu":  # every paddle build runs on the cpu; no import while the DAG is planned
        return
    import paddle

    if not paddle.device.is_compiled_with_cuda():
        raise ToolchainMissing(f"paddle {paddle.__version__} here is a CPU build: a `gpu` run needs paddlepaddle-gpu "
                               "(pip install paddlepaddle-gpu matching the CUDA driver), or run on the portable "
                               "target `cpu`")


class PaddleRunner(Runner):
    name = "paddle"
    framework = "PaddlePaddle"
    hardware = tuple(DEVICES)

    @property
    def device(self) -> str:
        try:
            return DEVICES[self.target_hardware]
        except KeyError:
            raise ToolchainMissing(f"target {self.target!r} ({self.target_hardware}) has no paddle device "
                                   f"(paddle runs on {', '.join(DEVICES)})") from None

    def probe(self) -> None:
        check_device(self.device)

    def versions(self) -> dict:
        import paddle

        env = {k: os.environ[k] for k in ("CUDA_VISIBLE_DEVICES", "FLAGS_selected_gpus") if k in os.environ}
        return {"runner": self.name, "paddle": paddle.__version__, "device": self.device,
                "cuda_build": bool(paddle.device.is_compiled_with_cuda()), "device_environment": env}

    def launch_command(self, argv: Sequence[str], nprocs: int = 1) -> list[str]:
        """One process: the interpreter; several: paddle.distributed.launch over `nprocs` devices
        (GPU ids 0..n-1 on `gpu`, that many CPU processes on `cpu`)."""
        if nprocs == 1:
            return [sys.executable, *argv]
        if self.device == "gpu":
            devices = ["--gpus", ",".join(str(i) for i in range(nprocs))]
        else:
            devices = ["--nproc_per_node", str(nprocs)]
        return [sys.executable, "-m", "paddle.distributed.launch", *devices, *argv]
