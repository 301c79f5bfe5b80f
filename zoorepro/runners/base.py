"""What every runner provides (see zoorepro/runners/__init__.py)."""
from __future__ import annotations

import abc
from collections.abc import Sequence

from ..errors import ToolchainMissing


class Runner(abc.ABC):
    """A framework that runs a model's own code on a target. Constructed from the target's
    params.yaml `targets` entry; construction probes nothing (the rules build runners while
    planning the DAG), only `check(probe=True)` and `versions()` import the framework."""

    name: str = "base"
    framework: str = ""                 # e.g. "PaddlePaddle"
    hardware: tuple[str, ...] = ()      # the target hardware kinds it can drive

    def __init__(self, target: str, settings: dict):
        self.target = target
        self.settings = dict(settings)

    @property
    def target_hardware(self) -> str:
        return str(self.settings["hardware"])

    def check(self, model: str, probe: bool = True) -> None:
        """Raise ToolchainMissing (what is missing, how to get it, the portable target) unless
        `model` can run on this target; `probe=False` (a dry run) checks only the params."""
        if self.target_hardware not in self.hardware:
            raise ToolchainMissing(
                f"{model} runs on {self.framework} ({' or '.join(self.hardware)}); target {self.target!r} is "
                f"{self.target_hardware}: run `snakemake {ToolchainMissing.TABLE.replace('<model>', model)}_cpu.csv` instead")
        if probe:
            self.probe()

    @abc.abstractmethod
    def probe(self) -> None:
        """Import the framework and refuse a device it cannot use here (no silent fallback)."""

    # hardware kind -> the framework's own name for that device (e.g. paddle's cuda -> `gpu`)
    devices: dict[str, str] = {}

    @property
    def device(self) -> str:
        """The framework's own name for the target's device (`devices`), or ToolchainMissing."""
        try:
            return self.devices[self.target_hardware]
        except KeyError:
            raise ToolchainMissing(f"target {self.target!r} ({self.target_hardware}) has no {self.framework} device "
                                   f"({self.framework} runs on {', '.join(self.devices)})") from None

    @abc.abstractmethod
    def versions(self) -> dict:
        """Framework version and device environment, for provenance."""

    def launch_command(self, script: str, args: Sequence[str], devices: int | str, log_dir: str) -> list[str]:
        """The command that runs a training `script` with `args` over `devices` through the
        framework's distributed launcher (logs per process under `log_dir`); runners that have one
        override it."""
        raise ToolchainMissing(f"{self.name} runner: no distributed launcher")
