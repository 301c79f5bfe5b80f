"""Shape scale: the released ViLBERT VQA model's architecture at its real sizes, random weights.

Throughput does not depend on weight values: this writes an allennlp model archive of the full-size
`vqa_vilbert` (count_flops.full_size_config: BERT-base text stream, 6-layer 1024-wide image stream,
6 co-attention layers, 10026 answers) with seeded random weights, in the format of the document's
vilbert-vqa-pretrained archive, so that export_onnx, onnxsim, fix_onnx, the target's compiler and
its perf loop run exactly as at full scale. Nothing is downloaded; no data is needed (the perf
loop feeds inputs of the real shapes, as ais_bench does). Accuracy is not measured at this scale.

Outputs in --out: vilbert-vqa-shape.tar.gz (about 0.9 GB: 245 M parameters in float32) and
MANIFEST.json (its sha256 and the generator's parameters).

Usage: python -m zoorepro.vilbert.make_shape --out data/shape/vilbert --src work/src/vilbert [--seed 0]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from zoorepro.cli import run_step

ARCHIVE = "vilbert-vqa-shape.tar.gz"
MANIFEST = "MANIFEST.json"


def make_shape(out: Path, src: Path, seed: int = 0) -> dict:
    from zoorepro.fsutil import building_dir, write_tree_manifest
    from zoorepro.vilbert.count_flops import ANSWERS, TEXT_VOCAB, full_size_config
    from zoorepro.vilbert.make_mini import save_archive_dir, write_tar_gz
    from zoorepro.vilbert.sources import activate

    activate(src)
    import allennlp_models.vision  # noqa: F401  (registers vqa_vilbert)

    answers = [f"answer_{i}" for i in range(ANSWERS - 2)]  # + @@PADDING@@ and @@UNKNOWN@@
    with tempfile.TemporaryDirectory(prefix="vilbert-shape-") as staging, building_dir(Path(out)) as tmp:
        save_archive_dir(Path(staging) / "archive", answers, TEXT_VOCAB, seed, model=full_size_config())
        write_tar_gz(Path(staging) / "archive", tmp / ARCHIVE, level=1)  # random floats do not compress
        return write_tree_manifest(tmp, MANIFEST, {"generator": "zoorepro.vilbert.make_shape",
                                                   "params": {"seed": seed, "answers": ANSWERS}})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--src", type=Path, default=Path("work/src/vilbert"), help="the patched allennlp tree")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    manifest = make_shape(args.out, args.src, args.seed)
    print(f"wrote {args.out / ARCHIVE} ({manifest['files'][ARCHIVE][:16]}...)")
    return 0


if __name__ == "__main__":
    run_step(main)
