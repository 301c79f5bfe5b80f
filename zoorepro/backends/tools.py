"""What every vendor-tool backend needs once: run a tool, probe its version, say it is missing.

- `run_tool`: run a vendor tool, stream its console into ours (the step's log) and return all of
  it (some results are parsed from it); a non-zero exit becomes one error carrying the tail.
- `first_line`: the first non-empty line of a command that exits 0, else None (version probes).
- `toolchain_missing` / `portable_hint`: the one "missing tool" message: which tool, how to get
  it, and the portable target to run instead. There is never a silent fallback to another target.
"""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import ToolchainMissing, ZooreproError

LOG_TAIL_LINES = 40
LOG_TAIL_CHARS = 4000
PROBE_TIMEOUT_S = 120
# The portable targets (params.yaml `targets`, backend onnxruntime), in the order to suggest them.
PORTABLE_TARGETS = {
    "cpu": f"`cpu` (snakemake {ToolchainMissing.TABLE}_cpu.csv)",
    "cuda": "`cuda` where onnxruntime-gpu is installed",
}


def portable_hint(target: str | None = None) -> str:
    """The portable targets to run instead of `target` (never `target` itself)."""
    options = [text for name, text in PORTABLE_TARGETS.items() if name != target]
    if len(options) == 1:
        return f"or run the portable target {options[0]} instead"
    return f"or run a portable target instead: {', or '.join(options)}"


def toolchain_missing(target: str, toolchain: str, missing: Sequence[str]) -> ToolchainMissing:
    """One error for everything a target lacks: each entry names a missing piece and how to get
    it; the portable targets close the message."""
    return ToolchainMissing(f"target {target!r} needs {toolchain}: {'; '.join(missing)}; {portable_hint(target)}.")


def tail(output: str, lines: int = LOG_TAIL_LINES, chars: int = LOG_TAIL_CHARS) -> str:
    """The last `lines` lines of a tool's console, at most `chars` characters."""
    return "\n".join(output.rstrip("\n").splitlines()[-lines:])[-chars:]


def argv_words(args: Sequence[str], what: str = "tool_args") -> list[str]:
    """Extra flags are argv words: a sequence of strings, never one string (which would be split
    into characters)."""
    if isinstance(args, str) or not all(isinstance(a, str) for a in args):
        raise ZooreproError(f"{what} must be a list of strings, got {args!r}")
    return list(args)


def run_tool(argv: Sequence[str], tool: str, *, cwd: Path | None = None,
             env: Mapping[str, str] | None = None) -> str:
    """Run a vendor tool (stdin closed, stderr merged into stdout), echo each line to our stdout
    as it comes and return the whole console. A tool that cannot start is ToolchainMissing; a
    non-zero exit is one ZooreproError with the tail of the console, where the tools say why."""
    argv = [str(a) for a in argv]
    lines: list[str] = []
    try:
        with subprocess.Popen(
            argv, cwd=cwd, env=None if env is None else dict(env), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
        ) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                sys.stdout.write(line)
                lines.append(line)
    except OSError as exc:
        raise ToolchainMissing(f"cannot start {tool} (`{argv[0]}`): {exc}; {portable_hint()}.") from None
    sys.stdout.flush()
    output = "".join(lines)
    if proc.returncode != 0:
        raise ZooreproError(f"{tool} failed (exit {proc.returncode}):\n{tail(output)}")
    return output


def first_line(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str | None:
    """First non-empty output line of a command that exits 0, else None (an absent tool, a tool
    without the flag, a hang past PROBE_TIMEOUT_S)."""
    try:
        proc = subprocess.run(
            [str(a) for a in argv], check=False, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, errors="replace", timeout=PROBE_TIMEOUT_S,
            env=None if env is None else dict(env),
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
    return lines[0] if proc.returncode == 0 and lines else None


def python_module_available(python: str, module: str) -> bool:
    """Whether `python -c 'import importlib.util; find_spec(module)'` finds the module, in that
    interpreter (it sees PYTHONPATH as a real run will)."""
    probe = [python, "-c", f"import importlib.util,sys; sys.exit(importlib.util.find_spec({module!r}) is None)"]
    try:
        return subprocess.run(probe, check=False, capture_output=True, timeout=PROBE_TIMEOUT_S).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _git_toplevel(path: Path) -> Path | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=path, capture_output=True, text=True,
                             check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return Path(out).resolve()


def checkout_pin(path: Path | None, pin: str, setting_key: str) -> str:
    """A vendor source the document clones from a moving branch, held to a pinned commit:
    'verified <pin>' when `path` sits in a git checkout at the pin, 'unverified (not a git
    checkout)' when it is not in a git checkout of its own (a copy, or a test's stand-in inside
    this project); a checkout at another commit is refused, saying how to fix it."""
    from ..config import REPO_ROOT
    from ..provenance import git_state

    state = git_state(path) if path is not None and path.is_dir() else {}
    top = _git_toplevel(path) if path is not None and state.get("commit") else None
    if top is None or top == REPO_ROOT:
        return "unverified (not a git checkout)"
    if state["commit"] != pin:
        raise ZooreproError(f"{path} is a checkout at {state['commit']}, not the pinned {pin}: "
                            f"`git -C {top} checkout {pin}` (or set {setting_key})")
    return f"verified {pin}"
