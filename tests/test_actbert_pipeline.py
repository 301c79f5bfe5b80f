"""The ActBERT steps on the mini scale: patched PaddleVideo sources -> tiny random model -> the
document's MSR-VTT test through main.py (metrics logged AND recomputed, timings) and its HowTo100M
pretraining (dataset, pipeline, ActBertLoss, Adam + CustomPiecewiseDecay) through
paddle.distributed.launch in two cpu processes.

Everything that imports PaddleVideo runs in a subprocess, as the rules run the scripts: another
test module imports the unpatched wheel's `paddlevideo` into the pytest process, and the patched
one must not meet it. The scripts run with a scratch folder as working directory holding
`data/mini/actbert/` (the mini configs' relative paths), so the test also sees what they leave there.
"""
from __future__ import annotations

import hashlib
import json
import math
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import lmdb
import numpy as np
import pytest
import yaml

from zoorepro.actbert.msrvtt import CAPTIONS_FILE, FEATURES_DIR
from zoorepro.actbert.sources import prepare_sources
from zoorepro.errors import ZooreproError
from zoorepro.actbert.make_mini_data import vocab
from zoorepro.claims import load_planted

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "zoorepro" / "actbert" / "configs"
MINI = Path("data/mini/actbert")  # below the scripts' working directory, as the mini configs name it
N_VIDEOS = 24
ACCURACY = {"R@1": "percent", "R@5": "percent", "R@10": "percent", "MedianR": "rank", "MeanR": "rank"}

# test_model twice in one process with paddle.set_device recording its argument: once with
# `device=cpu` (it must run through on cpu alone), once without the key (the document's gpu must
# still be asked for; the recorder stops the run there, this paddle has no CUDA). The second run
# reads a copy of the lmdb: lmdb refuses to open one folder twice in a process, and the dataset
# never closes its environment.
DEVICE_DRIVER = """
import json, sys
from pathlib import Path
repo, src, config, weights, features_copy = sys.argv[1:6]
sys.path.insert(0, repo)
from zoorepro.actbert.sources import activate
activate(Path(src))
import paddle
from paddlevideo.tasks import test_model
from paddlevideo.utils import get_config

class Stop(Exception):
    pass

calls, real_set_device = [], paddle.set_device
def recording_set_device(device):
    calls.append(device)
    if device != "cpu":
        raise Stop(device)
    return real_set_device(device)
paddle.set_device = recording_set_device

result = {}
for name, overrides in (("cpu", ["device=cpu"]), ("default", ["DATASET.test.features_path=" + features_copy])):
    calls.clear()
    try:
        test_model(get_config(config, overrides=overrides, show=False), weights=weights, parallel=False)
        result[name] = {"calls": list(calls), "finished": True}
    except Stop:
        result[name] = {"calls": list(calls), "finished": False}
print("RESULT " + json.dumps(result))
"""


def run(args: list, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command with this interpreter; fail the test with its output unless it succeeds."""
    result = subprocess.run([sys.executable, *map(str, args)], cwd=cwd, capture_output=True, text=True, check=False)
    if check:
        assert result.returncode == 0, f"{args[0]} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def step(name: str) -> list[str]:
    """The interpreter arguments that run the step zoorepro.actbert.<name> as the rules do."""
    return ["-m", f"zoorepro.actbert.{name}"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("src") / "actbert"
    prepare_sources(dest, REPO / "patches")
    return dest


@pytest.fixture(scope="module")
def cwd(tmp_path_factory, mini_stage) -> Path:
    """The scripts' working directory: the mini data, the tiny model and the planted claims where
    the mini configs expect them — a copy of the shared build's (rule actbert_mini_data,
    conftest.mini_stage; tests/test_actbert_data.py checks the generator reproduces it)."""
    root = tmp_path_factory.mktemp("cwd")
    shutil.copytree(mini_stage("actbert_data_mini") / MINI, root / MINI)
    return root


@pytest.fixture(scope="module")
def tested(cwd, src) -> dict:
    """zoorepro.actbert.test on the mini set, as the rule runs it."""
    work = Path("work/test")
    run([*step("test"), "-c", CONFIGS / "mini_msrvtt.yaml", "-w", MINI / "ActBERT-mini.pdparams",
         "--src", src, "--device", "cpu", "--work-dir", work,
         "--out", "work/metrics.json", "--measurements", "work/measurements.json"], cwd=cwd)
    return {"metrics": json.loads((cwd / "work/metrics.json").read_text()),
            "measurements": json.loads((cwd / "work/measurements.json").read_text()), "work": cwd / work}


# ---- sources ------------------------------------------------------------------------------------

def test_sources_record_the_wheel_and_every_ppvideo_patch_in_order(src):
    manifest = json.loads((src / "SOURCES.json").read_text())
    assert manifest["packages"]["ppvideo"]["version"] == "2.3.1"
    patches = sorted((REPO / "patches" / "ppvideo").glob("*.patch"))
    assert [p["file"] for p in manifest["patches"]] == [f"ppvideo/{p.name}" for p in patches]
    assert [p["sha256"] for p in manifest["patches"]] == [sha256(p) for p in patches]
    msrvtt = (src / "ppvideo/paddlevideo/loader/dataset/msrvtt.py").read_text()
    assert "restricted_loads(txn.get(video_id))" in msrvtt and "pickle.loads" not in msrvtt
    assert "np.zeros(1000)" not in msrvtt


def test_no_paddle_fluid_import_is_left_in_the_patched_tree(src):
    fluid = [f"{p.relative_to(src)}:{n}" for p in (src / "ppvideo").rglob("*.py")
             for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
             if line.lstrip().startswith(("import paddle.fluid", "from paddle.fluid", "from paddle import fluid"))]
    assert fluid == []


def test_every_patch_says_what_and_why_with_an_origin():
    for patch in sorted((REPO / "patches" / "ppvideo").glob("*.patch")):
        header = patch.read_text().split("\n--- a/", 1)[0]
        assert header.startswith(f"zoorepro patch ppvideo/{patch.name[:2]} (origin: "), patch.name
        assert "\nWhat: " in header and "\nWhy: " in header, patch.name
        assert f"`ppvideo/{patch.name}`" in (REPO / "patches" / "README.md").read_text(), patch.name


def test_a_patch_that_does_not_apply_is_named_and_nothing_is_written(tmp_path):
    patches = tmp_path / "patches"
    shutil.copytree(REPO / "patches" / "ppvideo", patches / "ppvideo")
    (patches / "ppvideo" / "99-bad.patch").write_text(
        "--- a/ppvideo/main.py\n+++ b/ppvideo/main.py\n@@ -1,1 +1,1 @@\n-no such line\n+x\n")
    with pytest.raises(ZooreproError, match="ppvideo/99-bad.patch"):
        prepare_sources(tmp_path / "dest", patches)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["patches"]


def test_the_mini_configs_fit_the_mini_data_and_each_other():
    test_cfg, pretrain_cfg = (yaml.safe_load((CONFIGS / name).read_text()) for name in
                              ("mini_msrvtt.yaml", "mini_pretrain.yaml"))
    backbone = dict(pretrain_cfg["MODEL"]["backbone"])
    assert backbone.pop("pretrained") == str(MINI / "bert-mini.pdparams")
    assert backbone == test_cfg["MODEL"]["backbone"]
    assert backbone["vocab_size"] == pretrain_cfg["MODEL"]["loss"]["vocab_size"] == len(vocab())
    for ids, layers in (("t_ent_attention_id", "num_hidden_layers"), ("v_ent_attention_id", "v_num_hidden_layers"),
                        ("a_ent_attention_id", "a_num_hidden_layers")):
        assert len(backbone[ids]) == 2 and max(backbone[ids]) <= backbone[layers], ids
    full = yaml.safe_load((CONFIGS / "actbert_msrvtt.yaml").read_text())
    assert {k: v for k, v in test_cfg.items() if k != "MODEL"}.keys() == full.keys() - {"MODEL"}
    assert test_cfg["DATASET"]["test_batch_size"] == full["DATASET"]["test_batch_size"] == 1


# Loads two .pdparams files (paddle.load) and prints which tensors differ and how.
COMPARE_STATES = """
import json, sys
import numpy as np, paddle
a, b = (paddle.load(path) for path in sys.argv[1:3])
print("RESULT " + json.dumps({"keys_equal": sorted(a) == sorted(b),
                              "differ": sorted(k for k in a if not np.array_equal(np.asarray(a[k]), np.asarray(b[k])))}))
"""
SHAPED = ["backbone.bert.t_pooler.dense.bias", "backbone.bert.t_pooler.dense.weight",
          "backbone.bert.v_pooler.dense.bias", "backbone.bert.v_pooler.dense.weight",
          "backbone.cls.seq_relationship.weight"]


def test_the_mini_model_is_paddlevideos_random_init_with_only_the_poolers_and_head_shaped(cwd, src, tmp_path):
    """make_mini_model's random init (byte-identical across runs) is the generator's model but for
    the tensors plant.expose_interaction shapes; the pretraining init is the unshaped text part."""
    run([*step("make_mini_model"), "--config", CONFIGS / "mini_msrvtt.yaml", "--src", src, "--seed", 0,
         "--out", tmp_path / "again.pdparams", "--bert-out", tmp_path / "bert.pdparams"], cwd=tmp_path)
    assert sha256(tmp_path / "bert.pdparams") == sha256(cwd / MINI / "bert-mini.pdparams")
    out = run(["-c", COMPARE_STATES, tmp_path / "again.pdparams", cwd / MINI / "ActBERT-mini.pdparams"], cwd=tmp_path)
    assert json.loads(out.stdout.rsplit("RESULT ", 1)[1]) == {"keys_equal": True, "differ": SHAPED}


# ---- the device patch ---------------------------------------------------------------------------

def test_test_model_runs_on_the_configured_device_and_defaults_to_the_documents_gpu(cwd, src, tmp_path):
    features_copy = shutil.copytree(cwd / MINI / FEATURES_DIR, tmp_path / FEATURES_DIR)
    out = run(["-c", DEVICE_DRIVER, REPO, src, CONFIGS / "mini_msrvtt.yaml", MINI / "ActBERT-mini.pdparams",
               features_copy], cwd=cwd)
    result = json.loads(out.stdout.rsplit("RESULT ", 1)[1])
    assert result == {"cpu": {"calls": ["cpu"], "finished": True}, "default": {"calls": ["gpu"], "finished": False}}


# ---- test.py end to end -------------------------------------------------------------------------

def test_logged_and_recomputed_metrics_agree_and_are_consistent(tested):
    metrics = tested["metrics"]
    logged, recomputed = metrics["logged"], metrics["recomputed"]
    assert logged["batch_id"] == N_VIDEOS - 1 and metrics["n_captions"] == metrics["n_videos"] == N_VIDEOS
    for key in ACCURACY:
        assert abs(logged[key] - recomputed[key]) <= 5e-4, key
    assert 0 <= recomputed["R@1"] <= recomputed["R@5"] <= recomputed["R@10"] <= 100
    assert 1 <= recomputed["MedianR"] <= N_VIDEOS and 1 <= recomputed["MeanR"] <= N_VIDEOS


def test_the_test_reproduces_the_planted_metrics_exactly(tested, cwd):
    """The generator's eager reference and numpy metrics predicted what the whole test computes."""
    planted = {c.metric: c.value for c in load_planted(cwd / MINI / "planted_claims.yaml")}
    assert set(planted) == set(ACCURACY)
    assert {key: tested["metrics"]["recomputed"][key] for key in ACCURACY} == pytest.approx(planted, abs=1e-9)


def test_the_raw_matrices_rank_every_caption_against_every_csv_video(tested, cwd):
    scores = np.load(tested["work"] / "score_matrix.npy")
    targets = np.load(tested["work"] / "target_matrix.npy")
    assert scores.shape == targets.shape == (N_VIDEOS, N_VIDEOS)
    np.testing.assert_array_equal(targets, np.eye(N_VIDEOS))  # one caption per video, in csv order
    assert np.all((scores > 0) & (scores < 1))
    assert all(len(np.unique(row)) == N_VIDEOS for row in scores)  # no ties: ranks are well defined
    # each caption's true video stands clear of every other video by the generator's margin
    min_margin = json.loads((cwd / MINI / "MANIFEST.json").read_text())["params"]["min_margin"]
    gaps = np.abs(scores - np.diag(scores)[:, None]) + np.eye(N_VIDEOS)
    assert gaps.min() >= min_margin
    assert len(np.unique(scores, axis=0)) == N_VIDEOS  # each caption scores the videos differently
    times = np.load(tested["work"] / "update_times.npy")
    assert len(times) == N_VIDEOS + 1 and np.all(np.diff(times) > 0)


def test_measurements_have_the_designs_names_units_and_timings(tested):
    records = {r["metric"]: r for r in tested["measurements"]}
    assert set(records) == {*ACCURACY, "throughput", "throughput_pairs", "batch_latency", "harness_overhead"}
    for name, unit in ACCURACY.items():
        assert (records[name]["kind"], records[name]["unit"], records[name]["batch_size"],
                records[name]["precision"]) == ("accuracy", unit, 1, "fp32")
        assert records[name]["value"] == tested["metrics"]["recomputed"][name]
    timing = tested["metrics"]["timing"]
    assert (records["throughput"]["kind"], records["throughput"]["unit"]) == ("throughput", "captions/s")
    assert math.isclose(records["throughput"]["value"], N_VIDEOS / timing["loop_s"])
    assert math.isclose(records["throughput_pairs"]["value"], N_VIDEOS * N_VIDEOS / timing["loop_s"])
    assert 0 < timing["loop_s"] < timing["main_s"] <= timing["step_s"]
    assert (records["harness_overhead"]["kind"], records["harness_overhead"]["unit"]) == ("latency", "fraction")
    assert 0 <= records["harness_overhead"]["value"] < 0.5
    assert records["batch_latency"]["unit"] == "ms" and records["batch_latency"]["value"] > 0


def test_the_run_leaves_nothing_in_its_working_directory_or_data(tested, cwd):
    assert sorted(p.name for p in cwd.iterdir()) == ["data", "work"]  # no ./.log.txt (patch 10)
    assert not (cwd / MINI / FEATURES_DIR / "lock.mdb").exists()  # read-only lmdb (patch 07)
    assert "Final r1:" in (tested["work"] / "test.log").read_text()


def test_a_feature_record_that_asks_for_a_foreign_global_is_refused(cwd, src, tmp_path):
    data = shutil.copytree(cwd / MINI, tmp_path / MINI)
    marker = tmp_path / "opened-by-pickle"

    class Opens:
        def __reduce__(self):
            return open, (str(marker), "w")

    env = lmdb.open(str(data / FEATURES_DIR), lock=False, map_size=1 << 26)
    with env.begin(write=True) as txn:
        first = (data / CAPTIONS_FILE).read_text().split(",", 1)[0]
        txn.put(first.encode(), pickle.dumps({"video_id": Opens()}))
    env.close()
    result = run([*step("test"), "-c", CONFIGS / "mini_msrvtt.yaml", "-w", MINI / "ActBERT-mini.pdparams",
                  "--src", src, "--device", "cpu", "--work-dir", "work"], cwd=tmp_path, check=False)
    assert result.returncode == 2 and "pickle asks for io.open" in result.stderr
    assert not marker.exists()


# ---- pretrain.py, run by main.py in each launched process -----------------------------------------

def pretrain_options(src, work: str, *extra) -> list:
    """The step's options as the rule passes them (the mini config names the mini data)."""
    return ["--validate", "-c", CONFIGS / "mini_pretrain.yaml", "--src", src, "--device", "cpu",
            "--pretrained", MINI / "bert-mini.pdparams", "--work-dir", f"{work}/run", *extra]


def test_pretraining_through_the_launcher_in_two_cpu_processes_lowers_the_global_loss(cwd, src):
    """The rule's command (paddle.distributed.launch --nproc_per_node=2 ... main.py --validate ...),
    built by the paddle runner: both processes train 4 steps of the mini epoch with a global batch
    of 2 (1 a process), and the loss of the global batch falls."""
    from zoorepro.config import load_params
    from zoorepro.runners import get_runner

    runner = get_runner("paddle", "cpu", load_params())
    args = pretrain_options(src, "work/launched", "--max-steps", 4, "--loss-curve", "work/launched/loss.json",
                            "--out", "work/launched/final.pdparams")
    command = runner.launch_command(str(REPO / "zoorepro/actbert/main.py"), [str(a) for a in args], 2,
                                    "work/launched/run/log_actbert")
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    curve = json.loads((cwd / "work/launched/loss.json").read_text())
    assert curve["launch"] == {
        "processes": 2, "batch_size_per_process": 1, "global_batch_size": 2, "launcher": "paddle.distributed.launch",
        "log_dir": "work/launched/run/log_actbert", "validate": True, "amp": False, "flags": {},
        "environment_copies_removed": ["backup_env.0.json", "backup_env.1.json", "envlog.0", "envlog.1"]}
    assert [(s["epoch"], s["step"]) for s in curve["train"]] == [(1, i) for i in range(4)] and curve["steps"] == 4
    for entry in curve["train"]:
        assert len(entry["rank_losses"]) == 2 and all(math.isfinite(x) and x > 0 for x in entry["rank_losses"])
        assert entry["loss"] == pytest.approx(sum(entry["rank_losses"]) / 2)
    assert curve["train"][-1]["loss"] < curve["train"][0]["loss"]
    assert [s["lr"] for s in curve["train"]] == [0.0002] * 4  # CustomPiecewiseDecay's first value
    assert len(curve["valid"]) == 1 and math.isfinite(curve["valid"][0]["loss_avg"])
    run_dir = cwd / "work/launched/run"
    logs = {p.name for p in (run_dir / "log_actbert").iterdir()}
    assert {"workerlog.0", "workerlog.1"} <= logs and not any(n.startswith(("envlog", "backup_env")) for n in logs)
    assert (run_dir / "pretrain.rank1.log").is_file()
    final, initial = (cwd / "work/launched/final.pdparams"), (cwd / MINI / "ActBERT-mini.pdparams")
    assert final.read_bytes() == (run_dir / "ActBert_epoch_00001.pdparams").read_bytes()
    assert final.stat().st_size == pytest.approx(initial.stat().st_size, rel=0.01)  # same tensors
    measured = cwd / "work/launched/loss.measurements.json"
    run([*step("loss_measurements"), "--loss", "work/launched/loss.json", "--out", measured], cwd=cwd)
    rows = {r["metric"]: r for r in json.loads(measured.read_text())}
    assert {r["batch_size"] for r in rows.values()} == {2} and "global batch 2 = 1 a process x 2" in rows[
        "pretrain_loss_last"]["note"]


def test_amp_on_cpu_is_refused_by_the_step_before_anything_runs(cwd, src):
    proc = run([*step("pretrain"), *pretrain_options(src, "work/amp", "--amp")], cwd=cwd, check=False)
    assert proc.returncode == 2 and "AMP needs a GPU" in proc.stderr
    assert not (cwd / "work/amp").exists()


def test_the_bert_init_is_read_by_the_restricted_loader_and_a_payload_never_runs(cwd, src, tmp_path):
    """--pretrained (MODEL.backbone.pretrained) is loaded by PaddleVideo's load_ckpt, routed to
    zoorepro.actbert.weights: a crafted file fails the run naming the global, its command unrun."""
    from conftest import RunsCommand

    evil = tmp_path / "bert-base-uncased.pdparams"
    evil.write_bytes(pickle.dumps({"bert.embeddings.word_embeddings.weight": RunsCommand()}, protocol=4))
    args = pretrain_options(src, str(tmp_path / "work"), "--max-steps", 1)
    args[args.index("--pretrained") + 1] = evil
    proc = run([*step("pretrain"), *args], cwd=cwd, check=False)
    log = tmp_path / "work" / "run" / "pretrain.log"
    assert proc.returncode != 0
    assert "posix.system" in proc.stderr + (log.read_text() if log.exists() else "") or "os.system" in proc.stderr
    assert not (tmp_path / "marker").exists() and not (cwd / "marker").exists()


# ---- weights: no code from a downloaded .pdparams ---------------------------------------------------

def test_the_restricted_loader_returns_what_paddle_load_returns(cwd):
    import paddle

    from zoorepro.actbert.weights import load

    path = cwd / MINI / "ActBERT-mini.pdparams"
    ours, theirs = load(path), paddle.load(str(path))
    assert set(ours) == set(theirs)
    assert all(np.array_equal(ours[k].numpy(), np.asarray(theirs[k])) for k in theirs)


def test_a_big_tensor_saved_in_slices_is_joined_as_paddle_joins_it(tmp_path):
    from zoorepro.actbert.weights import load_state

    whole = np.arange(12, dtype=np.float32).reshape(3, 4)
    state = {"w@@.0": whole.reshape(-1)[:5], "w@@.1": whole.reshape(-1)[5:], "b": np.ones(2, np.float32),
             "UnpackBigParamInfor@@": {"w": {"OriginShape": (3, 4), "slices": ["w@@.0", "w@@.1"]}},
             "StructuredToParameterName@@": {"w": "linear_0.w_0"}}
    (tmp_path / "big.pdparams").write_bytes(pickle.dumps(state, protocol=4))
    loaded = load_state(tmp_path / "big.pdparams")
    assert set(loaded) == {"w", "b"} and np.array_equal(loaded["w"], whole)


def test_a_malicious_pdparams_is_refused_by_the_test_step_and_its_payload_never_runs(cwd, src, tmp_path):
    from conftest import RunsCommand

    evil = tmp_path / "ActBERT.pdparams"
    evil.write_bytes(pickle.dumps({"backbone.bert.embeddings.word_embeddings.weight": RunsCommand()}, protocol=4))
    proc = run([*step("test"), "-c", CONFIGS / "mini_msrvtt.yaml", "-w", evil, "--src", src, "--device", "cpu",
                "--work-dir", tmp_path / "work"], cwd=cwd, check=False)
    assert proc.returncode != 0
    assert not (tmp_path / "marker").exists() and not (cwd / "marker").exists()
    log = (tmp_path / "work" / "test.log").read_text() if (tmp_path / "work" / "test.log").exists() else ""
    assert "posix.system" in proc.stderr + log or "os.system" in proc.stderr + log


def test_a_malformed_big_tensor_record_is_refused(tmp_path):
    from zoorepro.actbert.weights import load_state

    state = {"w@@.0": np.zeros(5, np.float32), "UnpackBigParamInfor@@": {"w": {"OriginShape": (3, 4),
                                                                            "slices": ["w@@.0", "__builtins__"]}}}
    (tmp_path / "bad.pdparams").write_bytes(pickle.dumps(state, protocol=4))
    with pytest.raises(ZooreproError, match="malformed UnpackBigParamInfor@@ record"):
        load_state(tmp_path / "bad.pdparams")
