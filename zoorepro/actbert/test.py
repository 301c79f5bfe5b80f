"""The document's MSR-VTT retrieval test, `python3 main.py --test -c actbert_msrvtt.yaml -w
Actbert.pdparams`, run through PaddleVideo's own main.py/test_model from the patched sources, then
checked and measured.

Usage: python -m zoorepro.actbert.test -c zoorepro/actbert/configs/actbert_msrvtt.yaml -w ActBERT.pdparams \
           --src work/src/actbert --device cpu|gpu --work-dir work/full/actbert/test \
           [--file-path CSV] [--features-path LMDB] [--vocab-dir DIR] [-o KEY=VALUE ...] \
           [--out metrics.json] [--measurements measurements.json] \
           [--captions K --throughput-only] [--flops flops.json --peak peak.json]

What it adds around PaddleVideo's run:
* `-o` overrides for the data paths, the tokenizer (`bert_model`: a local folder holding
  vocab.txt, which paddlenlp's from_pretrained reads offline; a model name, which it downloads,
  is refused), `device` and `METRIC.save_dir` (patches 04 and 08, patches/README.md);
* the full log in `<work-dir>/test.log`, the score/target matrices and the loop clock in
  `<work-dir>/` (patch 08);
* the metrics of the log's last `[N] Final ...` line AND recomputed from the score matrix, refused
  when they differ (zoorepro/actbert/metrics.py);
* captions/s over PaddleVideo's test loop only (no model building, data or weight loading),
  caption-video pairs/s, per-batch times, and the share of this step's wall time spent outside
  PaddleVideo's main.py;
* with `--flops` (zoorepro/actbert/count_flops.py's count) and `--peak` (the target's peak, the
  `peak` rule), the throughput's % of that peak: captions/s x FLOPs of a caption against the
  run's videos over the peak;
* `--captions K` (shape scale): only the first K captions are scored, each against every video of
  the csv (patch 13), so the batches keep their real shape; `--throughput-only` leaves the
  accuracy rows out (random weights: the metrics are still recomputed and checked, not reported).
"""
import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import yaml

from zoorepro.actbert.metrics import FINAL_LINE, agree, parse_final_line, ranks_from_scores, retrieval_metrics
from zoorepro.actbert.msrvtt import read_captions
from zoorepro.actbert.sources import (
    activate, check_local_vocab, override_args, parse_overrides, run_main)
from zoorepro import lineage
from zoorepro.cli import run_step
from zoorepro.readers import load_npy
from zoorepro.errors import ZooreproError
from zoorepro.fsutil import atomic_write_text
from zoorepro.measurements import Measurement, write_measurements
from zoorepro.progress import Progress, progress
from zoorepro.runners.paddle import check_device

RAW_FILES = ("score_matrix.npy", "target_matrix.npy", "update_times.npy")
ACCURACY_UNITS = {"R@1": "percent", "R@5": "percent", "R@10": "percent", "MedianR": "rank", "MeanR": "rank"}


class CaptionProgress(logging.Handler):
    """Progress of PaddleVideo's test loop, read off the `[N] Final r1:...` line its metric logs
    after each caption (nothing in PaddleVideo changes; the handler's work per caption is a regex
    match and a clock reading, inside the timed loop but negligible beside a caption's forward)."""

    def __init__(self, bar: Progress) -> None:
        super().__init__()
        self.bar = bar

    def emit(self, record: logging.LogRecord) -> None:
        match = FINAL_LINE.search(record.getMessage())
        if match:
            self.bar.set_postfix_str(f"running R@1 {match[2]}", refresh=False)
            self.bar.update()


def main_overrides(args: argparse.Namespace) -> dict[str, str]:
    """Everything main.py gets with -o: the named paths (absolute, see override_args), device and
    the metric's save_dir, then the caller's own -o (which win)."""
    named = {"DATASET.test.file_path": args.file_path, "DATASET.test.features_path": args.features_path,
             "DATASET.test.bert_model": args.vocab_dir}
    overrides = {key: str(path.resolve()) for key, path in named.items() if path is not None}
    overrides["device"] = args.device
    overrides["METRIC.save_dir"] = str(args.work_dir.resolve())
    overrides.update(parse_overrides(args.override))
    return overrides


def effective_test_config(config: Path, overrides: dict[str, str]) -> dict:
    """The test dataset settings main.py will use: the yaml's DATASET with the overrides applied
    (only the keys this script reads). The tokenizer must come from a local folder (see
    check_local_vocab)."""
    dataset = (yaml.safe_load(config.read_text()) or {}).get("DATASET") or {}
    test = dict(dataset.get("test") or {})
    for key in ("file_path", "features_path", "bert_model"):
        test[key] = overrides.get(f"DATASET.test.{key}", test.get(key))
    check_local_vocab(config, "DATASET.test.bert_model", test.get("bert_model"))
    batch_size = int(overrides.get("DATASET.test_batch_size", dataset.get("test_batch_size", 8)))
    return {**test, "batch_size": batch_size}


def clear_raw(work_dir: Path) -> None:
    """Remove a previous run's raw outputs, so a run that fails before saving its own can never be
    read together with them."""
    work_dir.mkdir(parents=True, exist_ok=True)
    for name in RAW_FILES:
        (work_dir / name).unlink(missing_ok=True)


def load_raw(work_dir: Path) -> dict[str, np.ndarray]:
    """The matrices and clock patch 08 saved at the end of test_model."""
    missing = [name for name in RAW_FILES if not (work_dir / name).is_file()]
    if missing:
        raise ZooreproError(f"{work_dir}: PaddleVideo's run saved no {missing} (is METRIC.save_dir set and "
                            "are the patched sources active?)")
    return {name.removesuffix(".npy"): load_npy(work_dir / name) for name in RAW_FILES}


def batch_stats(update_times: np.ndarray) -> dict:
    """The loop's wall time and per-batch times (seconds) from the metric's clock: one reading when
    it was built, right before the loop, and one after each batch."""
    batches = np.diff(update_times)
    return {"loop_s": float(update_times[-1] - update_times[0]), "n_batches": len(batches),
            "batch_s_mean": float(np.mean(batches)), "batch_s_median": float(np.median(batches)),
            "batch_s_max": float(np.max(batches)), "batch_s_first": float(batches[0])}


def peak_record(result: dict, flops_file: Path, peak_file: Path, raw: str) -> list[Measurement]:
    """`throughput % of peak`: captions/s x FLOPs of one caption against the run's videos
    (count_flops' fixed + videos x per-video count) over the target's peak; nothing (the reason
    printed) when the peak is unknown."""
    from zoorepro.peaks import read_peak

    peak = read_peak(peak_file)
    if peak is None:
        print(f"% of peak: no peak known for this target ({peak_file}): no row")
        return []
    count = json.loads(Path(flops_file).read_text())
    per_caption = count["fixed"] + result["n_videos"] * count["per_video"]
    rate = result["n_captions"] / result["timing"]["loop_s"]
    note = (f"{per_caption / 1e9:.4g} GFLOP a caption against {result['n_videos']} videos "
            f"({count['fixed'] / 1e9:.4g} once + {count['per_video'] / 1e9:.4g} a video; {count['method']}; "
            f"zoorepro.actbert.count_flops) x captions/s over {peak.describe()}")
    return [Measurement("throughput % of peak", "throughput", peak.percent(rate * per_caption), "percent",
                        batch_size=result["batch_size"], precision="fp32", raw=(raw,), note=note)]


def measurement_records(result: dict, raw: str, accuracy: bool = True) -> list[Measurement]:
    """The five retrieval metrics (the recomputed values, equal to the log's within its 3
    decimals; left out with accuracy=False), captions/s and caption-video pairs/s over the test
    loop, the median batch time, and the harness overhead."""
    bs, n = result["batch_size"], result["n_captions"]
    note = (f"{n} captions x {result['n_videos']} videos, text-to-video; {result['device']}; paddle "
            f"{result['paddle']}; log line [{result['logged']['batch_id']}] and score-matrix recomputation agree")
    if result["caption_note"]:
        note += f"; {result['caption_note']}"
    common = {"batch_size": bs, "precision": "fp32", "raw": (raw,)}
    records = [Measurement(name, "accuracy", result["recomputed"][name], unit, note=note, **common)
               for name, unit in ACCURACY_UNITS.items()] if accuracy else []
    timing = result["timing"]
    loop_note = (f"{n} captions in {timing['loop_s']:.3f} s of PaddleVideo's test loop (data loader, forward of "
                 f"the caption against all {result['n_videos']} videos, metric update); model build, data and "
                 f"weight loading excluded; {result['device']}")
    records.append(Measurement("throughput", "throughput", n / timing["loop_s"], "captions/s", note=loop_note,
                               **common))
    records.append(Measurement("throughput_pairs", "throughput", n * result["n_videos"] / timing["loop_s"],
                               "pairs/s", note=f"the same loop counted as caption-video pairs scored "
                                               f"({result['n_videos']} a caption)", **common))
    records.append(Measurement("batch_latency", "latency", 1000.0 * timing["batch_s_median"], "ms",
                               note=f"median of {timing['n_batches']} per-batch times (mean "
                                    f"{1000.0 * timing['batch_s_mean']:.3f} ms, first "
                                    f"{1000.0 * timing['batch_s_first']:.3f} ms)", **common))
    records.append(Measurement("harness_overhead", "latency", timing["harness_overhead"], "fraction",
                               note=(f"share of this step's {timing['step_s']:.2f} s outside PaddleVideo's main.py "
                                     f"({timing['main_s']:.2f} s with its paddle import, of which "
                                     f"{timing['loop_s']:.2f} s test loop): argument and config reading, log "
                                     "parsing, recomputation"), **common))
    return records


def main() -> int:
    step_start = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--config", type=Path, required=True, help="PaddleVideo test config")
    parser.add_argument("-w", "--weights", type=Path, required=True, help="the model's .pdparams")
    parser.add_argument("--src", type=Path, default=Path("work/src/actbert"),
                        help="patched PaddleVideo sources (the actbert sources step)")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="gpu",
                        help="paddle device (the document's is gpu)")
    parser.add_argument("--work-dir", type=Path, required=True, help="test.log and the raw matrices go here")
    parser.add_argument("--file-path", type=Path, help="caption csv (DATASET.test.file_path)")
    parser.add_argument("--features-path", type=Path, help="feature lmdb (DATASET.test.features_path)")
    parser.add_argument("--vocab-dir", type=Path, help="folder holding BERT's vocab.txt (DATASET.test.bert_model)")
    parser.add_argument("-o", "--override", action="append", default=[], help="more main.py -o KEY=VALUE")
    parser.add_argument("--seed", type=int, default=1234, help="main.py --seed (its default)")
    parser.add_argument("--out", type=Path, help="write the metrics and timings here (JSON)")
    parser.add_argument("--measurements", type=Path, help="write measurement records here (JSON list)")
    parser.add_argument("--captions", type=int,
                        help="score only the first K captions, each against every video of the csv (shape scale)")
    parser.add_argument("--throughput-only", action="store_true",
                        help="no accuracy rows (shape scale: random weights); the metrics are still checked")
    parser.add_argument("--flops", type=Path, help="count_flops' count of this config (for %% of peak)")
    parser.add_argument("--peak", type=Path, help="the target's peak (python -m zoorepro.peaks --json)")
    args = parser.parse_args()
    if args.captions is not None and args.captions < 1:
        raise ZooreproError(f"--captions {args.captions}: need at least one caption")
    if not args.weights.is_file():
        raise ZooreproError(f"{args.weights}: no such weights file")

    main_py = activate(args.src)
    paddle_start = time.perf_counter()
    import paddle  # main.py's first import: its time is counted on PaddleVideo's side

    paddle_s = time.perf_counter() - paddle_start
    check_device(args.device)
    overrides = main_overrides(args)
    test_cfg = effective_test_config(args.config, overrides)
    captions = read_captions(test_cfg["file_path"])
    n_scored = len(captions) if args.captions is None else min(args.captions, len(captions))
    if args.captions is not None:  # patch 13: the first K captions, each against every video of the csv
        overrides.update({"DATASET.test.n_captions": str(n_scored), "METRIC.n_videos": str(len(captions))})
    clear_raw(args.work_dir)
    log_file = args.work_dir / "test.log"
    main_args = ["--test", "-c", str(args.config.resolve()), "-w", str(args.weights.resolve()),
                 "--seed", str(args.seed), *override_args(overrides)]
    logger = logging.getLogger("paddlevideo")
    with progress(total=n_scored, desc="MSR-VTT retrieval test", unit="captions") as bar:
        handler = CaptionProgress(bar)
        logger.addHandler(handler)
        try:
            main_start = time.perf_counter()
            run_main(main_py, main_args, log_file)
            main_s = time.perf_counter() - main_start
        finally:
            logger.removeHandler(handler)

    raw = load_raw(args.work_dir)
    logged = parse_final_line(log_file.read_text(encoding="utf-8"), expected_captions=n_scored)
    recomputed = retrieval_metrics(ranks_from_scores(raw["score_matrix"], raw["target_matrix"]))
    agree(logged, recomputed)
    timing = batch_stats(raw["update_times"])
    step_s = time.perf_counter() - step_start
    timing.update(main_s=paddle_s + main_s, step_s=step_s, harness_overhead=(step_s - paddle_s - main_s) / step_s)
    result = {"config": str(args.config), "weights": str(args.weights), "device": args.device,
              "paddle": paddle.__version__, "batch_size": test_cfg["batch_size"], "n_captions": n_scored,
              "n_videos": int(raw["score_matrix"].shape[1]), "caption_note": captions.note,
              "logged": logged, "recomputed": recomputed, "timing": timing, "log": str(log_file)}
    print(json.dumps({k: result[k] for k in ("n_captions", "logged", "recomputed", "timing")}, indent=2))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    lineage.record(args.work_dir, [args.weights, args.config, *(p for p in (args.file_path, args.features_path,
                                                                             args.vocab_dir) if p)])
    if args.measurements is not None:
        records = measurement_records(result, str(args.work_dir), accuracy=not args.throughput_only)
        if args.flops is not None and args.peak is not None:
            records += peak_record(result, args.flops, args.peak, str(args.work_dir))
        write_measurements(args.measurements, records)
    return 0


if __name__ == "__main__":
    run_step(main)
