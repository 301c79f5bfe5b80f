"""transformers (PyTorch): a model's own step runs transformers' classes on `cuda`, and on `cpu`
for the mini chain. The one place that knows how a target maps to a torch
device and how the step is launched over several processes.

Launching: the documents start `torchrun --nproc_per_node N --master_port PORT -m <module>`. Here
N > 1 processes start as `python -m torch.distributed.run --standalone --nproc_per_node N -m
<the model's step module> ...` (`--standalone`: a free rendezvous port, so two rules
running at once never collide on a fixed MASTER_PORT), one process per GPU, the questions sharded
over them. One process starts as plain `python -m ...`: torchrun's own interpreter imports torch
(about 4 s on the 2-core development machine, measured) before it starts the worker, and a worker
of one has nothing to rendezvous with, so the cpu mini chain never pays it.
"""
from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence

from ..errors import ConfigError, ToolchainMissing
from .base import Runner

DEVICES = {"cpu": "cpu", "cuda": "cuda"}
GPU_IDS = re.compile(r"\d+(,\d+)*")


def check_device(device: str) -> None:
    """Refuse a torch device this host cannot use, before any model is loaded: `cuda` needs a
    CUDA build of torch that sees a GPU (no silent fallback to cpu, which the document's script
    did: `cuda if available else cpu`)."""
    if device not in DEVICES.values():
        raise ToolchainMissing(f"torch device {device!r}: expected one of {', '.join(DEVICES.values())}")
    if device == "cpu":
        return
    import torch

    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU-only build"
        raise ToolchainMissing(
            f"torch {torch.__version__} ({build}) sees no CUDA GPU here (CUDA_VISIBLE_DEVICES="
            f"{os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')!s}): a `cuda` run needs an NVIDIA GPU, its driver "
            f"and a CUDA build of torch; or run the portable table `{ToolchainMissing.TABLE}_cpu.csv`")


def dist_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment, in a step that launch_command
    started; (0, 1, 0) when run alone."""
    try:
        return (int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")),
                int(os.environ.get("LOCAL_RANK", "0")))
    except ValueError as exc:
        raise ConfigError(f"torchrun environment: {exc}") from None


class TransformersRunner(Runner):
    name = "transformers"
    framework = "transformers (PyTorch)"
    hardware = tuple(DEVICES)
    devices = DEVICES

    def probe(self) -> None:
        check_device(self.device)

    def versions(self) -> dict:
        import av
        import torch
        import transformers

        record = {"runner": self.name, "torch": torch.__version__, "transformers": transformers.__version__,
                  "av": av.__version__, "device": self.device, "torch_cuda": torch.version.cuda,
                  "device_environment": {k: os.environ[k] for k in ("CUDA_VISIBLE_DEVICES",) if k in os.environ}}
        if self.device == "cuda" and torch.cuda.is_available():
            record["cuda_devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        return record

    @staticmethod
    def process_count(devices: int | str) -> int:
        """How many processes `devices` means: a count, or one per GPU id in "0,1,..."."""
        return devices if isinstance(devices, int) else len(str(devices).split(","))

    def launch_env(self, devices: int | str) -> dict[str, str]:
        """The environment a launch over `devices` needs: on cuda, GPU ids -> CUDA_VISIBLE_DEVICES."""
        if self.device == "cuda" and isinstance(devices, str):
            if not GPU_IDS.fullmatch(devices):
                raise ConfigError(f"target {self.target!r}: devices must be GPU ids like \"0,1\", not {devices!r}")
            return {"CUDA_VISIBLE_DEVICES": devices}
        return {}

    def launch_command(self, script: str, args: Sequence[str], devices: int | str = 1,
                       log_dir: str | None = None) -> list[str]:
        """The command that runs the module `script` (a model's step module) with
        `args` in `devices` processes (a count, or GPU ids on cuda: one process each): plain
        `python -m` for one, `torch.distributed.run --standalone` for more (module docstring);
        `log_dir`: torchrun's per-process logs."""
        if isinstance(devices, bool) or not isinstance(devices, (int, str)):
            raise ConfigError(f"target {self.target!r}: devices must be a process count or GPU ids, not {devices!r}")
        if isinstance(devices, str) and self.device == "cpu":
            raise ConfigError(f"target {self.target!r} (cpu): devices must be a number of processes, not {devices!r}")
        self.launch_env(devices)
        nproc = self.process_count(devices)
        if nproc < 1:
            raise ConfigError(f"target {self.target!r}: at least one process, not {devices!r}")
        if nproc == 1:
            return [sys.executable, "-m", script, *args]
        logs = ["--log-dir", str(log_dir)] if log_dir else []
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
                *logs, "-m", script, *args]
