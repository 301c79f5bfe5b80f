"""Pure-inference performance: the document's `ais_bench --model X --loop 20` step (one warm-up,
`loop` timed runs on all-zero inputs, throughput = 1000*bs/mean_ms, host<->device copies excluded),
plus the end-to-end figure that includes the copies. Writes the raw timings and measurement records.

With `--flops-onnx` (the ONNX graph the model was compiled from, static at this batch size) and
`--peak` (the target's peak, `python -m zoorepro.peaks --hardware ... --json`), also the throughput's
% of the chip's peak: samples/s x FLOPs a sample (counted from the graph, zoorepro/flops.py) over
the peak, with both sources in the row's note.

Usage: python -m zoorepro.steps.perf --target cpu --model M --batch-size 4 --out raw.json --measurements m.json
           [--flops-onnx G.onnx --peak work/<scale>/peaks/<target>.json]
"""
import argparse
import json
from pathlib import Path

from zoorepro import lineage
from zoorepro.backends import get_backend
from zoorepro.cli import run_step
from zoorepro.config import load_params
from zoorepro.fsutil import atomic_write_text
from zoorepro.measurements import Measurement, print_measurements, write_measurements


def measurements(bench, precision: str, raw: str) -> list[Measurement]:
    bs = bench.batch_size
    common = {"batch_size": bs, "precision": precision, "raw": (raw,)}
    rows = [Measurement("throughput", "throughput", bench.throughput, "samples/s",
                        note=f"1000*bs/mean compute ms over {bench.loop} runs after {bench.warmup} warm-up; "
                             "copies excluded", **common),
            Measurement("latency_mean", "latency", bench.mean_ms, "ms", note="mean compute time per execute", **common)]
    if bench.times_ms:  # a tool that timed the whole loop only (ixrtexec) has no percentile
        rows.append(Measurement("latency_p99", "latency", bench.p99_ms, "ms",
                                note="99th percentile compute time per execute", **common))
    rows.append(Measurement("throughput_batches", "throughput", bench.throughput / bs, "batches/s",
                            note="the same runs counted as executions per second (the other reading of a tool's "
                                 "fps/qps)", **common))
    if bench.e2e_throughput is not None:
        rows.append(Measurement("throughput_e2e", "throughput", bench.e2e_throughput, "samples/s",
                                note="compute mean plus every host<->device copy of one batch (each input in, "
                                     "each output out)", **common))
    return rows


def percent_of_peak(samples_per_s: float, batch_size: int, graph: Path, peak_file: Path, precision: str,
                    raw: str, shapes: dict | None = None) -> list[Measurement]:
    """`throughput % of peak`: samples/s x FLOPs a sample of `graph` (counted at `shapes`, or its own
    static shapes, divided by the batch size) over the target's peak; nothing (with the reason
    printed) when the peak is unknown or the graph's shapes cannot be inferred. Every model's perf
    step may add it."""
    from zoorepro import flops
    from zoorepro.peaks import read_peak

    peak = read_peak(peak_file)
    if peak is None:
        print(f"% of peak: no peak known for this target ({peak_file}): no row")
        return []
    counted = flops.count(graph, shapes or {})
    if counted.uncounted:
        print(f"% of peak: shapes not inferred for {len(counted.uncounted)} nodes of {graph}: no row")
        return []
    per_sample = counted.total / batch_size
    return [Measurement("throughput % of peak", "throughput", peak.percent(samples_per_s * per_sample), "percent",
                        batch_size=batch_size, precision=precision, raw=(raw,),
                        note=f"{per_sample / 1e9:.4g} GFLOP a sample at bs{batch_size} ({flops.METHOD}; {graph.name}) "
                             f"x samples/s over {peak.describe()}")]


def peak_rows(bench, precision: str, raw: str, graph: Path, peak_file: Path,
              shapes: dict | None = None) -> list[Measurement]:
    """percent_of_peak for the compute throughput of a benchmark on a graph static at its batch size
    (or counted at `shapes`, the input shapes the model was built for)."""
    return percent_of_peak(bench.throughput, bench.batch_size, graph, peak_file, precision, raw, shapes)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", required=True)
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--batch-size", required=True, type=int)
    ap.add_argument("--loop", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--out", required=True, type=Path, help="raw timings JSON")
    ap.add_argument("--measurements", required=True, type=Path)
    ap.add_argument("--flops-onnx", type=Path, help="the ONNX graph the model was compiled from (FLOPs a sample)")
    ap.add_argument("--flops-input-shape", nargs="+", default=[], metavar="NAME:D0,D1,...",
                    help="the input shapes to count --flops-onnx at, where its own are dynamic")
    ap.add_argument("--peak", type=Path, help="the target's peak (python -m zoorepro.peaks --json)")
    args = ap.parse_args()
    backend = get_backend(args.target, load_params())
    backend.check()
    bench = backend.benchmark(args.model, args.batch_size, args.loop, args.warmup)
    atomic_write_text(args.out, json.dumps(bench.to_dict(), indent=2) + "\n")
    lineage.record(args.out, [args.model])
    rows = measurements(bench, backend.precision, str(args.out))
    if args.flops_onnx and args.peak:
        from zoorepro.steps.simplify import parse_input_shapes
        shapes = {name: tuple(dims) for name, dims in parse_input_shapes(args.flops_input_shape).items()}
        rows += peak_rows(bench, backend.precision, str(args.out), args.flops_onnx, args.peak, shapes)
    print_measurements(write_measurements(args.measurements, rows))
    return 0


if __name__ == "__main__":
    run_step(main)
