"""Score one target's answers against the sampled correct answers: accuracy in the corrected
reading (zoorepro/llava_video/judging.py: A-F, unparseable counted wrong), per subset, and
Video-Bench's own score (per-subset accuracy, its three levels and the final score, with the weights
of its scoring script; videobench.py). Table rows per checkpoint: `<ckpt> accuracy`, `<ckpt>
accuracy <Subset>`, `<ckpt> Video-Bench level1..3`, `<ckpt> Video-Bench final score` (percent).

Usage: python -m zoorepro.llava_video.videobench_score --eval sampling_data_eval.json
         --sampling_answer_path sampling_answer.json --ckpt 7B --precision float32 --out score.measurements.json
"""
from __future__ import annotations

import argparse
from pathlib import Path

from zoorepro.cli import run_step
from zoorepro.llava_video import judging, videobench
from zoorepro.llava_video.pipeline import ACCURACY, FINAL_SCORE, metric
from zoorepro.measurements import Measurement, print_measurements, write_measurements


def score_records(eval_path: Path, answer_path: Path, ckpt: str, precision: str) -> list[Measurement]:
    result = judging.corrected_accuracy(videobench.read_json(eval_path, "answers file"),
                                        videobench.read_json(answer_path, "sampling answer file"))
    raw = (str(eval_path), str(answer_path))
    n = result["questions"]
    common = {"kind": "accuracy", "unit": "percent", "precision": precision, "raw": raw}
    records = [Measurement(metric(ckpt, ACCURACY), value=100 * result["accuracy"],
                           note=f"corrected reading: {n} sampled questions, {result['unparsed']} unparseable "
                                "(counted wrong)", **common)]
    for subset, acc in sorted(result["per_subset"].items()):
        records.append(Measurement(metric(ckpt, f"{ACCURACY} {subset}"), value=100 * acc,
                                   note=f"{result['counts'][subset]} questions", **common))
    score = videobench.videobench_score(result["per_subset"])
    for level in ("level1", "level2", "level3"):
        if score.get(level) is not None:
            records.append(Measurement(metric(ckpt, f"Video-Bench {level}"), value=100 * score[level],
                                       note=score.get("note", ""), **common))
    records.append(Measurement(metric(ckpt, FINAL_SCORE), value=100 * score["final"],
                               note=score.get("note", "") or "Video-Bench's level weights", **common))
    return records


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--eval", required=True, type=Path, help="a target's sampling_data_eval.json")
    ap.add_argument("--sampling_answer_path", required=True, type=Path)
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--precision", default="")
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    print_measurements(write_measurements(args.out, score_records(args.eval, args.sampling_answer_path, args.ckpt,
                                                                  args.precision)))
    return 0


if __name__ == "__main__":
    run_step(main)
