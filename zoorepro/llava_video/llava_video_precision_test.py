"""The document's precision test (精度测试): the NPU's answers against the GPU's, both against the
sampled correct answers.

    python llava_video_precision_test.py --eval_npu_path NPU.json --eval_gpu_path GPU.json
        --sampling_answer_path sampling_answer.json

Rows per checkpoint (percent): the document's reading exactly (`<ckpt> GPU accuracy (document
reading)`, `<ckpt> NPU accuracy (document reading)`, over the questions parsed in both files; the
NPU string's `[0]` is one character) and their gap; the corrected reading's gap `<ckpt> |NPU-GPU|
accuracy gap` (each side's accuracy over every sampled question: the document's implicit claim is
that this is ~0); and `<ckpt> NPU-GPU same answer`, the share of questions both answer with the same
letter. judging.py says what each reading does.

Usage: python -m zoorepro.llava_video.llava_video_precision_test --eval_npu_path N --eval_gpu_path G
         --sampling_answer_path A --ckpt 7B --precision float16 --out precision_test.measurements.json
"""
from __future__ import annotations

import argparse
from pathlib import Path

from zoorepro.cli import run_step
from zoorepro.llava_video import judging
from zoorepro.llava_video.pipeline import (
    AGREEMENT,
    DOC_GAP,
    DOC_GPU,
    DOC_NPU,
    GAP,
    metric,
)
from zoorepro.llava_video.videobench import read_json
from zoorepro.measurements import Measurement, print_measurements, write_measurements


def precision_records(npu_path: Path, gpu_path: Path, answer_path: Path, ckpt: str, precision: str) -> list[Measurement]:
    npu, gpu = read_json(npu_path, "NPU answers file"), read_json(gpu_path, "GPU answers file")
    answers = read_json(answer_path, "sampling answer file")
    raw = (str(npu_path), str(gpu_path), str(answer_path))
    common = {"kind": "accuracy", "unit": "percent", "precision": precision, "raw": raw}
    doc = judging.document_accuracy(npu, gpu, answers)
    doc_note = (f"document reading: {doc['denominator']} of {doc['questions']} questions parsed in both files "
                f"(NPU parsed {doc['npu_parsed']}, GPU {doc['gpu_parsed']})")
    npu_acc = judging.corrected_accuracy(npu, answers)
    gpu_acc = judging.corrected_accuracy(gpu, answers)
    same = judging.agreement(npu, gpu)
    print(f"INFO:root:gpu {doc['gpu']:.4f} ")  # the document's two printed lines
    print(f"INFO:root:npu {doc['npu']:.4f} ")
    return [
        Measurement(metric(ckpt, DOC_GPU), value=100 * doc["gpu"], note=doc_note, **common),
        Measurement(metric(ckpt, DOC_NPU), value=100 * doc["npu"], note=doc_note, **common),
        Measurement(metric(ckpt, DOC_GAP), value=100 * abs(doc["npu"] - doc["gpu"]), note=doc_note, **common),
        Measurement(metric(ckpt, GAP), value=100 * abs(npu_acc["accuracy"] - gpu_acc["accuracy"]),
                    note=(f"corrected reading: NPU {100 * npu_acc['accuracy']:.2f} %, GPU "
                          f"{100 * gpu_acc['accuracy']:.2f} % over {npu_acc['questions']} questions"), **common),
        Measurement(metric(ckpt, AGREEMENT), value=100 * same["agreement"],
                    note=f"same letter (corrected reading) on {same['questions']} questions", **common),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--eval_npu_path", required=True, type=Path)
    ap.add_argument("--eval_gpu_path", required=True, type=Path)
    ap.add_argument("--sampling_answer_path", required=True, type=Path)
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--precision", default="")
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    records = precision_records(args.eval_npu_path, args.eval_gpu_path, args.sampling_answer_path, args.ckpt,
                                args.precision)
    print_measurements(write_measurements(args.out, records))
    return 0


if __name__ == "__main__":
    run_step(main)
