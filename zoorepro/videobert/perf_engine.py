"""ByteMLPerf general_perf's `perf_engine.py --task videobert-onnx-fp32` on a portable target
(onnxruntime, cpu or cuda), with general_perf's semantics: the open_cifar loader and CLIP
preprocessing, the same text input fed with every batch, accuracy at the workload's first batch
size (Top-1 = argmax of logits_per_image == label), then per workload batch size a benchmark of
warm-up runs and `iterations` timed runs (QPS, AVG and P99 latency as general_perf rounds them).
Writes the report in general_perf's layout, the logits (general_perf's open_cifar.npy: the CPU
reference for numeric checks) and measurement records for the table.

At shape scale (real sizes, random weights) `--throughput-only` keeps the accuracy pass (its
logits are still saved) but records no Top-1, and on a CPU `--iterations`/`--warmup` shorten the
benchmark (a full-size batch takes seconds there); a chip runs the workload's own numbers.

Usage: python -m zoorepro.videobert.perf_engine --target cpu --task videobert-onnx-fp32 --onnx M.onnx
           --data cifar-100-python --workload W.json --out-dir report --logits open_cifar.npy
           --measurements m.json --toolchain t.json [--peak peak.json] [--throughput-only]
           [--iterations N --warmup N]
"""
import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from zoorepro import lineage
from zoorepro.cli import run_step
from zoorepro.errors import ZooreproError
from zoorepro.fsutil import writing_file
from zoorepro.measurements import Measurement, print_measurements, write_measurements
from zoorepro.progress import progress


def accuracy(sess, data, batch_size: int, data_percent: int, logits_path: Path) -> tuple[float, int]:
    """Top-1 over the rebatched test set; the logits of every batch are kept (open_cifar.npy)."""
    from zoorepro.videobert.cifar import top1

    data.rebatch(batch_size)
    n = data.eval_batch_count(data_percent)
    logits, labels = [], []
    for i in progress(range(n), desc=f"accuracy bs{batch_size}", unit="batches"):
        feeds, batch_labels = data.get_samples(i)
        logits.append(sess.run(["logits_per_image"], feeds)[0])
        labels.append(batch_labels)
    with writing_file(logits_path) as tmp:
        np.save(tmp, np.stack(logits))
    return top1(logits, labels), n * batch_size


def perf_records(entries: list[dict], precision: str, note: str, raw: str) -> list[Measurement]:
    """Table rows from general_perf Performance entries: its QPS is samples/s (1000*bs/avg ms),
    so the batches/s reading is QPS/bs; AVG and P99 latency in ms."""
    records = []
    for e in entries:
        bs = int(e["BS"])
        common = {"batch_size": bs, "precision": precision, "raw": (raw,), "note": note}
        records += [Measurement("throughput", "throughput", float(e["QPS"]), "samples/s", **common),
                    Measurement("throughput_batches", "throughput", float(e["QPS"]) / bs, "batches/s", **common),
                    Measurement("latency_mean", "latency", float(e["AVG Latency"]), "ms", **common),
                    Measurement("latency_p99", "latency", float(e["P99 Latency"]), "ms", **common)]
    return records


def top1_record(top1: float, batch_size: int, precision: str, note: str, raw: str) -> Measurement:
    return Measurement("top1", "accuracy", 100 * top1, "percent", batch_size=batch_size, precision=precision,
                       raw=(raw,), note=f"ByteMLPerf Top-1 {top1} (a fraction) x 100; {note}")


def fake_feeds(text: np.ndarray, batch_size: int, seed: int = 0) -> dict[str, np.ndarray]:
    """general_perf's fake inputs for VideoBERT's benchmark: a seeded random image batch
    [bs, 3, 224, 224] and the text input (the same draw for every batch size's run)."""
    rng = np.random.default_rng(seed)
    return {"image": rng.random((batch_size, 3, 224, 224), dtype=np.float32), "text": text}


def portable(backend, args, workload: dict) -> list[Measurement]:
    """general_perf's flow on onnxruntime: accuracy at batch_sizes[0], then each batch size's
    benchmark. Per-call latencies are kept, so the unrounded samples/s is what the table shows."""
    from zoorepro.fsutil import atomic_write_text
    from zoorepro.backends.ixrt.bytemlperf import WARMUP, benchmark, perf_stats
    from zoorepro.videobert.cifar import OpenCifar

    sess = backend.session(args.onnx)
    data = OpenCifar(args.data)
    logits_path = args.logits
    acc_bs = workload["batch_sizes"][0]
    top1, n = accuracy(sess, data, acc_bs, workload["data_percent"], logits_path)
    records = [top1_record(top1, acc_bs, backend.precision, f"{n} CIFAR-100 test images at bs{acc_bs}",
                           str(logits_path))]
    iterations = args.iterations or workload["iterations"]
    warmup = WARMUP if args.warmup is None else args.warmup
    performance = []
    for bs in workload["batch_sizes"]:
        times = benchmark(sess, fake_feeds(data.text, bs), iterations, f"benchmark bs{bs}", warmup)
        stats = perf_stats(times, bs)
        raw = args.out_dir / f"latencies_bs{bs}.json"
        atomic_write_text(raw, json.dumps(times) + "\n")
        performance.append({k: stats[k] for k in ("BS", "QPS", "AVG Latency", "P99 Latency")})
        note = (f"general_perf method: {warmup} warm-up, {iterations} timed predicts, host copies "
                f"included; unrounded (general_perf's QPS {stats['QPS']})")
        rows = perf_records([{**stats, "QPS": stats["samples_per_s"], "AVG Latency": stats["mean_ms"]}],
                            backend.precision, note, str(raw))
        if args.peak:  # the text batch [100, 77] runs once a batch: FLOPs a sample depend on bs
            from zoorepro.steps.perf import percent_of_peak
            rows += percent_of_peak(stats["samples_per_s"], bs, args.onnx, args.peak, backend.precision, str(raw),
                                    {"image": (bs, 3, 224, 224), "text": tuple(data.text.shape)})
        records += rows
    report = {"Model": workload["model"].upper(), "Backend": f"onnxruntime ({args.target})", "Dataset": "OPEN_CIFAR",
              "Accuracy": {"Data Percent": workload["data_percent"], "Top-1": top1}, "Performance": performance}
    atomic_write_text(args.out_dir / f"result-{backend.precision}.json", json.dumps(report, indent=2) + "\n")
    with writing_file(args.out_dir / "open_cifar.npy") as tmp:  # also where general_perf leaves it
        shutil.copyfile(logits_path, tmp)
    return records


def vendor(harness, args, workload: dict) -> list[Measurement]:
    """The document's accuracy steps on the chip: copy the dataset and the model into the
    ByteMLPerf tree (where its model-zoo JSON expects them), run perf_engine.py, read its report."""
    zoo = harness.model_zoo(args.task)
    harness.install(args.onnx, zoo["model_path"])
    harness.install(args.data, f"general_perf/datasets/{zoo['dataset_name']}/cifar-100-python")
    summary = harness.accuracy(args.task, args.workload, args.out_dir)
    reference = harness.outputs_dir(args.task) / f"{zoo['dataset_name']}.npy"
    if not reference.is_file():
        raise ZooreproError(f"ByteMLPerf's perf_engine saved no logits at {reference}")
    with writing_file(args.logits) as tmp:
        shutil.copyfile(reference, tmp)
    report = str(next(args.out_dir.glob("result-*.json")))
    acc_bs = workload["batch_sizes"][0]
    records = [top1_record(summary["top1"], acc_bs, harness.precision, "ByteMLPerf perf_engine on ILUVATAR", report)]
    note = "ByteMLPerf ILUVATAR backend: QPS summed over device cores 0 and 1, host copies included (rounded)"
    return records + perf_records(summary["performance"], harness.precision, note, report)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target", required=True)
    ap.add_argument("--onnx", required=True, type=Path)
    ap.add_argument("--data", required=True, type=Path, help="the cifar-100-python folder")
    ap.add_argument("--workload", required=True, type=Path)
    ap.add_argument("--task", default="videobert-onnx-fp32")
    ap.add_argument("--out-dir", required=True, type=Path)
    ap.add_argument("--logits", required=True, type=Path,
                    help="where the saved logits go (general_perf's open_cifar.npy: what the compare step reads)")
    ap.add_argument("--measurements", required=True, type=Path)
    ap.add_argument("--toolchain", required=True, type=Path, help="where the backend's versions go (provenance)")
    ap.add_argument("--peak", type=Path, help="the target's peak (python -m zoorepro.peaks --json): adds %% of peak "
                                              "rows on portable targets")
    ap.add_argument("--throughput-only", action="store_true",
                    help="record no Top-1 (shape scale: random weights); the accuracy pass and its logits stay")
    ap.add_argument("--iterations", type=int, help="timed predicts per batch size (default: the workload's)")
    ap.add_argument("--warmup", type=int, help="untimed predicts first (default: general_perf's 30)")
    args = ap.parse_args()
    from zoorepro.backends import get_backend
    from zoorepro.config import load_params
    from zoorepro.fsutil import atomic_write_text
    from zoorepro.backends.ixrt.bytemlperf import load_workload

    workload = load_workload(args.workload)
    backend = get_backend(args.target, load_params())
    backend.check()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    harness = backend.harness("bytemlperf")  # a backend that runs ByteMLPerf itself (IxRT), else None
    records = vendor(harness, args, workload) if harness is not None else portable(backend, args, workload)
    if args.throughput_only:
        records = [r for r in records if r.kind != "accuracy"]
    lineage.record(args.out_dir, [args.onnx, args.data, args.workload])
    lineage.record(args.logits, [args.onnx, args.data])
    write_measurements(args.measurements, records)
    print_measurements(records)
    versions = {"backend": backend.name, "target": args.target, **backend.versions()}
    atomic_write_text(args.toolchain, json.dumps(versions, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    run_step(main)
