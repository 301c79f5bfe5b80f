#!/usr/bin/env python
"""The document's accuracy step: precision/recall/fscore/vqa_score of ais_bench outputs against the
preprocessed labels, with allennlp's formulas (zoorepro/vilbert/metrics.py).

Usage (the document's flags, plus where to write the numbers):
  python -m zoorepro.vilbert.postprocess --archive_file=vilbert-vqa-pretrained.2021-03-15.tar.gz \
      --result_dir=outputs/<timestamp>/ --label_dir=preprocessed_data/labels \
      --label_weight_dir=preprocessed_data/label_weights \
      [--out metrics.json] [--measurements measurements.json --precision fp16]

The archive is read only for the size of its answer vocabulary, which every logits file must
match; without it the logits' own width is used.
"""
import argparse
import json
from pathlib import Path

from zoorepro.cli import run_step
from zoorepro.fsutil import atomic_write_text
from zoorepro.measurements import write_measurements
from zoorepro.vilbert.metrics import answer_vocab_size, evaluate, measurement_records


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive_file", type=Path, help="model archive (.tar.gz) holding vocabulary/answers.txt")
    parser.add_argument("--result_dir", type=Path, required=True, help="ais_bench output folder ({i}_0.npy)")
    parser.add_argument("--label_dir", type=Path, required=True)
    parser.add_argument("--label_weight_dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, help="write the metrics dict here (JSON)")
    parser.add_argument("--measurements", type=Path, help="write measurement records here (JSON list)")
    parser.add_argument("--precision", help="precision the outputs were computed in (fp32, fp16, ...); "
                                            "required with --measurements")
    args = parser.parse_args()
    if args.measurements is not None and not args.precision:
        parser.error("--measurements needs --precision")
    n_classes = None
    if args.archive_file is not None:
        n_classes = answer_vocab_size(args.archive_file)
        print(f"answer vocabulary of {args.archive_file}: {n_classes} classes")
    metrics = evaluate(args.result_dir, args.label_dir, args.label_weight_dir, n_classes)
    print({k: metrics[k] for k in ("precision", "recall", "fscore", "vqa_score")})
    if args.out is not None:
        atomic_write_text(args.out, json.dumps(metrics, indent=2) + "\n")
    if args.measurements is not None:
        raw = [args.result_dir, args.label_dir, args.label_weight_dir]
        write_measurements(args.measurements, measurement_records(metrics, args.precision, raw))
    return 0


if __name__ == "__main__":
    run_step(main)
