"""The document's HowTo100M pretraining, `python main.py --validate -c actbert.yaml`, run through
PaddleVideo's own main.py/train_model from the patched sources (ActBertDataset, the FeaturePadding
/RandomCap/Tokenize/RandomMask pipeline, ActBertLoss, Adam with CustomPiecewiseDecay), optionally
cut after a number of steps; writes the loss curve and the final weights.

Usage: python -m zoorepro.actbert.pretrain -c zoorepro/actbert/configs/mini_pretrain.yaml --src work/src/actbert \
           --device cpu --work-dir work/mini/actbert/pretrain [--max-steps N] \
           [--vocab-dir DIR] [--pretrained BERT.pdparams] [--train-data NPY] [--caption-train JSON] \
           [--caption-val JSON] [-o KEY=VALUE ...] \
           [--loss-curve loss.json] [--out final.pdparams]

--max-steps N runs one epoch stopped after N steps (main.py's --max_iters with -o epochs=1); an
epoch shorter than N is an error. Without it the config's epochs run in full. A loss that is not
finite is an error. The log (train_model logs every step here: -o log_interval=1) is
`<work-dir>/pretrain.log`; the checkpoints train_model saves go to `<work-dir>/`.
"""
import argparse
import json
import math
import re
import shutil
import time
from pathlib import Path

import yaml

from zoorepro.actbert.sources import (
    activate, check_local_vocab, override_args, parse_overrides, run_main)
from zoorepro import lineage
from zoorepro.cli import run_step
from zoorepro.errors import ZooreproError
from zoorepro.fsutil import atomic_write_text, writing_file
from zoorepro.runners.paddle import check_device

TRAIN_DATA_KEY = "DATASET.train.file_path"
CAPTION_KEYS = ("PIPELINE.train.transform.1.RandomCap.caption_path", "PIPELINE.valid.transform.1.RandomCap.caption_path")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
_FLOAT = r"(-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|nan|-?inf)"
# record.log_batch: "epoch:[  1/2  ] train step:0    loss: 5.12345 lr: 0.000200 batch_cost: ..."
TRAIN_LINE = re.compile(rf"epoch:\[\s*(\d+)/\s*\d+\s*\] train step:(\d+)\s+loss:\s+{_FLOAT} lr:\s+{_FLOAT}")
# record.log_epoch: "END epoch:1   val loss_avg: 5.12345 ..."
VALID_LINE = re.compile(rf"END epoch:(\d+)\s+val\s+loss_avg:\s+{_FLOAT}")
CHECKPOINT = re.compile(r"_epoch_(\d{5})\.pdparams$")


def pretrain_overrides(args: argparse.Namespace) -> dict[str, str]:
    """Everything main.py gets with -o: the tokenizer folder of both splits and the pretrained
    text checkpoint (absolute, see override_args), device, output folder, a log line per step,
    one epoch when cut by --max-steps; then the caller's own -o (which win)."""
    overrides = {}
    if args.vocab_dir is not None:
        overrides["DATASET.train.bert_model"] = overrides["DATASET.valid.bert_model"] = str(args.vocab_dir.resolve())
    if args.pretrained is not None:
        overrides["MODEL.backbone.pretrained"] = str(args.pretrained.resolve())
    for key, path in ((TRAIN_DATA_KEY, args.train_data), (CAPTION_KEYS[0], args.caption_train),
                      (CAPTION_KEYS[1], args.caption_val)):
        if path is not None:
            overrides[key] = str(path.resolve())
    overrides.update({"device": args.device, "output_dir": str(args.work_dir.resolve()), "log_interval": "1"})
    if args.max_steps is not None:
        overrides["epochs"] = "1"
    overrides.update(parse_overrides(args.override))
    return overrides


def check_vocab(config: Path, overrides: dict[str, str]) -> None:
    """Refuse a run whose datasets would download their tokenizer (check_local_vocab)."""
    dataset = (yaml.safe_load(config.read_text()) or {}).get("DATASET") or {}
    for split in ("train", "valid"):
        key = f"DATASET.{split}.bert_model"
        check_local_vocab(config, key, overrides.get(key, (dataset.get(split) or {}).get("bert_model")))


def loss_curve(log_text: str) -> dict:
    """The per-step training losses and learning rates and the per-epoch validation loss of a
    train_model log (ANSI colours stripped)."""
    text = ANSI.sub("", log_text)
    train = [{"epoch": int(m[1]), "step": int(m[2]), "loss": float(m[3]), "lr": float(m[4])}
             for m in TRAIN_LINE.finditer(text)]
    valid = [{"epoch": int(m[1]), "loss_avg": float(m[2])} for m in VALID_LINE.finditer(text)]
    if not train:
        raise ZooreproError("no `train step:N loss: ...` line in the log: training did not get through a step")
    bad = [entry for entry in train if not math.isfinite(entry["loss"])]
    if bad:
        raise ZooreproError(f"the training loss is not finite from epoch {bad[0]['epoch']} step {bad[0]['step']} on")
    return {"train": train, "valid": valid}


def last_checkpoint(output_dir: Path) -> Path:
    """The .pdparams train_model saved for its last epoch."""
    saved = sorted((int(m[1]), p) for p in output_dir.glob("*.pdparams") if (m := CHECKPOINT.search(p.name)))
    if not saved:
        raise ZooreproError(f"{output_dir}: train_model saved no *_epoch_NNNNN.pdparams")
    return saved[-1][1]


def clear_outputs(work_dir: Path) -> None:
    """Remove a previous run's checkpoints, so the last one found is this run's."""
    work_dir.mkdir(parents=True, exist_ok=True)
    for path in [*work_dir.glob("*.pdparams"), *work_dir.glob("*.pdopt")]:
        path.unlink()


def copy_atomic(src: Path, dest: Path) -> None:
    """Copy beside `dest`, then rename."""
    with writing_file(dest) as tmp:
        shutil.copyfile(src, tmp)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--config", type=Path, required=True, help="PaddleVideo pretraining config")
    parser.add_argument("--src", type=Path, default=Path("work/src/actbert"),
                        help="patched PaddleVideo sources (the actbert sources step)")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="gpu",
                        help="paddle device (the document's is gpu)")
    parser.add_argument("--work-dir", type=Path, required=True, help="pretrain.log and checkpoints go here")
    parser.add_argument("--max-steps", type=int,
                        help="stop after this many steps of one epoch (0 or absent: the config's whole schedule)")
    parser.add_argument("--vocab-dir", type=Path, help="folder holding BERT's vocab.txt (DATASET.{train,valid}.bert_model)")
    parser.add_argument("--pretrained", type=Path, help="text BERT .pdparams (MODEL.backbone.pretrained)")
    parser.add_argument("--train-data", type=Path, help=f"HowTo100M training features .npy ({TRAIN_DATA_KEY})")
    parser.add_argument("--caption-train", type=Path, help=f"training captions JSON ({CAPTION_KEYS[0]})")
    parser.add_argument("--caption-val", type=Path, help=f"validation captions JSON ({CAPTION_KEYS[1]})")
    parser.add_argument("-o", "--override", action="append", default=[], help="more main.py -o KEY=VALUE")
    parser.add_argument("--seed", type=int, default=1234, help="main.py --seed (its default)")
    parser.add_argument("--loss-curve", type=Path, help="write the loss curve here (JSON)")
    parser.add_argument("--out", type=Path, help="copy the final .pdparams here")
    args = parser.parse_args()
    if args.max_steps is not None and args.max_steps < 0:
        raise ZooreproError(f"--max-steps {args.max_steps}: must be 0 (no limit) or more")
    args.max_steps = args.max_steps or None

    main_py = activate(args.src)
    check_device(args.device)
    overrides = pretrain_overrides(args)
    check_vocab(args.config, overrides)
    clear_outputs(args.work_dir)
    log_file = args.work_dir / "pretrain.log"
    main_args = ["--validate", "-c", str(args.config.resolve()), "--seed", str(args.seed), *override_args(overrides)]
    if args.max_steps is not None:
        main_args += ["--max_iters", str(args.max_steps)]
    start = time.perf_counter()
    run_main(main_py, main_args, log_file)
    wall_s = time.perf_counter() - start

    curve = loss_curve(log_file.read_text(encoding="utf-8"))
    if args.max_steps is not None and len(curve["train"]) < args.max_steps:
        raise ZooreproError(f"asked for {args.max_steps} steps, but one epoch of {args.config} has only "
                            f"{len(curve['train'])}")
    checkpoint = last_checkpoint(args.work_dir)
    result = {"config": str(args.config), "device": args.device, "steps": len(curve["train"]),
              "wall_s": wall_s, "checkpoint": str(checkpoint), "log": str(log_file), **curve}
    print(json.dumps({k: result[k] for k in ("steps", "wall_s", "checkpoint")}
                     | {"first_loss": curve["train"][0]["loss"], "last_loss": curve["train"][-1]["loss"]}, indent=2))
    if args.loss_curve is not None:
        args.loss_curve.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.loss_curve, json.dumps(result, indent=2) + "\n")
        lineage.record(args.loss_curve, [args.config, *(p for p in (args.pretrained, args.train_data, args.caption_train,
                                                                       args.caption_val, args.vocab_dir) if p)])
    if args.out is not None:
        copy_atomic(checkpoint, args.out)
    return 0


if __name__ == "__main__":
    run_step(main)
