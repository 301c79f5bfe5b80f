#!/usr/bin/env python
"""The document's `python3 fix_onnx.py in.onnx out.onnx`: clamp Mul constants to the fp16 range and
replace Gather(-1) by Slice + Squeeze (see zoorepro/vilbert/fix_onnx.py for what differs).

Usage: python scripts/vilbert/fix_onnx.py in.onnx out.onnx
"""
import sys
from pathlib import Path

# Run as a script, this file's folder is sys.path[0]; the repo root takes its place so that
# `zoorepro` imports from a checkout, and no file here shadows a package of the same name.
sys.path[0] = str(Path(__file__).resolve().parents[2])

from zoorepro.vilbert.fix_onnx import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
