"""PaddlePaddle: PaddleVideo's main.py runs in paddle on `cpu`, or on `gpu` with a CUDA build of
paddle (paddlepaddle-gpu). The one place that knows how a target maps to a paddle device and what
paddle needs to use it."""
from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence

from ..errors import ConfigError, ToolchainMissing
from .base import Runner

DEVICES = {"cpu": "cpu", "cuda": "gpu"}
GPU_IDS = re.compile(r"\d+(,\d+)*")


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
    devices = DEVICES

    def probe(self) -> None:
        check_device(self.device)

    def versions(self) -> dict:
        import paddle

        env = {k: os.environ[k] for k in ("CUDA_VISIBLE_DEVICES", "FLAGS_selected_gpus") if k in os.environ}
        return {"runner": self.name, "paddle": paddle.__version__, "device": self.device,
                "cuda_build": bool(paddle.device.is_compiled_with_cuda()), "device_environment": env}

    def launch_args(self, devices: int | str, log_dir: str) -> list[str]:
        """paddle.distributed.launch's own options: on `gpu` the GPU ids to run on (`--gpus=0,1,...`,
        one process each, as the documents write it), on `cpu` a number of processes
        (`--nproc_per_node=N`; cpu has no device ids), then `--log_dir` (one workerlog.N per process)."""
        if self.device == "gpu":
            if isinstance(devices, bool) or not isinstance(devices, str) or not GPU_IDS.fullmatch(devices):
                raise ConfigError(f"target {self.target!r} (paddle gpu): devices must be the GPU ids to run on, "
                                  f'e.g. "0,1,2,3,4,5,6,7" (--gpus), not {devices!r}')
            ids = devices.split(",")
            if len(set(ids)) != len(ids):
                raise ConfigError(f"target {self.target!r}: GPU id listed twice in devices {devices!r}")
            spec = f"--gpus={devices}"
        else:
            if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
                raise ConfigError(f"target {self.target!r} (paddle cpu): devices must be a number of processes "
                                  f"(--nproc_per_node; cpu has no device ids), not {devices!r}")
            spec = f"--nproc_per_node={devices}"
        return [spec, f"--log_dir={log_dir}"]

    @staticmethod
    def process_count(devices: int | str) -> int:
        """How many processes launch_args starts for `devices` (one per GPU id, or the count)."""
        return devices if isinstance(devices, int) else len(str(devices).split(","))

    def check_amp(self) -> None:
        """Refuse automatic mixed precision where paddle has no fp16 kernels to run it: AMP
        (main.py --amp, paddle.amp.auto_cast O1 + GradScaler) needs a GPU; never ignored on cpu."""
        if self.device != "gpu":
            raise ConfigError(f"AMP needs a GPU: target {self.target!r} runs paddle on {self.device}, where "
                              "main.py --amp has no fp16 kernels to use")

    def launch_command(self, script: str, args: Sequence[str], devices: int | str, log_dir: str) -> list[str]:
        """paddle.distributed.launch running the training `script` with `args` on `devices`
        (launch_args). The launcher takes a script path, not a module: a `*.py` it runs as
        `python -u script`, anything else as an executable."""
        if not str(script).endswith(".py"):
            raise ConfigError(f"paddle.distributed.launch runs a script path ending in .py, not {script!r}")
        return [sys.executable, "-B", "-m", "paddle.distributed.launch", *self.launch_args(devices, log_dir),
                str(script), *args]
