"""MindIE-LLM (Ascend NPU): a model's MindIE example script (its pipeline.py `MINDIE_SCRIPT`, a path
under `examples/atb_models`, e.g. `bash <script> WEIGHT VIDEO_DIR QA_ROOT OUT`) run from
`examples/atb_models` of a MindIE-LLM checkout. The one place that knows where that checkout is, what
it needs (torch_npu, its `atb_llm` package, CANN) and the environment the documents set.

The checkout: `$MINDIE_LLM_HOME` (or the target's `mindie_home` setting), pinned to PINNED_COMMIT,
the commit the research notes read (../shared/upstream/); a git checkout's HEAD
is recorded and compared with the pin (a different commit is reported, not refused: a vendor tree
often comes as an unpacked archive with no git metadata, recorded as "unknown").

The environment (DOCUMENT_ENV, the document's "环境变量说明"): MASTER_PORT=20030 (the document
advises 20000-20050), ASCEND_RT_VISIBLE_DEVICES (the document's example 0,...,7) and eight ATB/
runtime variables. The document says these "can be changed inside run_pa_videobench.sh": the
script exports its own ASCEND_RT_VISIBLE_DEVICES (6 at the pinned commit, per the notes) and, in a
public copy of it, its own ATB_* set, which win over what a caller exports. The step passes the
document's values and records them; to choose the cards, edit the script as the document says.

A test stand-in tree (tests/standins/mindie) carries a STANDIN_MARKER file at its root;
`versions()` reports `standin: true` for it, and tables built from it say so.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ..errors import ConfigError, ToolchainMissing
from .base import Runner

PINNED_COMMIT = "8b4871ad31f592aa863f6255760e4934484d78e4"
REPOSITORY = "https://github.com/Ascend/MindIE-LLM"
HOME_VARIABLE = "MINDIE_LLM_HOME"
ATB_MODELS = Path("examples") / "atb_models"
STANDIN_MARKER = "ZOOREPRO_STANDIN"
MASTER_PORT = 20030
PORT_RANGE = (20000, 20050)
DOCUMENT_ENV = {
    "ATB_LAYER_INTERNAL_TENSOR_REUSE": "1",
    "INF_NAN_MODE_ENABLE": "0",
    "ATB_OPERATION_EXECUTE_ASYNC": "1",
    "TASK_QUEUE_ENABLE": "1",
    "ATB_CONVERT_NCHW_TO_ND": "1",
    "LCCL_ENABLE_FALLBACK": "1",
    "ATB_WORKSPACE_MEM_ALLOC_GLOBAL": "1",
    "ATB_CONTEXT_WORKSPACE_SIZE": "0",
}
HOW_TO_GET = (f"MindIE-LLM ({REPOSITORY} at commit {PINNED_COMMIT[:10]}; set ${HOME_VARIABLE} to the checkout), "
              "the CANN toolkit and its set_env.sh, and torch_npu matching torch (pip install torch-npu) on an "
              "Ascend host")
_PROBE = ("import json, importlib.metadata as m\n"
          "import torch_npu, atb_llm\n"
          "def v(mod, dist):\n"
          "    try:\n        return m.version(dist)\n"
          "    except Exception:\n        return getattr(mod, '__version__', None)\n"
          "print(json.dumps({'torch_npu': v(torch_npu, 'torch-npu'), 'atb_llm': v(atb_llm, 'atb_llm'),"
          " 'atb_llm_file': atb_llm.__file__}))\n")


def mindie_home(settings: dict | None = None) -> Path | None:
    """The MindIE-LLM checkout: $MINDIE_LLM_HOME, else the target's `mindie_home`; None when neither."""
    value = os.environ.get(HOME_VARIABLE) or (settings or {}).get("mindie_home")
    return Path(value).expanduser().resolve() if value else None


def python_path(home: Path) -> str:
    """PYTHONPATH with the checkout's examples/atb_models (where atb_llm lives) in front."""
    current = os.environ.get("PYTHONPATH")
    entry = str(home / ATB_MODELS)
    return f"{entry}{os.pathsep}{current}" if current else entry


def probe_imports(home: Path, python: str | None = None) -> dict:
    """Import torch_npu and atb_llm in the interpreter the script will run (`python` on PATH,
    as run_pa_videobench.sh's torchrun finds it), with examples/atb_models on the path; their
    versions, or ToolchainMissing naming what failed."""
    import shutil

    python = python or shutil.which("python3") or shutil.which("python") or sys.executable
    env = {**os.environ, "PYTHONPATH": python_path(home)}
    try:
        done = subprocess.run([python, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=300, check=False,
                              cwd=home / ATB_MODELS)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolchainMissing(f"cannot run {python} to probe torch_npu/atb_llm: {exc}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise ToolchainMissing(
            f"MindIE-LLM at {home}: {python} cannot import torch_npu and atb_llm (with {home / ATB_MODELS} on the "
            f"path): {last}. Needs {HOW_TO_GET}; or run the portable table "
            f"`{ToolchainMissing.TABLE}_cpu.csv`")
    try:
        return {**json.loads(done.stdout.strip().splitlines()[-1]), "python": python}
    except (json.JSONDecodeError, IndexError):
        raise ToolchainMissing(f"probing torch_npu/atb_llm with {python} printed no versions: {done.stdout!r}") from None


def script_of(model: str) -> Path:
    """The model's MindIE example script, relative to examples/atb_models (pipeline.py MINDIE_SCRIPT)."""
    from .. import models

    script = getattr(models.pipeline(model), "MINDIE_SCRIPT", None)
    if script is None:
        raise ConfigError(f"{model} names no MindIE example script (pipeline.py MINDIE_SCRIPT)")
    return Path(script)


def check_home(settings: dict | None = None, script: Path | None = None) -> Path:
    """The checkout (holding `script`, when given); else ToolchainMissing (what, how, the portable target)."""
    home = mindie_home(settings)
    if home is None:
        raise ToolchainMissing(
            f"the npu target runs MindIE-LLM, and ${HOME_VARIABLE} is not set: needs "
            f"{HOW_TO_GET}; or run the portable table `{ToolchainMissing.TABLE}_cpu.csv`")
    if script is not None and not (home / ATB_MODELS / script).is_file():
        raise ToolchainMissing(
            f"${HOME_VARIABLE}={home} is not a MindIE-LLM checkout with this model's example "
            f"({home / ATB_MODELS / script} missing): needs {HOW_TO_GET}; or run the portable table "
            f"`{ToolchainMissing.TABLE}_cpu.csv`")
    return home


def git_commit(home: Path) -> str:
    """HEAD of a git checkout, "unknown" otherwise."""
    if not (home / ".git").exists():
        return "unknown"
    try:
        done = subprocess.run(["git", "-C", str(home), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else "unknown"


def is_standin(home: Path) -> bool:
    return (home / STANDIN_MARKER).is_file()


def master_port(settings: dict | None = None) -> int:
    """MASTER_PORT from the environment, else the target's `master_port`, else the document's 20030."""
    value = os.environ.get("MASTER_PORT") or (settings or {}).get("master_port") or MASTER_PORT
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"MASTER_PORT must be a port number, not {value!r}") from None
    if not 1 <= port <= 65535:
        raise ConfigError(f"MASTER_PORT {port} is not a port number")
    return port


def environment(settings: dict | None = None) -> dict[str, str]:
    """What the step exports for run_pa_videobench.sh: MASTER_PORT, ASCEND_RT_VISIBLE_DEVICES and
    DOCUMENT_ENV (module docstring)."""
    devices = os.environ.get("ASCEND_RT_VISIBLE_DEVICES") or str((settings or {}).get("visible_devices", "0"))
    return {"MASTER_PORT": str(master_port(settings)), "ASCEND_RT_VISIBLE_DEVICES": devices, **DOCUMENT_ENV}


class MindIERunner(Runner):
    name = "mindie"
    framework = "MindIE-LLM"
    hardware = ("npu",)

    @property
    def device(self) -> str:
        if self.target_hardware != "npu":
            raise ToolchainMissing(f"target {self.target!r} ({self.target_hardware}) is not an Ascend NPU "
                                   "(MindIE-LLM runs on npu)")
        return "npu"

    @property
    def home(self) -> Path:
        return check_home(self.settings)

    def check(self, model: str, probe: bool = True) -> None:
        """The target's hardware, then (probing) the checkout with the model's example script and
        torch_npu/atb_llm importable."""
        super().check(model, probe=False)
        if probe:
            probe_imports(check_home(self.settings, script_of(model)))

    def probe(self) -> None:
        probe_imports(check_home(self.settings))

    def environment(self) -> dict[str, str]:
        return environment(self.settings)

    def port_warning(self) -> str | None:
        port = master_port(self.settings)
        low, high = PORT_RANGE
        return None if low <= port <= high else f"MASTER_PORT {port} is outside the document's advised {low}-{high}"

    def versions(self) -> dict:
        from ..backends.ascend.cann import toolkit_version

        home = mindie_home(self.settings)
        record = {"runner": self.name, "device": "npu", "mindie_llm_home": str(home) if home else None,
                  "mindie_llm_pinned_commit": PINNED_COMMIT, "cann": toolkit_version() or "unknown",
                  "environment": self.environment(), "standin": bool(home and is_standin(home))}
        if home is not None:
            commit = git_commit(home)
            record["mindie_llm_commit"] = commit
            record["mindie_llm_commit_matches_pin"] = (commit == PINNED_COMMIT) if commit != "unknown" else None
            try:
                record.update(probe_imports(home))
            except ToolchainMissing as exc:
                record["probe_error"] = str(exc)
        return record

    def command(self, script: Path, *args) -> list[str]:
        """`bash <script> ARGS...`, the documents' command line (run from examples/atb_models: `cwd()`)."""
        return ["bash", str(script), *[str(x) for x in args]]

    def cwd(self) -> Path:
        return self.home / ATB_MODELS
