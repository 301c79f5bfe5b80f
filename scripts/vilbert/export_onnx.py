#!/usr/bin/env python
"""The document's export step: the archive's VqaVilbert -> ONNX (inputs box_features,
box_coordinates, box_mask, token_ids, mask, type_ids; outputs logits, probs), checked against
torch with onnxruntime (see zoorepro/vilbert/export.py).

Usage: python scripts/vilbert/export_onnx.py --archive_file data/mini/vilbert/vilbert-vqa-mini.tar.gz
           --save_path work/mini/vilbert/onnx/vqa-vilbert.onnx [--src work/src/vilbert]
           [--opset 17] [--pad_len 32] [--box_num 100] [--batch_size 1] [--pretrained_dir DIR]
"""
import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from zoorepro.cli import run_step  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive_file", type=Path, required=True)
    parser.add_argument("--save_path", type=Path, required=True)
    parser.add_argument("--src", type=Path, default=Path("work/src/vilbert"))
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument("--pad_len", type=int, default=32)
    parser.add_argument("--box_num", type=int, default=100)
    parser.add_argument("--batch_size", type=int, default=1)
    parser.add_argument("--pretrained_dir", type=Path, default=None,
                        help="local copy of the Hugging Face model the archive's model is built from "
                             "(the real archive: bert-base-uncased); not needed for the mini archive")
    args = parser.parse_args()
    # Set before transformers is imported (it reads them once): nothing may be downloaded.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from zoorepro.vilbert.export import export

    start = time.perf_counter()
    print("[INFO] Export to onnx.")
    diffs = export(args.archive_file, args.save_path, args.src, opset=args.opset, pad_len=args.pad_len,
                   box_num=args.box_num, batch_size=args.batch_size, pretrained_dir=args.pretrained_dir)
    print("[INFO] onnxruntime vs torch, max abs diff: "
          + ", ".join(f"{name} input {diff:.3g}" for name, diff in diffs.items()))
    print(f"[INFO] Done! {args.save_path} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    run_step(main)
