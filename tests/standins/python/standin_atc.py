"""Test stand-in for CANN's ATC: the real flag names and console lines, but the "OM" it writes is
the ONNX model wrapped in a stand-in header, to be run by the stand-in ais_bench on the CPU.

It enforces what the document's ATC step relies on: ONNX input (framework 5), a known chip name,
and fully static input shapes (the document's ATC command passes no --input_shape).
"""
from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

import onnx
import onnx.helper
import onnxruntime
from standin_om import MARK, StandinError, write_om

SOC_PATTERN = re.compile(r"Ascend(310P\d|310B\d|310|910[A-Z0-9]*)")
VERSION_LINE = f"ATC {MARK} 0.1 (onnxruntime {onnxruntime.__version__} on the CPU; not CANN)"
REQUIRED = ("framework", "model", "output", "soc_version")


class _Parser(argparse.ArgumentParser):
    """Bad flags end like every other ATC failure: an `ATC run failed` line and exit 1."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise StandinError(message)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = _Parser(prog="atc", description="ZOOREPRO stand-in for ATC (tests only; not CANN)")
    parser.add_argument("--framework", help="5 = ONNX (the only one the stand-in takes)")
    parser.add_argument("--model", help="ONNX file")
    parser.add_argument("--output", help="output path without .om")
    parser.add_argument("--input_format", default="NCHW")
    parser.add_argument("--log", default="null", choices=["debug", "info", "warning", "error", "null"])
    parser.add_argument("--soc_version")
    parser.add_argument("--optypelist_for_implmode")
    parser.add_argument(
        "--op_select_implmode",
        choices=["high_performance", "high_precision", "high_performance_for_all", "high_precision_for_all"],
    )
    parser.add_argument(
        "--precision_mode",
        default="force_fp16",
        choices=["force_fp32", "force_fp16", "allow_fp32_to_fp16", "must_keep_origin_dtype", "allow_mix_precision"],
    )
    parser.add_argument("--version", action="store_true")
    return parser.parse_args(argv)


def _validate(args: argparse.Namespace) -> None:
    missing = [f"--{name}" for name in REQUIRED if getattr(args, name) is None]
    if missing:
        raise StandinError(f"required: {', '.join(missing)}")
    if args.framework != "5":
        raise StandinError(f"--framework={args.framework}: the stand-in converts only ONNX (5)")
    if not SOC_PATTERN.fullmatch(args.soc_version):
        raise StandinError(f"--soc_version={args.soc_version} is not a known chip (e.g. Ascend310P3)")
    if args.optypelist_for_implmode and not args.op_select_implmode:
        raise StandinError("--optypelist_for_implmode must be combined with --op_select_implmode")


def _static_inputs(model: onnx.ModelProto) -> list[dict]:
    """Graph inputs (not initializers) with their shapes, refusing any symbolic or unknown dim."""
    initializers = {t.name for t in model.graph.initializer}
    inputs = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tensor.shape.dim]
        if not tensor.HasField("shape") or any(not isinstance(d, int) or d <= 0 for d in dims):
            raise StandinError(f"input {value.name} has a dynamic shape {dims}; give ATC a static ONNX model")
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
        inputs.append({"name": value.name, "shape": dims, "dtype": dtype})
    if not inputs:
        raise StandinError("the model has no inputs")
    return inputs


def convert(args: argparse.Namespace) -> Path:
    """Check the ONNX as ATC would (parse, static shapes, loadable) and write the stand-in OM."""
    _validate(args)
    source = Path(args.model)
    try:
        onnx_bytes = source.read_bytes()
        model = onnx.load_from_string(onnx_bytes)
        onnx.checker.check_model(model)
        inputs = _static_inputs(model)
        onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    except StandinError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parse/load failure is an ATC failure
        raise StandinError(f"cannot convert {source}: {exc}") from None
    meta = {
        "standin": f"{MARK}: ONNX run by onnxruntime on the CPU, not an Ascend OM",
        "soc_version": args.soc_version,
        "batch_size": inputs[0]["shape"][0],
        "inputs": inputs,
        "outputs": [o.name for o in model.graph.output],
        "options": {
            "input_format": args.input_format,
            "precision_mode": args.precision_mode,
            "op_select_implmode": args.op_select_implmode or "high_performance",
            "optypelist_for_implmode": args.optypelist_for_implmode,
        },
        "onnx_sha256": hashlib.sha256(onnx_bytes).hexdigest(),
    }
    output = Path(args.output.removesuffix(".om") + ".om")
    output.parent.mkdir(parents=True, exist_ok=True)
    write_om(output, meta, onnx_bytes)
    return output


def main(argv: list[str]) -> int:
    try:
        args = parse_args(argv)
        if args.version:
            print(VERSION_LINE)
            return 0
        print("ATC start working now, please wait for a moment.", flush=True)
        convert(args)
    except StandinError as exc:
        print(f"ATC run failed ({MARK}): {exc}")
        return 1
    print("ATC run success, welcome to the next use.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
