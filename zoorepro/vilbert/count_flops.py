"""FLOPs a sample of the released ViLBERT VQA model, counted from its graph.

The document's model archive is a `vqa_vilbert_from_huggingface` on bert-base-uncased with a
10026-answer head (../shared/upstream/vilbert.md: text stream BERT-base, 12 layers of 768, 12
heads; image stream 6 layers of 1024, 8 heads, intermediate 1024; co-attention 1024 wide, 8 heads,
image layers 0-5 with text layers 6-11; pooled 1024, "mul" fusion). FLOPs do not depend on weight
values, so this step builds that architecture with random weights (nothing is downloaded), exports
it exactly as export_onnx does (the patched flat-input forward, opset 11, dynamic batch, boxes and
tokens) and counts the graph with zoorepro.flops at the document's pad_len 32 and 100 boxes, for
each batch size given. The count goes to the FLOPs registry (claims/flops.yaml) that the verdicts
read for the implied % of peak of every throughput claim.

Usage: python -m zoorepro.vilbert.count_flops --src work/src/vilbert --onnx work/shape/vilbert/vqa-vilbert.onnx
           [--record claims/flops.yaml] [--batch_sizes 1 16]
"""
from __future__ import annotations

import argparse
import copy
from pathlib import Path

from zoorepro.cli import run_step

ANSWERS = 10026          # the answers namespace with @@PADDING@@ and @@UNKNOWN@@
TEXT_VOCAB = 30522       # bert-base-uncased
PAD_LEN, BOX_NUM, FEATURE_DIM = 32, 100, 1024


def full_size_config() -> dict:
    """The archive's model at its real sizes, built without a Hugging Face download."""
    return {
        "type": "vqa_vilbert",
        "text_embeddings": {"vocab_size": TEXT_VOCAB, "embedding_size": 768, "pad_token_id": 0,
                            "max_position_embeddings": 512, "type_vocab_size": 2, "dropout": 0.1},
        "image_embeddings": {"feature_size": FEATURE_DIM, "embedding_size": 1024, "dropout": 0.1},
        "encoder": {"num_hidden_layers1": 12, "num_hidden_layers2": 6,
                    "hidden_size1": 768, "hidden_size2": 1024, "combined_hidden_size": 1024,
                    "intermediate_size1": 3072, "intermediate_size2": 1024,
                    "num_attention_heads1": 12, "num_attention_heads2": 8, "combined_num_attention_heads": 8,
                    "activation": "gelu", "biattention_id1": list(range(6, 12)),
                    "biattention_id2": list(range(6)), "fixed_layer1": 0, "fixed_layer2": 0},
        "pooled_output_dim": 1024,
        "fusion_method": "mul",
        "dropout": 0.1,
    }


def full_size_model(src: Path, seed: int = 0):
    from zoorepro.vilbert.sources import activate

    activate(src)
    import allennlp_models.vision  # noqa: F401  (registers vqa_vilbert)
    import torch
    from allennlp.common import Params
    from allennlp.data import Vocabulary
    from allennlp.models import Model

    vocab = Vocabulary()
    vocab.add_tokens_to_namespace([f"answer_{i}" for i in range(ANSWERS - 2)], "answers")
    torch.manual_seed(seed)
    model = Model.from_params(vocab=vocab, params=Params(copy.deepcopy(full_size_config())))
    return model.eval()


def count_flops(src: Path, onnx_path: Path, batch_sizes: list[int]) -> dict:
    from zoorepro import flops
    from zoorepro.fsutil import writing_file
    from zoorepro.vilbert.export_onnx import INPUT_NAMES, dummy_inputs, export_onnx

    model = full_size_model(src)
    classes = model.classifier.out_features if hasattr(model, "classifier") else ANSWERS
    params = sum(p.numel() for p in model.parameters())
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    with writing_file(onnx_path) as tmp:
        export_onnx(model, dummy_inputs(1, BOX_NUM, PAD_LEN, FEATURE_DIM), tmp, 11)
    per_bs = {}
    for bs in batch_sizes:
        shapes = dict(zip(INPUT_NAMES, [(bs, BOX_NUM, FEATURE_DIM), (bs, BOX_NUM, 4), (bs, BOX_NUM),
                                        (bs, PAD_LEN), (bs, PAD_LEN), (bs, PAD_LEN)]))
        counted = flops.count(onnx_path, shapes)
        if counted.uncounted:
            raise RuntimeError(f"shapes not inferred for {counted.uncounted[:5]}")
        per_bs[bs] = counted.total / bs
    return {"flops_per_sample": per_bs[min(per_bs)], "per_batch_size": per_bs, "parameters": params,
            "shapes": f"pad_len {PAD_LEN}, {BOX_NUM} boxes of {FEATURE_DIM} features, {classes} answers",
            "graph": "the full-size vqa_vilbert (random weights) exported as export_onnx exports it (opset 11)",
            "method": flops.METHOD, "counted_by": "python -m zoorepro.vilbert.count_flops"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", type=Path, default=Path("work/src/vilbert"), help="the patched allennlp tree")
    parser.add_argument("--onnx", type=Path, default=Path("work/shape/vilbert/vqa-vilbert.onnx"))
    parser.add_argument("--record", type=Path, help="the FLOPs registry to write vilbert's entry into "
                                                    "(claims/flops.yaml)")
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args()
    entry = count_flops(args.src, args.onnx, args.batch_sizes)
    print(f"{entry['flops_per_sample'] / 1e9:.3f} GFLOP a sample ({entry['parameters'] / 1e6:.1f} M parameters); "
          + ", ".join(f"bs{bs}: {f / 1e9:.3f}" for bs, f in entry["per_batch_size"].items()))
    if args.record:
        from zoorepro.flops import write_entry
        write_entry(args.record, "vilbert", entry)
    return 0


if __name__ == "__main__":
    run_step(main)
