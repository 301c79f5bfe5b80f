#!/usr/bin/env python
"""The document's accuracy step: precision/recall/fscore/vqa_score of ais_bench outputs against the
preprocessed labels, with allennlp's formulas (zoorepro/vilbert/metrics.py).

Usage (the document's flags, plus where to write the numbers):
  python scripts/vilbert/postprocess.py --archive_file=vilbert-vqa-pretrained.2021-03-15.tar.gz \
      --result_dir=outputs/<timestamp>/ --label_dir=preprocessed_data/labels \
      --label_weight_dir=preprocessed_data/label_weights \
      [--out metrics.json] [--measurements measurements.json --precision fp16]

The archive is read only for the size of its answer vocabulary, which every logits file must
match; without it the logits' own width is used.
"""
import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

# Run as a script, this file's folder is sys.path[0]; the repo root takes its place so that
# `zoorepro` imports from a checkout, and no file here shadows a package of the same name.
sys.path[0] = str(Path(__file__).resolve().parents[2])

from zoorepro.cli import run_step  # noqa: E402
from zoorepro.vilbert.metrics import answer_vocab_size, evaluate, measurement_records  # noqa: E402


def write_json_atomic(path: Path, data: object) -> None:
    """Temporary file beside `path`, then rename: a killed run leaves no half-written JSON."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
        write_json_atomic(args.out, metrics)
    if args.measurements is not None:
        write_json_atomic(args.measurements, measurement_records(metrics, args.precision, str(args.result_dir)))
    return 0


if __name__ == "__main__":
    run_step(main)
