"""Test stand-in for CANN's ATC: the real flag names and console lines, but the "OM" it writes is
the ONNX model wrapped in a stand-in header, to be run by the stand-in ais_bench on the CPU.

It enforces what the document's ATC step relies on: ONNX input (framework 5), a known chip name,
and fully static input shapes (the document's ATC command passes no --input_shape). It imitates
the ATC of its era (standin_versions.py): the "ATC start working now" banner first, before any
flag is read; `--version` accepted by the gflags front end (CANN 6.0.1: prints the program name,
exit 0) and rejected by the current one (CANN 8.0.RC2: `ERROR: unknown command line flag
'version'`, exit 1); a model whose ONNX opset the release registers no parsers for fails with
E19010, as ATC does. Under a precision mode that computes in fp16 (ATC's default force_fp16 on
the 310/310P chips, allow_fp32_to_fp16, allow_mix_precision) the graph's float constants are
rounded to float16 and stored back as float32 (finfo(float32).min becomes -inf, as on the chip);
activations stay fp32, so this models ATC's constant overflow, not its fp16 arithmetic.
"""
from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

import numpy as np
import onnx
import onnx.helper
import onnx.numpy_helper
import onnxruntime
from standin_om import MARK, StandinError, write_om
from standin_versions import era

SOC_PATTERN = re.compile(r"Ascend(310P\d|310B\d|310|910[A-Z0-9]*)")
BANNER = "ATC start working now, please wait for a moment."
FAILED = "ATC run failed, Please check the detail log, Try 'atc --help' for more information"
SUCCESS = "ATC run success, welcome to the next use."
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
    if era().atc_knows_version:
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


def _check_opset(model: onnx.ModelProto) -> None:
    """ATC registers its ONNX parsers per op and opset: an opset outside the release's range has
    none, and ATC names the first op it cannot parse."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    low, high = era().onnx_opsets
    if opset is not None and not low <= opset <= high and model.graph.node:
        node = model.graph.node[0]
        raise StandinError(f"E19010: No parser is registered for Op [{node.name}, optype "
                           f"[ai.onnx::{opset}::{node.op_type}]]. (CANN {era().cann} registers opsets {low}-{high})")


FP16_MODES = ("force_fp16", "allow_fp32_to_fp16", "allow_mix_precision")


def round_constants_to_fp16(model: onnx.ModelProto) -> int:
    """Round every float initializer and Constant value through float16 in place; the count."""
    tensors = list(model.graph.initializer)
    tensors += [a.t for node in model.graph.node if node.op_type == "Constant" for a in node.attribute
                if a.name == "value"]
    rounded = 0
    with np.errstate(over="ignore"):
        for tensor in tensors:
            if tensor.data_type == onnx.TensorProto.FLOAT:
                values = onnx.numpy_helper.to_array(tensor).astype(np.float16).astype(np.float32)
                tensor.CopyFrom(onnx.numpy_helper.from_array(values, tensor.name))
                rounded += 1
    return rounded


def convert(args: argparse.Namespace) -> Path:
    """Check the ONNX as ATC would (parse, opset, static shapes, loadable) and write the stand-in OM."""
    _validate(args)
    source = Path(args.model)
    try:
        onnx_bytes = source.read_bytes()
        model = onnx.load_from_string(onnx_bytes)
        onnx.checker.check_model(model)
        _check_opset(model)
        inputs = _static_inputs(model)
        source_sha256 = hashlib.sha256(onnx_bytes).hexdigest()
        if args.precision_mode in FP16_MODES:
            round_constants_to_fp16(model)
            onnx_bytes = model.SerializeToString()
        onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    except StandinError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parse/load failure is an ATC failure
        raise StandinError(f"cannot convert {source}: {exc}") from None
    meta = {
        "standin": f"{MARK}: ONNX run by onnxruntime on the CPU, not an Ascend OM",
        "imitates": f"ATC of CANN {era().cann}",
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
        "precision": ("float constants rounded to fp16, activations fp32" if args.precision_mode in FP16_MODES
                      else "fp32"),
        "onnx_sha256": source_sha256,
    }
    output = Path(args.output.removesuffix(".om") + ".om")
    output.parent.mkdir(parents=True, exist_ok=True)
    write_om(output, meta, onnx_bytes)
    return output


def main(argv: list[str]) -> int:
    print(BANNER, flush=True)  # before any flag is read, as main_impl() prints it
    print(f"[W] {MARK} of ATC (CANN {era().cann}, {era().atc_front_end}); onnxruntime {onnxruntime.__version__} "
          "on the CPU, not CANN", flush=True)
    if "--version" in argv and not era().atc_knows_version:
        print("ERROR: unknown command line flag 'version'", file=sys.stderr, flush=True)
        print(FAILED)
        return 1
    try:
        args = parse_args(argv)
        if getattr(args, "version", False):
            print("atc.bin")  # gflags' ShowVersion: the program's short name; ATC sets no version string
            return 0
        convert(args)
    except StandinError as exc:
        print(f"[ERROR] {MARK}: {exc}")
        print(FAILED)
        return 1
    print(SUCCESS)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
