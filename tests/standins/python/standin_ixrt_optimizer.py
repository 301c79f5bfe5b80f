"""Test stand-in for iluvatar-corex-ixrt's `tools/optimizer/optimizer.py` (release 4.2.0 flags).

It keeps the real tool's file contract: outputs are named from `--onnx` with `.onnx` cut off,
`<stem>_sim.onnx` (onnxsim's result, with --dump_onnx) and `<stem>_end.onnx` (the graph ixrtexec
builds), both beside the input. It does NOT do what makes the real tool worth running: no symbolic
shape inference (so no `_sim_static*.onnx`) and no plugin fusion (no
`CustomQKVToContextPluginDynamic_IxRT` nodes): `_end.onnx` is the onnxsim-simplified model, which
onnxruntime can still run. `--input_shapes` is refused rather than half-implemented.
"""
from __future__ import annotations

import argparse
import sys

import onnx
import onnxsim

MARK = "ZOOREPRO STAND-IN"
IMITATES = "iluvatar-corex-ixrt release 4.2.0 @6d81ff77f084 tools/optimizer/optimizer.py"
MODEL_TYPES = ["bert", "swint", "roformer", "t5", "yolo", "gpt2", "vit", "conformer", "PVT", "omdet"]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="optimizer.py", description=f"{MARK} for IxRT's optimizer.py (tests only)")
    parser.add_argument("--onnx", required=True)
    parser.add_argument("--num_heads", type=int, default=0, help="fusion parameter; the stand-in fuses nothing")
    parser.add_argument("--hidden_size", type=int, default=0, help="fusion parameter; the stand-in fuses nothing")
    parser.add_argument("--input_shapes")
    parser.add_argument("--dump_onnx", action="store_true")
    parser.add_argument("--model_type", default="bert", choices=MODEL_TYPES)
    parser.add_argument("--log_level", default="info", choices=["debug", "info", "error"])
    parser.add_argument("--not_sim", action="store_true")
    return parser.parse_args(argv)


def optimize(args: argparse.Namespace) -> str:
    """Simplify (unless --not_sim), dump `_sim.onnx` if asked, write `_end.onnx`; return its path."""
    stem = args.onnx[:-5]
    model = onnx.load(args.onnx)
    if not args.not_sim:
        model, ok = onnxsim.simplify(model)
        if not ok:
            raise RuntimeError(f"onnxsim could not validate the simplified {args.onnx}")
        if args.dump_onnx:
            onnx.save(model, stem + "_sim.onnx")
    end = stem + "_end.onnx"
    onnx.save(model, end)
    return end


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.input_shapes:
        print(f"{MARK}: --input_shapes is not implemented by the stand-in optimizer", file=sys.stderr)
        return 2
    print(f"[W] {MARK}: simplifying {args.onnx} with onnxsim; no IxRT plugin fusion; it imitates {IMITATES}",
          flush=True)
    print(f"done: {optimize(args)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
