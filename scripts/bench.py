#!/usr/bin/env python
"""`make bench`: figures measured in one run on this machine (ratios, not absolute timings, are
what carry between machines). Runs in a temporary copy of the repo, so the checkout is untouched:

1. mini ViLBERT, VideoBERT and ActBERT end-to-end wall times (`snakemake results/mini/{model}_cpu.csv`, cold);
2. no-op rerun time of snakemake and of `dvc repro` (every mini table);
3. our perf step's throughput over a bare onnxruntime loop on the same model and session options
   (goal >= 0.97), interleaved repeats, median;
4. onnxruntime over torch eager on the same mini ViLBERT and inputs (ratio of throughputs);
5. the VideoBERT perf_engine harness over a bare onnxruntime loop (goal >= 0.97);
6. the ActBERT test step: captions/s and the share of wall time the harness adds around
   PaddleVideo's own test loop;
7. the cost of lineage (zoorepro/lineage.py, tablecheck.py): the table step over the three mini
   tables with and without its lineage check, the stale pass of every mini model, and the audit
   with and without --verify-raw (in-process, medians of interleaved repeats);
8. mini ClipBERT: end-to-end wall time, the finetune's samples/s in the table's 2 torchrun processes
   over the same finetune in one process (interleaved repeats, median), inference questions/s and
   each loop's share of time waiting for frames, and the inference loop over a bare torch loop on the
   same model and collated batches (goal >= 0.97).
9. the mini DAG on a one-node SLURM cluster (zoorepro/slurm_cluster.py, started and stopped here;
   root and Debian's slurm-wlm/munge needed, else the reason is recorded): every mini table cold
   through `snakemake --profile profiles/slurm` over the same cold run local (`--cores all`), each
   in a fresh copy, back to back (goal <= 2), and whether their tables agree in every
   timing-independent column. `--only slurm` runs this section alone.
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from zoorepro.config import REPO_ROOT
from zoorepro.repocopy import copy_repo

VENV_BIN = Path(sys.executable).parent


def sh(cmd: list[str], cwd: Path) -> float:
    """Run a command, return its wall time in seconds (raises on failure)."""
    import os
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}")
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def harness_vs_bare(model: Path, bs: int, loop: int, repeats: int) -> dict:
    """Our perf step's figure (the onnxruntime backend's benchmark) against a bare loop with the same
    method: a fresh session with the same options, the same warm-up, `loop` run_with_iobinding
    calls on the same zero inputs under one timer. Repeats alternate, medians are compared."""
    import onnxruntime as ort

    from zoorepro.backends import get_backend
    from zoorepro.backends.onnxruntime import session_options, zero_feeds
    from zoorepro.config import load_params

    def bare_once() -> float:
        sess = ort.InferenceSession(str(model), session_options(), providers=["CPUExecutionProvider"])
        binding = sess.io_binding()
        for name, arr in zero_feeds(sess).items():
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(arr, "cpu", 0))
        for out in sess.get_outputs():
            binding.bind_output(out.name, "cpu")
        sess.run_with_iobinding(binding)
        start = time.perf_counter()
        for _ in range(loop):
            sess.run_with_iobinding(binding)
        return bs * loop / (time.perf_counter() - start)

    backend = get_backend("cpu", load_params())
    ours, bare = [], []
    for _ in range(repeats):
        ours.append(backend.benchmark(model, bs, loop, warmup=1).throughput)
        bare.append(bare_once())
    return {"ours_samples_per_s": statistics.median(ours), "bare_samples_per_s": statistics.median(bare),
            "ratio": statistics.median(ours) / statistics.median(bare)}


def videobert_harness_vs_bare(repo: Path, bs: int, iterations: int, repeats: int) -> dict:
    """The VideoBERT perf_engine harness (general_perf's loop: 30 warm-up, per-call timers) against
    a bare loop of the same session.run calls under one timer, same session and feeds."""
    import numpy as np
    import onnxruntime as ort

    from zoorepro.backends.onnxruntime import session_options
    from zoorepro.backends.ixrt.bytemlperf import WARMUP, benchmark, perf_stats
    from zoorepro.videobert.perf_engine import fake_feeds

    sess = ort.InferenceSession(str(repo / "work/mini/videobert/onnx/video-bert.onnx"), session_options(),
                                providers=["CPUExecutionProvider"])
    text = np.load(repo / "data/mini/videobert/cifar-100-python/text.npy").astype(np.int64)
    feeds = fake_feeds(text, bs)

    def bare_once() -> float:
        for _ in range(WARMUP):
            sess.run(None, feeds)
        start = time.perf_counter()
        for _ in range(iterations):
            sess.run(None, feeds)
        return bs * iterations / (time.perf_counter() - start)

    ours, bare = [], []
    for _ in range(repeats):
        ours.append(perf_stats(benchmark(sess, feeds, iterations), bs)["samples_per_s"])
        bare.append(bare_once())
    return {"ours_samples_per_s": statistics.median(ours), "bare_samples_per_s": statistics.median(bare),
            "ratio": statistics.median(ours) / statistics.median(bare)}


def actbert_harness(repo: Path) -> dict:
    """From the mini ActBERT test step: captions/s of PaddleVideo's test loop and the share of the
    step's wall time spent outside PaddleVideo's main.py (our harness: sources, parsing, checks)."""
    records = json.loads((repo / "work/mini/actbert/cpu/test.measurements.json").read_text())
    by_metric = {r["metric"]: r["value"] for r in records}
    return {"captions_per_s": by_metric["throughput"], "harness_share": by_metric["harness_overhead"]}


def llava_figures(repo: Path, repeats: int) -> dict:
    """Mini LLaVA-NeXT-Video on cpu: seconds per question of the llava_gpu step (the 7B mini
    checkpoint's table row), and that step's generation over a bare transformers `generate` loop on
    the same model and preprocessed inputs (zoorepro.llava_video.llava_gpu.bench_ratio; goal >= 0.97)."""
    import torch

    from zoorepro.llava_video.llava_gpu import bench_ratio, load_questions, prepare_questions
    from zoorepro.llava_video.make_mini_model import load_checkpoint

    records = json.loads((repo / "work/mini/llava_video/cpu/7B/transformers/perf.measurements.json").read_text())
    by_metric = {r["metric"]: r["value"] for r in records}
    sample = repo / "work/mini/llava_video/sample"
    torch.set_num_threads(1)  # as the step runs on cpu
    model, processor = load_checkpoint(repo / "data/mini/llava_video/models/LLaVA-NeXT-Video-7B-hf")
    items = load_questions(sample / "Video-Bench", "sampling_data", sample / "VideoBench")
    prepared = prepare_questions(processor, items, sample / "VideoBench", "cpu", torch.float32)
    ratio = bench_ratio(model, processor, prepared, 3, "cpu", repeats=repeats)
    return {"seconds_per_question_7B": by_metric["7B seconds per question"],
            "step_generate_over_bare_generate": ratio["ratio"], "questions": ratio["questions"]}


def clipbert_figures(repo: Path, repeats: int) -> dict:
    """Mini ClipBERT on cpu: the table's rows, and the 2-process finetune (torchrun, gloo, each
    process half the threads) over a 1-process finetune of the same config, measured here."""
    work = repo / "work/mini/clipbert"
    table = {r["metric"]: r["value"] for name in ("finetune", "inference")
             for r in json.loads((work / f"cpu/{name}.measurements.json").read_text())}

    def finetune(nproc: int, i: int) -> float:
        out = repo / f"bench_clipbert_{nproc}_{i}"
        launch = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)] if nproc > 1 else []
        sh([str(VENV_BIN / "python"), *launch, "-m", "zoorepro.clipbert.run_video_qa", "--config",
            str(work / "prep/anetqa_frameqa_base_resnet50.json"), "--output_dir", str(out),
            "--measurements", str(out) + ".json"], repo)
        return next(r["value"] for r in json.loads(Path(str(out) + ".json").read_text())
                    if r["metric"] == "finetune samples/s")

    one, two = [], []
    for i in range(max(1, repeats // 2)):
        one.append(finetune(1, i))
        two.append(finetune(2, i))
    import torch

    from zoorepro.clipbert.model import load_checkpoint
    from zoorepro.clipbert.run_video_qa import Ranks, bench_ratio, build, loader

    released = repo / "data/mini/clipbert/released"
    cfg = {**json.loads((work / "prep/anetqa_frameqa_base_resnet50.json").read_text()),
           **json.loads((released / "log/args.json").read_text()), "model_config": str(released / "log/model_config.json")}
    cfg["tokenizer_dir"] = str(repo / cfg["tokenizer_dir"])
    cfg["ans2label_path"] = str(repo / cfg["ans2label_path"])
    torch.set_num_threads(1)  # as one of the step's 2 processes on this machine
    ranks = Ranks("cpu")
    model, ans2label, _ = build(cfg, "cpu", ranks)
    load_checkpoint(model, released / "ckpt/model_step_30.pt")
    batches = list(loader(cfg, work / "prep/txt/data_val.jsonl", work / "prep/img", 8, False, None, ranks))
    ratio = bench_ratio(model, batches, 16, cfg["score_agg_func"], "cpu", list(ans2label), repeats)
    return {"inference_step_over_bare_torch": ratio["ratio"], "inference_batches": ratio["batches"],
            "finetune_samples_per_s_2proc": table["finetune samples/s"],
            "finetune_2proc_over_1proc": statistics.median(two) / statistics.median(one),
            "finetune_data_loading_share_pct": table["finetune data loading share"],
            "inference_questions_per_s": table["inference questions/s"],
            "inference_data_loading_share_pct": table["inference data loading share"]}


def ort_vs_torch(repo: Path, bs: int, loop: int) -> dict:
    """onnxruntime (the exported mini ONNX, same session options as the perf step) over torch
    eager (the same archive, loaded as the export step loads it), on one batch of real
    preprocessed mini samples."""
    import onnxruntime as ort
    import torch

    from zoorepro.backends.onnxruntime import session_options
    from zoorepro.backends.sample_layout import batches, list_samples
    from zoorepro.vilbert.export_onnx import load_model

    names = ("box_features", "box_coordinates", "box_mask", "token_ids", "mask", "type_ids")
    pre = repo / "work/mini/vilbert/preprocessed"
    _, arrays, _ = next(batches(list_samples([pre / n for n in names]), bs))
    feeds = dict(zip(names, arrays))
    tensors = {k: torch.from_numpy(v) for k, v in feeds.items()}
    model = load_model(repo / "data/mini/vilbert/vilbert-vqa-mini.tar.gz", repo / "work/src/vilbert")
    sess = ort.InferenceSession(str(repo / "work/mini/vilbert/onnx/vqa-vilbert.onnx"), session_options(),
                                providers=["CPUExecutionProvider"])

    def throughput(fn) -> float:
        fn()
        start = time.perf_counter()
        for _ in range(loop):
            fn()
        return bs * loop / (time.perf_counter() - start)

    with torch.inference_mode():
        torch_tp = throughput(lambda: model(**tensors))
    ort_tp = throughput(lambda: sess.run(None, feeds))
    return {"torch_samples_per_s": torch_tp, "ort_samples_per_s": ort_tp, "ratio": ort_tp / torch_tp}


def lineage_cost(repo: Path, repeats: int) -> dict:
    """Seconds for the three mini tables' table step with and without check_lineage, the stale
    pass over work/mini/<model>, and the audit without and with re-hashing the raw outputs."""
    import contextlib
    import os

    from zoorepro import lineage, report
    from zoorepro.audit import audit
    from zoorepro.claims import load_claims
    from zoorepro.config import load_params
    from zoorepro.verdicts import RunContext

    tables = ("vilbert", "videobert", "actbert")
    cwd = os.getcwd()
    os.chdir(repo)
    try:
        params, claims = load_params(repo / "params.yaml"), load_claims()
        files = {m: [str(p) for p in sorted(Path(f"work/mini/{m}/cpu").glob("*.measurements.json"))] for m in tables}
        files["actbert"].append("work/mini/actbert/pretrain/loss.measurements.json")

        def tables_once(check: bool) -> float:
            real = report.check_lineage
            start = time.perf_counter()
            with contextlib.ExitStack() as stack:
                if not check:
                    report.check_lineage = lambda measurements: None
                    stack.callback(setattr, report, "check_lineage", real)
                for model in tables:
                    report.make_table(RunContext(model, "cpu", "cpu", "mini"), files[model], claims,
                                      params["tolerances"], Path(tempfile.mkdtemp()) / f"{model}_cpu.csv",
                                      planted=Path(f"data/mini/{model}/planted_claims.yaml"))
            return time.perf_counter() - start

        def timed(fn) -> float:
            start = time.perf_counter()
            fn()
            return time.perf_counter() - start

        with_check, without = [], []
        for _ in range(repeats):
            without.append(tables_once(False))
            with_check.append(tables_once(True))
        stale = [timed(lambda: [lineage.invalidate_stale(f"work/mini/{m}", dry_run=True) for m in tables])
                 for _ in range(repeats)]
        plain = [timed(lambda: audit(claims, Path("results"), None)) for _ in range(repeats)]
        raw = [timed(lambda: audit(claims, Path("results"), None, verify_raw=True)) for _ in range(repeats)]
    finally:
        os.chdir(cwd)
    med = statistics.median
    return {"table_steps_without_lineage_s": med(without), "table_steps_with_lineage_s": med(with_check),
            "stale_pass_all_mini_models_s": med(stale), "audit_s": med(plain), "audit_verify_raw_s": med(raw)}


def shape_vilbert(repo: Path, bs: int) -> dict:
    """The full-size ViLBERT (shape scale: real sizes, random weights) at one batch size on this
    CPU through the DAG's own steps (make_shape, export_onnx, onnxsim, fix_onnx, compile, perf): its
    samples/s and % of this CPU's measured peak (FLOPs a sample counted from the graph)."""
    target = f"work/shape/vilbert/cpu/perf_bs{bs}.measurements.json"
    seconds = sh(["snakemake", "--cores", "all", target], repo)
    rows = {r["metric"]: r for r in json.loads((repo / target).read_text())}
    peak = json.loads((repo / "work/shape/vilbert/cpu/peak.json").read_text())
    return {"chain_s": seconds, "samples_per_s": rows["throughput"]["value"],
            "percent_of_cpu_peak": rows["throughput % of peak"]["value"],
            "cpu_peak_gflops": peak["flops"] / 1e9, "how": rows["throughput % of peak"]["note"]}


def slurm_vs_local(tmp: Path) -> dict:
    """Section 9: wall time of the mini DAG through SLURM over the same DAG run locally."""
    from zoorepro import slurm_cluster
    from zoorepro.config import load_params, results_dir
    from zoorepro.tablecheck import deterministic_rows

    reason = slurm_cluster.unavailable_reason()
    if reason:
        return {"skipped": reason}
    state = tmp / "slurm-state"
    try:
        slurm_cluster.install()
        slurm_cluster.start(state)
    except slurm_cluster.ClusterUnavailable as exc:
        return {"skipped": str(exc)}
    try:
        params = load_params()
        tables = [f"{results_dir('mini')}/{model}_{target}.csv"
                  for model, targets in params["tables"]["mini"].items() for target in targets]
        local, slurm = copy_repo(tmp / "local", REPO_ROOT), copy_repo(tmp / "slurm", REPO_ROOT)
        local_s = sh(["snakemake", "--cores", "all", *tables], local)
        slurm_s = sh(["snakemake", "--profile", "profiles/slurm", "--slurm-init-seconds-before-status-checks", "2",
                      *tables], slurm)
        jobs = sum(log.read_text().count("has been submitted with SLURM jobid")
                   for log in (slurm / ".snakemake/log").glob("*.snakemake.log"))
        equal = all(deterministic_rows(local / t) == deterministic_rows(slurm / t) for t in tables)
    finally:
        slurm_cluster.stop(state)
    return {"tables": len(tables), "local_s": local_s, "slurm_s": slurm_s, "ratio": slurm_s / local_s,
            "goal": "<= 2", "tables_equal_in_deterministic_columns": equal,
            "slurm_jobs": jobs}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loop", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    ap.add_argument("--only", choices=["slurm"], help="run one section alone")
    args = ap.parse_args()
    figures = {}
    if args.only == "slurm":
        with tempfile.TemporaryDirectory(prefix="zoorepro-bench-") as tmp:
            figures["slurm_over_local_mini_dag"] = slurm_vs_local(Path(tmp))
        print(json.dumps(figures, indent=2))
        if args.out:
            args.out.write_text(json.dumps(figures, indent=2) + "\n")
        return 0
    with tempfile.TemporaryDirectory(prefix="zoorepro-bench-") as tmp:
        repo = copy_repo(Path(tmp) / "repo", REPO_ROOT)
        figures["mini_vilbert_e2e_s"] = sh(["snakemake", "--cores", "all", "results/mini/vilbert_cpu.csv"], repo)
        figures["mini_videobert_e2e_s"] = sh(["snakemake", "--cores", "all", "results/mini/videobert_cpu.csv"], repo)
        figures["mini_actbert_e2e_s"] = sh(["snakemake", "--cores", "all", "results/mini/actbert_cpu.csv"], repo)
        figures["actbert_test"] = actbert_harness(repo)
        figures["mini_llava_video_e2e_s"] = sh(["snakemake", "--cores", "all", "results/mini/llava_video_cpu.csv"], repo)
        figures["llava_video"] = llava_figures(repo, args.repeats)
        figures["mini_clipbert_e2e_s"] = sh(["snakemake", "--cores", "all", "results/mini/clipbert_cpu.csv"], repo)
        figures["clipbert"] = clipbert_figures(repo, args.repeats)
        sh(["snakemake", "--cores", "all"], repo)  # `all` also asks for each table's figures: build them first
        figures["snakemake_noop_s"] = sh(["snakemake", "--cores", "all"], repo)
        figures["lineage_cost"] = lineage_cost(repo, args.repeats)
        sh(["dvc", "commit", "--force"], repo)  # record what Snakemake built in dvc.lock (no rerun)
        figures["dvc_repro_noop_s"] = sh(["dvc", "repro"], repo)
        for bs in (1, 16):
            model = repo / f"work/mini/vilbert/cpu/model_bs{bs}.onnx"
            figures[f"perf_harness_vs_bare_bs{bs}"] = harness_vs_bare(model, bs, args.loop, args.repeats)
            figures[f"ort_vs_torch_eager_bs{bs}"] = ort_vs_torch(repo, bs, max(20, args.loop // 10))
        for bs in (4, 16):
            figures[f"videobert_harness_vs_bare_bs{bs}"] = videobert_harness_vs_bare(repo, bs, 50, args.repeats)
        figures["shape_vilbert_bs16"] = shape_vilbert(repo, 16)
        figures["slurm_over_local_mini_dag"] = slurm_vs_local(Path(tmp))
    print(json.dumps(figures, indent=2))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
