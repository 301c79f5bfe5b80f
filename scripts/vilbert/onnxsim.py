#!/usr/bin/env python
"""The document's `python -m onnxsim in.onnx out.onnx --input-shape "box_features:1,100,1024" ...`
with the shapes checked against the model before and after (see zoorepro/onnxsim_step.py).

Usage: python scripts/vilbert/onnxsim.py in.onnx out.onnx --input-shape NAME:D0,D1,... [...] [--check-n 3]
"""
import sys
from pathlib import Path

# Run as a script, this file's folder is sys.path[0], where this very file would shadow the
# onnxsim package; the repo root takes its place so that `zoorepro` (and the real onnxsim) import.
sys.path[0] = str(Path(__file__).resolve().parents[2])

from zoorepro.onnxsim_step import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
