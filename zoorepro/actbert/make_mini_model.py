"""Build the tiny ActBERT of a mini config with seeded random weights and save it as the
`.pdparams` file `main.py --test -w` loads (the mini stand-in for the document's ActBERT.pdparams);
optionally also the tiny text checkpoint the mini pretraining config names as `pretrained:`.

Usage: python -m zoorepro.actbert.make_mini_model --config zoorepro/actbert/configs/mini_msrvtt.yaml \
           --out data/mini/actbert/ActBERT-mini.pdparams --seed 0 --src work/src/actbert \
           [--bert-out data/mini/actbert/bert-mini.pdparams]

The model is built by PaddleVideo's own builder from MODEL of the config, from the patched sources,
and initialised by the backbone's own init_weights (normal, std 0.02), as test_model builds it.
The mini generator (make_mini_data.py) builds it through `build_model` and then shapes its poolers
and alignment head (plant.py) before writing data/mini/actbert/ActBERT-mini.pdparams; this script
writes the plain random init alone.
"""
import argparse
import time
from pathlib import Path

from zoorepro.actbert.sources import activate
from zoorepro.cli import run_step
from zoorepro.fsutil import writing_file

# The text BERT's parameters, named as in the backbone: what a BERT checkpoint such as the
# document's bert_for_actbert.pdparams can provide; the visual, action and cross-modal parts
# start from their initialisers.
TEXT_PREFIXES = ("bert.embeddings.", "bert.encoder.layer.", "bert.t_pooler.", "cls.predictions.")


def build_model(config: Path, seed: int):
    """PaddleVideo's framework (ActBert around BertForMultiModalPreTraining) from `config`,
    with weights drawn after paddle.seed(seed) on cpu."""
    import paddle
    from paddlevideo.modeling.builder import build_model as paddlevideo_build_model
    from paddlevideo.utils import get_config

    cfg = get_config(str(config), show=False)
    cfg.MODEL.backbone.pretrained = ""  # random init (init_weights), never a checkpoint
    paddle.set_device("cpu")
    paddle.seed(seed)
    return paddlevideo_build_model(cfg.MODEL)


def save_atomic(state: dict, path: Path) -> None:
    """paddle.save into a temporary file beside `path`, then rename: a killed run leaves nothing."""
    import paddle

    with writing_file(path) as tmp:
        paddle.save(state, str(tmp))


def text_state(backbone_state: dict) -> dict:
    """The text-BERT part of a backbone state dict (TEXT_PREFIXES), keys as the backbone names
    them, which is how PaddleVideo's load_ckpt looks them up."""
    return {key: value for key, value in backbone_state.items() if key.startswith(TEXT_PREFIXES)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=Path("zoorepro/actbert/configs/mini_msrvtt.yaml"))
    parser.add_argument("--out", type=Path, default=Path("data/mini/actbert/ActBERT-mini.pdparams"))
    parser.add_argument("--bert-out", type=Path, help="also write the text part here (pretraining init)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--src", type=Path, default=Path("work/src/actbert"),
                        help="patched PaddleVideo sources (the actbert sources step)")
    args = parser.parse_args()
    start = time.perf_counter()
    activate(args.src)
    model = build_model(args.config, args.seed)
    state = model.state_dict()
    save_atomic(state, args.out)
    n_params = sum(int(value.size) for value in state.values())
    print(f"wrote {args.out}: {len(state)} tensors, {n_params} parameters")
    if args.bert_out is not None:
        text = text_state(model.backbone.state_dict())
        save_atomic(text, args.bert_out)
        print(f"wrote {args.bert_out}: {len(text)} text-BERT tensors")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    run_step(main)
