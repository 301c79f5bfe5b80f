"""The document's run config, `anetqa_frameqa_base_resnet50.json`, written from params.yaml
`clipbert.finetune.<scale>` (its hyperparameters: batch 32, 15 epochs, lr 5e-5, AdamW betas
0.9/0.98, linear decay, grad norm 5, fp16, seed 42 at full scale) and the paths of this run's
prepared data (upstream's config names Docker mount points: /txt, /img, /pretrain).

The model config goes beside the run config as model_config.json, which the run config names:
`--model_config base` is ClipBERT's base_model.json (BERT-base widths, zoorepro/clipbert/model.py
BASE_MODEL), a path an existing model config (the mini generator's tiny one), copied.

Usage: python -m zoorepro.clipbert.make_config --hyper '{"train_batch_size": 32, ...}'
         --train_txt_db T --val_txt_db V --img_db I --ans2label_path A --tokenizer_dir B
         --model_config base|FILE [--e2e_weights_path P] --out anetqa_frameqa_base_resnet50.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from zoorepro.cli import run_step
from zoorepro.clipbert.run_video_qa import REQUIRED
from zoorepro.errors import ConfigError
from zoorepro.fsutil import atomic_write_text

PATHS = ("train_txt_db", "val_txt_db", "img_db", "ans2label_path", "tokenizer_dir", "model_config",
         "e2e_weights_path")


def make_config(hyper: dict, paths: dict, out: Path) -> dict:
    if paths["model_config"] == "base":
        from zoorepro.clipbert.model import BASE_MODEL as model_config
    else:
        try:
            model_config = json.loads(Path(paths["model_config"]).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"model config {paths['model_config']}: {exc}") from None
    copy = out.with_name("model_config.json")
    atomic_write_text(copy, json.dumps(model_config, indent=4) + "\n")
    paths = {**paths, "model_config": str(copy)}
    vocab = Path(paths["tokenizer_dir"]) / "vocab.txt"
    if not vocab.is_file():   # before any frame is sampled for a finetune that could not tokenize
        raise ConfigError(f"tokenizer_dir {paths['tokenizer_dir']}: no vocab.txt (bert-base-uncased's WordPiece "
                          "vocabulary, as ClipBERT's download_pretrained.sh unpacks it)")
    clash = sorted(set(hyper) & set(PATHS))
    if clash:
        raise ConfigError(f"clipbert.finetune names paths, which the rule sets: {', '.join(clash)}")
    config = {**paths, **hyper}
    missing = [k for k in REQUIRED if k not in config]
    if missing:
        raise ConfigError(f"clipbert.finetune lacks {', '.join(missing)}")
    atomic_write_text(out, json.dumps(config, indent=4) + "\n")
    return config


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hyper", required=True, help="the hyperparameters as one JSON object")
    for name in PATHS:
        ap.add_argument(f"--{name}", required=name != "e2e_weights_path")
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    try:
        hyper = json.loads(args.hyper)
    except ValueError as exc:
        raise ConfigError(f"--hyper is not JSON: {exc}") from None
    make_config(hyper, {name: getattr(args, name) for name in PATHS}, args.out)
    return 0


if __name__ == "__main__":
    run_step(main)
