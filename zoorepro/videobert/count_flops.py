"""FLOPs a sample of video-bert.onnx at each workload batch size, counted from the graph.

The text input [100, 77] (the 100 class prompts) runs through the text encoder once a batch,
whatever the batch size, so a sample's FLOPs fall as the batch grows: the registry keeps one
count per batch size (the workload's 4, 8, 16, 24, and 1). Counted by zoorepro.flops on the
graph given: the shape scale's export (a CLIP at params videobert.shape.clip: ViT-B/32's sizes,
assumed, since the released graph's are not published), or the downloaded video-bert.onnx at
full scale, which replaces the assumption with the released graph's own count.

Usage: python -m zoorepro.videobert.count_flops --onnx work/shape/videobert/onnx/video-bert.onnx
           [--record claims/flops.yaml] [--batch_sizes 1 4 8 16 24] [--graph "what the graph is"]
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from zoorepro.cli import run_step

DEFAULT_GRAPH = ("video-bert.onnx's shape-scale source: a CLIP at CLIP ViT-B/32's sizes (assumed; the released "
                 "graph's sizes are not published), random weights, exported by zoorepro.videobert.export_onnx")


def count_flops(onnx_path: Path, batch_sizes: list[int], graph: str = DEFAULT_GRAPH) -> dict:
    import onnx

    from zoorepro import flops
    from zoorepro.videobert.export_onnx import IMAGE_SHAPE, TEXT_SHAPE

    per_bs = {}
    for bs in sorted(set(batch_sizes)):
        counted = flops.count(onnx_path, {"image": (bs, *IMAGE_SHAPE), "text": TEXT_SHAPE})
        if counted.uncounted:
            raise RuntimeError(f"shapes not inferred for {counted.uncounted[:5]}")
        per_bs[bs] = counted.total / bs
    initializers = onnx.load(str(onnx_path)).graph.initializer
    parameters = sum(math.prod(t.dims) for t in initializers)
    return {"flops_per_sample": per_bs[min(per_bs)], "per_batch_size": per_bs, "parameters": parameters,
            "shapes": f"image [bs, {', '.join(map(str, IMAGE_SHAPE))}], text {list(TEXT_SHAPE)} once a batch "
                      "(a sample's FLOPs depend on the batch size)",
            "graph": graph, "method": flops.METHOD, "counted_by": "python -m zoorepro.videobert.count_flops"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--onnx", type=Path, default=Path("work/shape/videobert/onnx/video-bert.onnx"))
    parser.add_argument("--record", type=Path, help="the FLOPs registry to write videobert's entry into "
                                                    "(claims/flops.yaml)")
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 4, 8, 16, 24])
    parser.add_argument("--graph", default=DEFAULT_GRAPH, help="what the counted graph is (kept in the registry)")
    args = parser.parse_args()
    entry = count_flops(args.onnx, args.batch_sizes, args.graph)
    print(f"{entry['parameters'] / 1e6:.1f} M parameters; GFLOP a sample: "
          + ", ".join(f"bs{bs}: {f / 1e9:.3f}" for bs, f in entry["per_batch_size"].items()))
    if args.record:
        from zoorepro.flops import write_entry
        write_entry(args.record, "videobert", entry)
    return 0


if __name__ == "__main__":
    run_step(main)
