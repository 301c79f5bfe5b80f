"""The project's error types: every expected failure is one of these, with one clear message."""


class ZooreproError(Exception):
    """Base class: a failure the user can act on. The CLI prints the message and exits 2."""


class ConfigError(ZooreproError):
    """params.yaml (or a value derived from it) is invalid; the message names the key."""


class ToolchainMissing(ZooreproError):
    """A target's vendor toolchain is not installed. The message says which tool is missing,
    how to get it, and which portable target (cpu, cuda) to run instead; a backend, which knows no
    model or scale, names the portable table as `results[/mini]/<model>_cpu.csv`."""

    TABLE = "results[/mini]/<model>"

    def for_table(self, model: str, resdir: str) -> "ToolchainMissing":
        """The same refusal with the portable table of this model and scale named (its caller,
        planning a table, knows both): e.g. results/mini/vilbert_cpu.csv."""
        return ToolchainMissing(str(self).replace(self.TABLE, f"{resdir}/{model}"))


class ChecksumError(ZooreproError):
    """A downloaded or supplied file does not have the pinned sha256."""


class UnsafeArchiveError(ZooreproError):
    """An archive is truncated/corrupt or a member would land outside the extraction folder."""


class ShapeMismatchError(ZooreproError):
    """An ONNX model's input shapes differ from what the config asks for."""


class UnsafePickleError(ZooreproError):
    """A pickle asked for a global that the restricted unpickler does not admit."""
