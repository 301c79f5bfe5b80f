"""The document's HowTo100M pretraining, `main.py --validate -c actbert.yaml` (with `--amp` for its
AMP variant), run through PaddleVideo's own main.py/train_model from the patched sources
(ActBertDataset, the FeaturePadding/RandomCap/Tokenize/RandomMask pipeline, ActBertLoss, Adam with
CustomPiecewiseDecay), optionally cut after a number of steps; writes the loss curve and the final
weights.

The document starts it with `python -m paddle.distributed.launch --gpus=... --log_dir=log_actbert
main.py ...`, one process per device. The launcher takes a script path, not a module, so the rule
launches zoorepro/actbert/main.py, which runs this step in each process: every process trains
(paddle.DataParallel, gradients all-reduced), rank 0 alone clears and keeps the checkpoints, writes
the loss curve (its own per-process loss) and the final weights. Run alone it is one process.

Usage: python -m zoorepro.actbert.pretrain -c zoorepro/actbert/configs/mini_pretrain.yaml --src work/src/actbert \
           --device cpu --work-dir work/mini/actbert/pretrain [--validate] [--amp] [--max-steps N] \
           [--vocab-dir DIR] [--pretrained BERT.pdparams] [--train-data NPY] [--caption-train JSON] \
           [--caption-val JSON] [-o KEY=VALUE ...] \
           [--loss-curve loss.json] [--out final.pdparams]
       python -m paddle.distributed.launch --nproc_per_node=2 --log_dir=DIR zoorepro/actbert/main.py SAME-OPTIONS

--validate and --amp are main.py's (the validation loss after each epoch; automatic mixed precision,
which needs a GPU: refused on cpu). --pretrained is the text BERT init (MODEL.backbone.pretrained,
the document's bert-base-uncased.pdparams), loaded by PaddleVideo through the restricted loader
(zoorepro/actbert/weights.py, patches/ppvideo/12). --max-steps N runs one epoch stopped after N
steps (main.py's --max_iters with -o epochs=1); an epoch shorter than N is an error. Without it the
config's epochs run in full. A loss that is not finite is an error. The log (train_model logs every
step here: -o log_interval=1) is `<work-dir>/pretrain.log` (rank r > 0: `pretrain.rank<r>.log`);
the checkpoints train_model saves go to `<work-dir>/`. The loss curve holds the global batch's loss
(the mean of the processes' own, each kept) and records the launch: processes, per-process and
global batch (per-process batch x processes), AMP and the FLAGS_* set. Rank 0 removes the launcher's
copies of the processes' environment from its log folder (drop_environment_copies).
"""
import argparse
import json
import math
import os
import re
import shutil
import time
from pathlib import Path

import yaml

from zoorepro.actbert.pipeline import AMP_FLAGS
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


def rank_log(work_dir: Path, rank: int) -> Path:
    """The train_model log of process `rank` (rank 0's is pretrain.log)."""
    return work_dir / ("pretrain.log" if rank == 0 else f"pretrain.rank{rank}.log")


def global_curve(curves: list[dict]) -> dict:
    """The loss of the global batch from each process's curve: train_model logs every process's
    loss on its own share of the batch (DataParallel averages the gradients, not the logged loss),
    so a step's loss is the mean over processes (equal shares); each process's own is kept as
    `rank_losses`. One process: its curve, unchanged but for rank_losses."""
    steps = [[(e["epoch"], e["step"]) for e in c["train"]] for c in curves]
    if any(s != steps[0] for s in steps[1:]):
        raise ZooreproError(f"the {len(curves)} processes logged different training steps "
                            f"({', '.join(str(len(s)) for s in steps)} of them): a process stopped early")
    train = [{**entries[0], "loss": sum(e["loss"] for e in entries) / len(entries),
              "rank_losses": [e["loss"] for e in entries]} for entries in zip(*(c["train"] for c in curves))]
    valid = [{**entries[0], "loss_avg": sum(e["loss_avg"] for e in entries) / len(entries),
              "rank_losses": [e["loss_avg"] for e in entries]} for entries in zip(*(c["valid"] for c in curves))]
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


def process_rank() -> tuple[int, int]:
    """(rank, number of processes) as paddle.distributed.launch sets them; (0, 1) run alone."""
    return int(os.environ.get("PADDLE_TRAINER_ID", "0")), int(os.environ.get("PADDLE_TRAINERS_NUM", "1"))


def per_process_batch(config: Path, main_args: list[str]) -> int:
    """DATASET.batch_size as train_model reads it (its default 8), -o overrides applied."""
    from paddlevideo.utils import get_config

    overrides = [main_args[i + 1] for i, a in enumerate(main_args) if a == "-o"]
    return int(get_config(str(config), overrides=overrides, show=False).DATASET.get("batch_size", 8))


def _relative(path: str | None) -> str | None:
    """`path` relative to the working directory where it lies below it (the launcher makes it absolute)."""
    if path is None:
        return None
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path


def drop_environment_copies(log_dir: str | None) -> list[str]:
    """Remove the launcher's copies of each process's whole environment from its --log_dir
    (envlog.N, backup_env.N.json, written when the processes start): the log folder is part of the
    run's output, which DVC caches and pushes, and an environment can hold credentials. Returns the
    names removed (the loss curve records them)."""
    if not log_dir or not Path(log_dir).is_dir():
        return []
    removed = []
    for path in sorted(Path(log_dir).iterdir()):
        if re.fullmatch(r"envlog(\.init)?\.\d+|backup_env\.\d+\.json", path.name):
            path.unlink()
            removed.append(path.name)
    return removed


def launch_record(args: argparse.Namespace, batch: int, world: int) -> dict:
    """What the loss curve records of how the run was started."""
    return {"processes": world, "batch_size_per_process": batch, "global_batch_size": batch * world,
            "launcher": "paddle.distributed.launch" if "PADDLE_TRAINERS_NUM" in os.environ else None,
            "log_dir": _relative(os.environ.get("PADDLE_LOG_DIR")), "validate": args.validate, "amp": args.amp,
            "flags": {k: v for k, v in sorted(os.environ.items()) if k in AMP_FLAGS}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--config", type=Path, required=True, help="PaddleVideo pretraining config")
    parser.add_argument("--src", type=Path, default=Path("work/src/actbert"),
                        help="patched PaddleVideo sources (the actbert sources step)")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="gpu",
                        help="paddle device (the document's is gpu)")
    parser.add_argument("--work-dir", type=Path, required=True, help="pretrain.log and checkpoints go here")
    parser.add_argument("--validate", action="store_true", help="main.py --validate: validation loss after each epoch")
    parser.add_argument("--amp", action="store_true",
                        help="main.py --amp: automatic mixed precision (O1), the document's AMP variant; needs a GPU")
    parser.add_argument("--max-steps", type=int,
                        help="stop after this many steps of one epoch (0 or absent: the config's whole schedule)")
    parser.add_argument("--vocab-dir", type=Path, help="folder holding BERT's vocab.txt (DATASET.{train,valid}.bert_model)")
    parser.add_argument("--pretrained", type=Path,
                        help="text BERT .pdparams (MODEL.backbone.pretrained), read by the restricted loader")
    parser.add_argument("--train-data", type=Path, help=f"HowTo100M training features .npy ({TRAIN_DATA_KEY})")
    parser.add_argument("--caption-train", type=Path, help=f"training captions JSON ({CAPTION_KEYS[0]})")
    parser.add_argument("--caption-val", type=Path, help=f"validation captions JSON ({CAPTION_KEYS[1]})")
    parser.add_argument("-o", "--override", action="append", default=[], help="more main.py -o KEY=VALUE")
    parser.add_argument("--seed", type=int, default=1234, help="main.py --seed (its default)")
    parser.add_argument("--loss-curve", type=Path, help="write the loss curve here (JSON; rank 0)")
    parser.add_argument("--out", type=Path, help="copy the final .pdparams here (rank 0)")
    args = parser.parse_args()
    if args.max_steps is not None and args.max_steps < 0:
        raise ZooreproError(f"--max-steps {args.max_steps}: must be 0 (no limit) or more")
    args.max_steps = args.max_steps or None
    if args.amp and args.device != "gpu":
        raise ZooreproError(f"--amp on {args.device}: AMP needs a GPU (main.py --amp has no fp16 kernels to use on "
                            f"{args.device}); run with --device gpu on a CUDA build of paddle, or without --amp")
    if args.pretrained is not None and not args.pretrained.is_file():
        raise ZooreproError(f"--pretrained {args.pretrained}: no such file (the text BERT init, "
                            "MODEL.backbone.pretrained)")
    rank, world = process_rank()

    main_py = activate(args.src)
    check_device(args.device)
    overrides = pretrain_overrides(args)
    check_vocab(args.config, overrides)
    if rank == 0:
        clear_outputs(args.work_dir)
    else:
        args.work_dir.mkdir(parents=True, exist_ok=True)
    log_file = rank_log(args.work_dir, rank)
    main_args = [*(["--validate"] if args.validate else []), *(["--amp"] if args.amp else []),
                 "-c", str(args.config.resolve()), "--seed", str(args.seed), *override_args(overrides)]
    if args.max_steps is not None:
        main_args += ["--max_iters", str(args.max_steps)]
    batch = per_process_batch(args.config.resolve(), main_args)
    start = time.perf_counter()
    run_main(main_py, main_args, log_file)
    wall_s = time.perf_counter() - start
    if world > 1:  # every process's log is complete before rank 0 reads them (validation has no collective)
        import paddle.distributed

        paddle.distributed.barrier()
    if rank == 0:
        write_results(args, log_file, batch, world, wall_s)
    if world > 1:
        # No process leaves while rank 0 still writes: a process whose peer has already gone can
        # abort in the collective backend's teardown (seen once: rank 0 exit -6 after its results).
        paddle.distributed.barrier()
    return 0


def write_results(args: argparse.Namespace, log_file: Path, batch: int, world: int, wall_s: float) -> None:
    """Rank 0: the global loss curve, the launch record and the final weights."""
    curve = global_curve([loss_curve(rank_log(args.work_dir, r).read_text(encoding="utf-8")) for r in range(world)])
    if args.max_steps is not None and len(curve["train"]) < args.max_steps:
        raise ZooreproError(f"asked for {args.max_steps} steps, but one epoch of {args.config} has only "
                            f"{len(curve['train'])} in each of {world} process(es) (batch {batch} a process)")
    checkpoint = last_checkpoint(args.work_dir)
    launch = launch_record(args, batch, world) | {
        "environment_copies_removed": drop_environment_copies(os.environ.get("PADDLE_LOG_DIR"))}
    result = {"config": str(args.config), "device": args.device, "steps": len(curve["train"]),
              "wall_s": wall_s, "checkpoint": str(checkpoint), "log": str(log_file),
              "pretrained": str(args.pretrained) if args.pretrained else None, "launch": launch, **curve}
    print(json.dumps({k: result[k] for k in ("steps", "wall_s", "checkpoint")}
                     | {"first_loss": curve["train"][0]["loss"], "last_loss": curve["train"][-1]["loss"],
                        "processes": world, "global_batch_size": launch["global_batch_size"]}, indent=2))
    if args.loss_curve is not None:
        args.loss_curve.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.loss_curve, json.dumps(result, indent=2) + "\n")
        lineage.record(args.loss_curve, [args.config, *(p for p in (args.pretrained, args.train_data, args.caption_train,
                                                                       args.caption_val, args.vocab_dir) if p)])
    if args.out is not None:
        copy_atomic(checkpoint, args.out)


if __name__ == "__main__":
    run_step(main)
