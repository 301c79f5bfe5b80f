#!/usr/bin/env python
"""Export a CLIPModel folder to ONNX with video-bert.onnx's signature (inputs image
[B,3,224,224] float32, text [100,77] int64; outputs logits_per_image [B,100], logits_per_text
[100,B]), checked against torch with onnxruntime (see zoorepro/videobert/export.py).

Usage: python scripts/videobert/export_onnx.py --model_dir data/mini/videobert/open_videobert/mini-clip
           --save_path work/mini/videobert/onnx/video-bert.onnx [--opset 17]
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
    parser.add_argument("--model_dir", type=Path, required=True)
    parser.add_argument("--save_path", type=Path, required=True)
    parser.add_argument("--opset", type=int, default=17)
    args = parser.parse_args()
    # Set before transformers is imported (it reads them once): nothing may be downloaded.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from zoorepro.videobert.export import export

    start = time.perf_counter()
    diffs = export(args.model_dir, args.save_path, args.opset)
    print("[INFO] onnxruntime vs torch, max abs diff: "
          + ", ".join(f"batch {bs}: {diff:.3g}" for bs, diff in diffs.items()))
    print(f"[INFO] Done! {args.save_path} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    run_step(main)
