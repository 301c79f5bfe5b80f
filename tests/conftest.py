"""Shared test setup: the repo root on sys.path, and tiny ONNX builders."""
import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from zoorepro import repocopy

# The suite runs two workers and the mini DAG's build on two cores: OpenMP threads (torch's) that
# busy-wait for work while another process holds the core burn CPU the others need. Waiting
# threads sleep instead; results do not depend on it (the thread count is what changes sums).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def tiny_onnx(path: Path, batch: int | str = 2, seed: int = 0) -> Path:
    """A two-input model (float features + bool mask) with two outputs, like ViLBERT's logits/probs."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array(rng.standard_normal((8, 5)).astype(np.float32), "w")
    nodes = [
        helper.make_node("Cast", ["m"], ["mf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mf", "ax"], ["mu"]),
        helper.make_node("Mul", ["x", "mu"], ["xm"]),
        helper.make_node("ReduceSum", ["xm", "ax1"], ["pooled"], keepdims=0),
        helper.make_node("MatMul", ["pooled", "w"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["probs"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 8]),
         helper.make_tensor_value_info("m", TensorProto.BOOL, [batch, 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 5]),
         helper.make_tensor_value_info("probs", TensorProto.FLOAT, [batch, 5])],
        [w, numpy_helper.from_array(np.array([-1], np.int64), "ax"),
         numpy_helper.from_array(np.array([1], np.int64), "ax1")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def write_samples(root: Path, n: int, seed: int = 1) -> list[Path]:
    """Per-sample folders x/ and m/ with 0.npy .. n-1.npy (leading batch dim 1)."""
    rng = np.random.default_rng(seed)
    dirs = [root / "x", root / "m"]
    for d in dirs:
        d.mkdir(parents=True)
    for i in range(n):
        np.save(dirs[0] / f"{i}.npy", rng.standard_normal((1, 3, 8)).astype(np.float32))
        np.save(dirs[1] / f"{i}.npy", rng.random((1, 3)) > 0.3)
    return dirs


class RunsCommand:
    """A pickle payload that runs a shell command when loaded by a plain unpickler."""

    def __reduce__(self):
        import os
        return os.system, ("touch marker",)


class CallsEval:
    def __reduce__(self):
        return eval, ("1 + 1",)


class Rot13Codec:
    """Asks `_codecs.encode` for a codec other than latin-1 (a codec name imports a module)."""

    def __reduce__(self):
        import codecs
        return codecs.encode, ("abc", "rot13")


@pytest.fixture(scope="session")
def patched_src(tmp_path_factory) -> Path:
    """allennlp + allennlp_models 2.10.1 patched as the vilbert_sources rule patches them, first on
    sys.path. Collecting other test modules may already have half-imported the unpatched
    site-packages copy (it fails on this stack), so those modules are dropped first."""
    from zoorepro.vilbert.sources import PACKAGES, activate, prepare_sources

    dest = tmp_path_factory.mktemp("src") / "vilbert"
    prepare_sources(dest, ROOT / "patches")
    for name in [n for n in sys.modules if n.split(".")[0] in PACKAGES]:
        del sys.modules[name]
    activate(dest)
    return dest


@pytest.fixture
def params():
    from zoorepro.config import load_params
    return load_params()


VENV_BIN = Path(sys.executable).parent


def copy_repo(dest: Path) -> Path:
    """A scratch git repo copy of this checkout (zoorepro.repocopy.copy_repo), so DAG tests never
    touch the checkout's data, work or results."""
    return repocopy.copy_repo(dest, ROOT)


# The cold build runs `dvc repro` in phases: first the stages step tests read (and what they depend
# on), one at a time in the order the test modules ask for them, so those tests start while the rest
# builds; then a plain `dvc repro` of everything left. Every stage still runs once, from nothing.
MINI_DAG_FIRST_STAGES = ["actbert_data_mini", "vilbert_data_mini", "vilbert_prepare_mini"]
MINI_DAG_PHASES = {**{stage: [stage] for stage in MINI_DAG_FIRST_STAGES}, "all": []}


def build_mini_dag(shared: Path, upto: str = "all") -> Path:
    """`shared`/mini_dag/repo: a repo copy in which `dvc repro` ran from nothing, phase by phase
    (MINI_DAG_PHASES; `<phase>.done` marks each) up to `upto`, unless an earlier call (another
    xdist worker, or the controller's background build) built that far. One at a time (a file
    lock); the builder's pid is in `building`; a failed build leaves `failed` with its output, and
    every later caller fails with it."""
    import shutil

    from filelock import FileLock

    root = shared / "mini_dag"
    repo = root / "repo"
    with FileLock(str(shared / "mini_dag.lock")):
        _raise_if_failed(root)
        if (root / f"{upto}.done").exists():
            return repo
        if not (root / "copied").exists():
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir()
            copy_repo(repo)
            (root / "copied").touch()
        (root / "building").write_text(str(os.getpid()))
        try:
            for phase, stages in MINI_DAG_PHASES.items():
                if not (root / f"{phase}.done").exists():
                    proc = run(["dvc", "repro", *stages], cwd=repo, timeout=2400, check=False)
                    with open(repo / "repro.log", "a") as log:
                        log.write(proc.stdout + proc.stderr)
                    if proc.returncode != 0:
                        (root / "failed").write_text(f"dvc repro {' '.join(stages)} failed ({proc.returncode}):\n"
                                                     f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
                        _raise_if_failed(root)
                    (root / f"{phase}.done").touch()
                if phase == upto:
                    break
        finally:
            (root / "building").unlink()
    return repo


def _raise_if_failed(root: Path) -> None:
    if (root / "failed").exists():
        raise AssertionError(f"the mini DAG's cold build failed: {(root / 'failed').read_text()}")


def mini_dag_phase(shared: Path, phase: str) -> Path:
    """The shared build's repo once `phase` is built: waits while another process builds it,
    builds it here (up to `phase`) when nobody does."""
    import time

    root = shared / "mini_dag"
    while not (root / f"{phase}.done").exists():
        _raise_if_failed(root)
        try:
            os.kill(int((root / "building").read_text()), 0)
        except (OSError, ValueError):  # no builder, or it died: build (or wait on the lock) here
            return build_mini_dag(shared, phase)
        time.sleep(1)
    return root / "repo"


def pytest_configure(config):
    """xdist workers (`make test`) run at a lower CPU priority than the mini DAG's background build:
    the tests that need the build wait for it, the others fill the cores it leaves idle."""

    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.nice(10)


def pytest_collection_modifyitems(session, config, items):
    """The order xdist hands test modules out in (`make test`: --dist loadfile
    --no-loadscope-reorder): first the modules that read stages of the shared build built first
    (mini_stage), then the ones that need no build, biggest first, and last the ones that need the
    whole build (mini_dag) — so a worker waits for the build only when nothing else is left."""
    modules: dict[str, list] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::")[0], []).append(item)

    def rank(entry):
        path, module_items = entry
        fixtures = set().union(*(getattr(item, "fixturenames", ()) for item in module_items))
        return (0 if "mini_stage" in fixtures else 2 if "mini_dag" in fixtures else 1, -len(module_items), path)
    items[:] = [item for _, module_items in sorted(modules.items(), key=rank) for item in module_items]


def pytest_sessionstart(session):
    """Under pytest-xdist (`make test`), the controller starts the mini DAG's cold build in the
    background at once, when the whole suite runs: it is the longest job, and the first tests
    handed out (pytest_collection_modifyitems) read its first stages. Workers wait for a stage in
    `mini_stage` / `mini_dag` (marker files, mini_dag_phase)."""
    import subprocess

    config = session.config
    if os.environ.get("PYTEST_XDIST_WORKER") or not getattr(config.option, "numprocesses", None):
        return
    if any(Path(arg).resolve() not in (ROOT, ROOT / "tests") for arg in config.args):
        return  # a selection: the build starts when a test asks for it
    shared = config._tmp_path_factory.getbasetemp()
    code = ("import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
            "from conftest import build_mini_dag; build_mini_dag(Path(sys.argv[2]))")
    log = open(shared / "mini_dag.background.log", "w")
    config._mini_dag_build = subprocess.Popen([sys.executable, "-c", code, str(ROOT / "tests"), str(shared)],
                                              cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                              start_new_session=True)
    import time

    deadline = time.monotonic() + 60  # until it holds the lock, so no worker builds beside it
    while not (shared / "mini_dag" / "building").exists() and config._mini_dag_build.poll() is None:
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)


def pytest_sessionfinish(session):
    """Stop a background build nobody waited for (a run that failed early, or was interrupted)."""
    import signal

    build = getattr(session.config, "_mini_dag_build", None)
    if build is not None and build.poll() is None:
        os.killpg(build.pid, signal.SIGTERM)
        build.wait()


@pytest.fixture(scope="session")
def mini_dag(tmp_path_factory) -> Path:
    """The suite's one cold build of the mini DAG: a repo copy (no data/, work/ or results/) in which
    `dvc repro` ran every stage of dvc.yaml from nothing, building every mini table (ViLBERT,
    VideoBERT and ActBERT on cpu) with Snakemake. Its output is in repro.log; tests/test_e2e_mini.py
    checks what it built. Never change it: a test that writes takes `built_copy(mini_dag, ...)`.
    Under pytest-xdist every worker is a session of its own: they share the run's temp folder's
    build (built once, see pytest_sessionstart)."""
    return mini_dag_phase(_shared_temp(tmp_path_factory), "all")


@pytest.fixture(scope="session")
def mini_stage(tmp_path_factory):
    """`mini_stage(name)`: the shared build's repo as soon as its stage `name` (one of
    MINI_DAG_FIRST_STAGES) is built, e.g. `mini_stage("vilbert_data_mini") / "data/mini/vilbert"`:
    what the DAG's rules made, for step tests that check those steps without running them again.
    Read only, like `mini_dag`."""
    shared = _shared_temp(tmp_path_factory)

    def wait(name: str) -> Path:
        assert name in MINI_DAG_FIRST_STAGES, f"{name}: add it to conftest.MINI_DAG_FIRST_STAGES"
        return mini_dag_phase(shared, name)
    return wait


def _shared_temp(tmp_path_factory) -> Path:
    """The run's temp folder, shared by every xdist worker."""

    shared = tmp_path_factory.getbasetemp()
    return shared.parent if os.environ.get("PYTEST_XDIST_WORKER") else shared


def built_copy(built: Path, dest: Path, dvc_cache: bool = False) -> Path:
    """A copy of a built repo (`mini_dag`) at `dest`, with its git repo, data/, work/, results/,
    Snakemake's metadata and DVC's state, times kept (cp -a), so Snakemake and DVC find it as
    up to date as the original. The DVC cache (a second copy of every out) only with `dvc_cache`."""
    import subprocess

    dest.mkdir(parents=True)
    for entry in built.iterdir():
        if entry.name != ".dvc":
            subprocess.run(["cp", "-a", str(entry), str(dest)], check=True)
    (dest / ".dvc").mkdir()
    for entry in (built / ".dvc").iterdir():
        if dvc_cache or entry.name != "cache":
            subprocess.run(["cp", "-a", str(entry), str(dest / ".dvc")], check=True)
    # The `sources` rule names its patch files by absolute path (rules/common.smk, source_patches),
    # and Snakemake's metadata records them: left as they are, the copy's first Snakemake run would
    # find the "set of input files changed" and rerun every chain from its sources on. Recorded as
    # if the build had run here.
    old, new = str(built).encode(), str(dest).encode()
    for record in (dest / ".snakemake" / "metadata").iterdir():
        data = record.read_bytes()
        if old in data:
            record.write_bytes(data.replace(old, new))
    return dest


def standin_env(repo: Path, era: str = "current") -> dict[str, str]:
    """For subprocesses in a repo copy: the stand-in `atc` and `python -m ais_bench` first on
    PATH / PYTHONPATH (the copy's tests/standins), imitating the tools of `era`."""
    from standins_fixture import ascend_env

    return {"PATH": os.pathsep.join([str(repo / "tests/standins/bin"), str(VENV_BIN), os.environ["PATH"]]),
            "PYTHONPATH": str(repo / "tests/standins/python"),
            "ZOOREPRO_STANDIN_PYTHON": sys.executable, **ascend_env(era)}


def run(cmd: list[str], cwd: Path, env_extra: dict | None = None, check: bool = True, timeout: int = 1200):
    """Run a command with the venv first on PATH; return the CompletedProcess (text)."""
    import subprocess

    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env.update(env_extra or {})
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc
