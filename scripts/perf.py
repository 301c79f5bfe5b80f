#!/usr/bin/env python
"""Pure-inference performance: the document's `ais_bench --model X --loop 20` step (one warm-up,
`loop` timed runs on all-zero inputs, throughput = 1000*bs/mean_ms, host<->device copies excluded),
plus the end-to-end figure that includes the copies. Writes the raw timings and measurement records."""
import argparse
import json
from pathlib import Path

import _bootstrap  # noqa: F401
from zoorepro.backends import get_backend
from zoorepro.cli import run_step
from zoorepro.config import load_params


def measurements(bench, precision: str, raw: str) -> list[dict]:
    bs = bench.batch_size
    rows = [{"metric": "throughput", "kind": "throughput", "batch_size": bs, "value": bench.throughput,
             "unit": "samples/s", "precision": precision,
             "note": f"1000*bs/mean compute ms over {bench.loop} runs after {bench.warmup} warm-up; copies excluded",
             "raw": [raw]},
            {"metric": "latency_mean", "kind": "latency", "batch_size": bs, "value": bench.mean_ms, "unit": "ms",
             "precision": precision, "note": "mean compute time per execute", "raw": [raw]},
            {"metric": "latency_p99", "kind": "latency", "batch_size": bs, "value": bench.p99_ms, "unit": "ms",
             "precision": precision, "note": "99th percentile compute time per execute", "raw": [raw]}]
    rows.append({"metric": "throughput_batches", "kind": "throughput", "batch_size": bs,
                 "value": bench.throughput / bs, "unit": "batches/s", "precision": precision,
                 "note": "the same runs counted as executions per second (the other reading of a tool's fps/qps)",
                 "raw": [raw]})
    if not bench.times_ms:  # the tool timed the whole loop only (ixrtexec): no percentile exists
        rows = [r for r in rows if r["metric"] != "latency_p99"]
    if bench.e2e_throughput is not None:
        rows.append({"metric": "throughput_e2e", "kind": "throughput", "batch_size": bs,
                     "value": bench.e2e_throughput, "unit": "samples/s", "precision": precision,
                     "note": "includes host<->device copies", "raw": [raw]})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--target", required=True)
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--batch-size", required=True, type=int)
    ap.add_argument("--loop", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--out", required=True, type=Path, help="raw timings JSON")
    ap.add_argument("--measurements", required=True, type=Path)
    args = ap.parse_args()
    backend = get_backend(args.target, load_params())
    backend.check()
    bench = backend.benchmark(args.model, args.batch_size, args.loop, args.warmup)
    args.out.write_text(json.dumps(bench.to_dict(), indent=2) + "\n")
    args.measurements.write_text(json.dumps(measurements(bench, backend.precision, str(args.out)), indent=2) + "\n")
    print(f"bs{args.batch_size}: {bench.throughput:.2f} samples/s (mean {bench.mean_ms:.3f} ms)")
    return 0


if __name__ == "__main__":
    run_step(main)
