"""The document's `horovodrun -np 4 python src/tasks/run_video_qa.py --config anetqa_frameqa_base_resnet50.json
--output_dir ./result` (finetune) and the same with `--do_inference 1 --inference_split val
--inference_model_step $STEP --inference_txt_db … --inference_batch_size 64 --inference_n_clips 16`
(inference), on the project's own ClipBERT (zoorepro/clipbert/model.py, video_qa.py).

Distributed: `-np N` is N processes under torchrun (zoorepro/runners/transformers.py launches
them; gloo on cpu, nccl on cuda), horovod's semantics by hand: the same seed on every rank, rank 0's
parameters broadcast, gradients averaged over ranks before clipping and the step, the training set
dealt by torch's DistributedSampler (shuffled with one permutation for every pass, as upstream never
calls set_epoch), the effective batch N x train_batch_size. One process runs without torchrun.

Finetune writes ClipBERT's layout: `ckpt/model_step_N.pt` (a flat fp32 state dict, rank 0) at every
`valid_steps` and at the end, `log/args.json` (the run's settings), `log/model_config.json`
(base_model.json's keys), `val_N.json`. Inference reads them back (the stored settings win except
the inference ones, as upstream) and writes `results_<txt_db>/step_N_<n_clips>_<agg>/` with
raw_args.json, merged_args.json, results_rank<r>.json (N > 1), results_all.json (items
`{"question_id": <qa_id>, "answer": <answer string>}`) and scores.json.

Beside upstream: `log/train_loss.json` (every step's loss, the epoch starts), `--checkpoint_dir` so
inference reads a finetune's folder it does not write into (default: --output_dir, as upstream),
`--inference_model_step last` (the highest model_step_N.pt there), and `--measurements`/`--toolchain`
for the table (`--peak`: the % of the target's peak rows, FLOPs counted by compute.py;
`--throughput-only`: no loss rows, for the shape scale's random weights).

Fixed openly: every rank's validation results are gathered before val_N.json is written (upstream:
each rank writes its own shard over the others); the sampler's padding duplicates are dropped from
results_all.json; scoring compares answer strings (upstream raises KeyError mapping a string through
label2ans); valid_steps is at least 1 (the short-run division by zero). `fp16: 1` on cuda runs the
forward under torch.amp bfloat16 autocast with fp32 weights (apex O2's fp16 weights and loss scaling
are not installable and not reproduced; the table's precision column says so); on cpu, fp32.

Usage: python -m zoorepro.clipbert.run_video_qa --config run.json --output_dir result [--device cpu]
         [--do_inference 1 --inference_split val --inference_model_step N --inference_txt_db data_val.jsonl
          --inference_img_db img --inference_batch_size 64 --inference_n_clips 16 [--checkpoint_dir D]]
         [--measurements m.json [--peak peak.json] [--throughput-only]] [--toolchain t.json --target cpu]
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from zoorepro import lineage
from zoorepro.cli import hub_offline, run_step_then_exit
from zoorepro.errors import ConfigError, ZooreproError
from zoorepro.progress import progress

# The run config's keys (ClipBERT's names) and what the step requires of them.
REQUIRED = ("train_txt_db", "val_txt_db", "img_db", "ans2label_path", "tokenizer_dir", "model_config",
            "max_txt_len", "max_img_size", "num_frm", "train_n_clips", "train_batch_size", "val_batch_size",
            "num_train_epochs", "num_valid", "min_valid_steps", "learning_rate", "weight_decay", "betas",
            "grad_norm", "warmup_ratio", "cnn_learning_rate", "cnn_weight_decay", "seed", "fp16", "score_agg_func")
EVAL_CLIPS = 16   # the anetqa copy validates with 16 clips of 1 frame
AMP_PRECISION = "bfloat16 autocast (torch.amp)"   # the table's precision for `fp16: 1` on cuda


def load_config(path: Path) -> dict:
    try:
        cfg = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"run config {path}: {exc}") from None
    missing = [k for k in REQUIRED if k not in cfg]
    if missing:
        raise ConfigError(f"run config {path}: missing {', '.join(missing)}")
    return cfg


class Ranks:
    """rank/world and the collectives the step uses (no-ops when run alone)."""

    def __init__(self, device: str):
        from zoorepro.runners.transformers import dist_env

        self.rank, self.world, self.local = dist_env()
        self.dist = None
        if self.world > 1:
            import datetime

            import torch.distributed as dist

            dist.init_process_group("nccl" if device == "cuda" else "gloo", timeout=datetime.timedelta(minutes=30))
            self.dist = dist
            if device == "cpu":
                self.share_threads()

    @staticmethod
    def share_threads() -> None:
        """On cpu, the processes on this host split its thread budget (OMP_NUM_THREADS as the
        job sets it, else the cores): Snakemake exports a job's `threads` to every process it
        starts, and torchrun keeps a set OMP_NUM_THREADS, so N processes would each run that many
        threads; oversubscribed, gloo's collectives wait on descheduled peers (measured here: 2
        processes on 2 cores, 8 steps took 55 s instead of 6 s)."""
        import torch

        local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        try:
            budget = int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)
        except ValueError:
            budget = os.cpu_count() or 1
        torch.set_num_threads(max(1, budget // local))

    def average_gradients(self, params) -> None:
        if self.dist is None:
            return
        import torch

        grads = [p.grad for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        self.dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def broadcast(self, model) -> None:
        if self.dist is not None:
            for tensor in list(model.parameters()) + list(model.buffers()):
                self.dist.broadcast(tensor.data, src=0)

    def gather(self, items: list) -> list:
        if self.dist is None:
            return list(items)
        out = [None] * self.world
        self.dist.all_gather_object(out, items)
        return [x for part in out for x in part]

    def barrier(self) -> None:
        if self.dist is not None:
            self.dist.barrier()


def build(cfg: dict, device: str, ranks: Ranks):
    import torch

    from zoorepro.clipbert.model import ClipBertConfig, build_model, num_labels_for
    from zoorepro.clipbert.video_qa import read_ans2label

    ans2label = read_ans2label(Path(cfg["ans2label_path"]))
    model_config = json.loads(Path(cfg["model_config"]).read_text())
    torch.manual_seed(cfg["seed"])
    model = build_model(ClipBertConfig.from_model_config(model_config, num_labels_for(len(ans2label))))
    return model.to(device), ans2label, model_config


def loader(cfg: dict, txt_db: Path, img_db: Path, batch_size: int, train: bool, ans2label, ranks: Ranks):
    from torch.utils.data import DataLoader, DistributedSampler
    from transformers import BertTokenizerFast

    from zoorepro.clipbert.video_qa import Collator, VideoQADataset, read_jsonl

    examples = read_jsonl(txt_db, with_answers=train)
    dataset = VideoQADataset(examples, img_db, cfg["max_img_size"], train, cfg["seed"] + ranks.rank)
    sampler = DistributedSampler(dataset, num_replicas=ranks.world, rank=ranks.rank, shuffle=train)
    tokenizer = BertTokenizerFast.from_pretrained(str(cfg["tokenizer_dir"]), local_files_only=True)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=int(cfg.get("n_workers", 0)),
                      collate_fn=Collator(tokenizer, cfg["max_txt_len"], ans2label if train else None))


FAULTS = ("none", "bgr-frames", "first-clip")


def predict(model, data, n_clips: int, agg: str, device: str, label2answer: list[str], timer: dict,
            fault: str = "none", amp: bool = False, count_flops: bool = False) -> list[dict]:
    """[{question_id, answer, index}] for this rank's share; timer gets data and model seconds.
    `fault` (tests only): frames fed in BGR order, or the first clip's logits instead of the
    aggregate. Predictions are the argmax over the answer list's labels (num_labels is at least
    1540: a label beyond a shorter ans2label has no answer string; upstream's label2answer[pred]
    would raise IndexError). `amp`: the forward under bfloat16 autocast (fp16 on cuda);
    `count_flops`: timer["flops_per_item"] counted at the first batch's shapes (compute.batch_flops:
    a meta-device forward, untimed)."""
    import torch

    from zoorepro.clipbert.compute import batch_flops
    from zoorepro.clipbert.model import aggregate_clips, normalize

    model.eval()
    out = []
    waited = time.perf_counter()
    with torch.no_grad():
        for batch in data:
            start = time.perf_counter()
            timer["data_s"] += start - waited
            video = normalize(batch["video"].to(device))
            if fault == "bgr-frames":
                video = video[:, :, [2, 1, 0]]
            ids, mask = batch["text_ids"].to(device), batch["text_mask"].to(device)
            if count_flops and "flops_per_item" not in timer:   # on the meta device: no compute
                total = batch_flops(model.config, ids.shape[1], tuple(video.shape), n_clips)
                timer["flops_per_item"] = total / len(batch["examples"])
                timer["uncounted_s"] = time.perf_counter() - start   # the caller's wall clock leaves it out
                start = time.perf_counter()
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=amp):
                logits = model.clip_logits(ids, mask, video, n_clips)
            scores = logits[0] if fault == "first-clip" else aggregate_clips(logits.float(), agg)
            pred = scores[:, :len(label2answer)].argmax(-1).tolist()
            out += [{"question_id": e.qa_id, "answer": label2answer[p], "index": e.index}
                    for e, p in zip(batch["examples"], pred)]
            waited = time.perf_counter()
            timer["model_s"] += waited - start
            timer["items"] += len(pred)
    return out


def bench_ratio(model, batches: list, n_clips: int, agg: str, device: str, label2answer: list[str],
                repeats: int = 5) -> dict:
    """This step's inference loop (predict: timing, normalisation, clip aggregation, answer
    strings) against a bare torch loop (normalize, clip_logits, aggregate, argmax) over the same
    model and the same collated batches (`batches`: the loader's output, held in memory, so frame
    decoding is outside both). Each batch is timed both ways back to back, `repeats` times after a
    warm-up, its fastest time of each way counting. Returns {bare_s, ours_s, ratio = bare_s / ours_s
    (1.0 = no overhead; goal >= 0.97), batches, repeats}."""
    import torch

    from zoorepro.clipbert.model import aggregate_clips, normalize

    def bare(batch) -> float:
        start = time.perf_counter()
        with torch.no_grad():
            video = normalize(batch["video"].to(device))
            logits = model.clip_logits(batch["text_ids"].to(device), batch["text_mask"].to(device), video, n_clips)
            aggregate_clips(logits.float(), agg)[:, :len(label2answer)].argmax(-1).tolist()
        return time.perf_counter() - start

    def ours(batch) -> float:
        start = time.perf_counter()
        predict(model, [batch], n_clips, agg, device, label2answer, {"data_s": 0.0, "model_s": 0.0, "items": 0})
        return time.perf_counter() - start

    model.eval()
    for batch in batches:
        bare(batch), ours(batch)
    best_bare, best_ours = [float("inf")] * len(batches), [float("inf")] * len(batches)
    for _ in range(repeats):
        for i, batch in enumerate(batches):
            best_bare[i] = min(best_bare[i], bare(batch))
            best_ours[i] = min(best_ours[i], ours(batch))
    bare_s, ours_s = sum(best_bare), sum(best_ours)
    return {"bare_s": bare_s, "ours_s": ours_s, "ratio": bare_s / ours_s, "batches": len(batches), "repeats": repeats}


def merge_results(parts: list[dict]) -> list[dict]:
    """Gathered items without the sampler's padding duplicates, in dataset order."""
    seen, merged = set(), []
    for item in sorted(parts, key=lambda x: x["index"]):
        if item["index"] not in seen:
            seen.add(item["index"])
            merged.append({"question_id": item["question_id"], "answer": item["answer"]})
    return merged


def accuracy(results: list[dict], txt_db: Path) -> dict:
    from zoorepro.clipbert.video_qa import read_jsonl

    truth = {e.qa_id: e.answer for e in read_jsonl(txt_db, with_answers=False)}
    if not results or any(truth.get(r["question_id"]) is None for r in results):
        return {}   # a split without answers (test): nothing to score
    right = sum(r["answer"] == truth[r["question_id"]] for r in results)
    return {"overall_acc": round(100 * right / len(results), 2)}


def write_json(path: Path, data, indent: int | None = None) -> None:
    from zoorepro.fsutil import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=indent) + ("\n" if indent else ""))


def finetune(cfg: dict, out: Path, device: str, ranks: Ranks) -> dict:
    import torch

    from zoorepro.clipbert.model import load_pretrained, normalize, training_loss
    from zoorepro.clipbert.video_qa import AdamW, linear_lr, parameter_groups, train_steps, valid_every

    model, ans2label, model_config = build(cfg, device, ranks)
    if cfg.get("e2e_weights_path"):
        skipped = load_pretrained(model, Path(cfg["e2e_weights_path"]))
        if ranks.rank == 0:
            print(f"e2e weights {cfg['e2e_weights_path']}: {len(skipped['skipped_from_file'])} keys not used, "
                  f"{len(skipped['kept_at_init'])} at init ({', '.join(skipped['kept_at_init'])})", flush=True)
    ranks.broadcast(model)
    label2answer = list(ans2label)
    train = loader(cfg, Path(cfg["train_txt_db"]), Path(cfg["img_db"]), cfg["train_batch_size"], True, ans2label, ranks)
    val = loader(cfg, Path(cfg["val_txt_db"]), Path(cfg["img_db"]), cfg["val_batch_size"], False, None, ranks)
    total = train_steps(len(train.dataset), ranks.world, cfg["train_batch_size"], cfg["num_train_epochs"])
    every = valid_every(total, cfg["num_valid"], cfg["min_valid_steps"])
    groups = parameter_groups(model, cfg["learning_rate"], cfg["weight_decay"], cfg["cnn_learning_rate"],
                              cfg["cnn_weight_decay"])
    if len(groups) != 8:
        raise ZooreproError(f"expected ClipBERT's 8 parameter groups, got {len(groups)}")
    optimizer = AdamW(groups, betas=cfg["betas"])
    trainable = [p for g in groups for p in g["params"]]
    use_amp = bool(cfg["fp16"]) and device.startswith("cuda")
    if ranks.rank == 0:
        settings = {**cfg, "output_dir": str(out), "num_labels": len(label2answer), "n_gpu": ranks.world,
                    "num_train_steps": total, "valid_steps": every, "device": device, "fp16_used": use_amp}
        write_json(out / "log" / "args.json", settings, indent=4)
        write_json(out / "log" / "model_config.json", model_config, indent=4)
    step, losses, epochs, timer = 0, [], [], {"data_s": 0.0, "model_s": 0.0, "items": 0}
    n_frames = cfg["train_n_clips"] * cfg["num_frm"]
    bar = progress(total=total, desc="finetune", unit="steps", disable=ranks.rank != 0)
    while step < total:
        model.train()
        epochs.append(step)
        waited = time.perf_counter()
        for batch in train:
            start = time.perf_counter()
            timer["data_s"] += start - waited
            video = normalize(batch["video"].to(device))
            if "flops_per_item" not in timer:   # at this batch's shapes on the meta device, untimed
                from zoorepro.clipbert.compute import TRAIN_FACTOR, batch_flops

                timer["flops_per_item"] = TRAIN_FACTOR * batch_flops(
                    model.config, batch["text_ids"].shape[1], tuple(video.shape), cfg["train_n_clips"]) \
                    / len(batch["examples"])
                start = time.perf_counter()
            if video.shape[1] != n_frames:
                raise ZooreproError(f"a training set holds {video.shape[1]} frames, not train_n_clips x num_frm "
                                    f"= {n_frames}")
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_amp):
                logits = model.clip_logits(batch["text_ids"].to(device), batch["text_mask"].to(device), video,
                                           cfg["train_n_clips"])
            loss = training_loss(logits.float(), batch["labels"].to(device), cfg["score_agg_func"])
            loss.backward()
            for p in trainable:   # upstream's zero_none_grad: unused parameters get zero gradients
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
            ranks.average_gradients(trainable)
            step += 1
            for g in groups:
                g["lr"] = linear_lr(g["base_lr"], step, total, cfg["warmup_ratio"])
            torch.nn.utils.clip_grad_norm_(trainable, cfg["grad_norm"])
            optimizer.step()
            optimizer.zero_grad()
            losses.append(float(loss.detach()))
            timer["model_s"] += time.perf_counter() - start
            timer["items"] += len(batch["examples"]) * ranks.world
            bar.set_postfix_str(f"loss {losses[-1]:.4f} lr {groups[2]['lr']:.3g}", refresh=False)
            bar.update()
            if step % every == 0 or step == total:
                validate_and_save(model, val, cfg, out, step, device, label2answer, ranks, write_val=step % every == 0)
                model.train()
            waited = time.perf_counter()  # progress and validation count neither as loading nor as training
            if step >= total:
                break
    bar.close()
    curve = {"loss": losses, "epoch_starts": epochs, "processes": ranks.world,
             "global_batch_size": cfg["train_batch_size"] * ranks.world}
    if ranks.rank == 0:
        write_json(out / "log" / "train_loss.json", curve, indent=1)
        lineage.record(out / "log" / "train_loss.json",
                       [p for p in (cfg.get("e2e_weights_path"), cfg["train_txt_db"], cfg["img_db"]) if p])
    return {"steps": total, "losses": losses, "epoch_starts": epochs, "timer": timer, "amp": use_amp,
            "batch_size": cfg["train_batch_size"] * ranks.world, "raw": [str(out / "log" / "train_loss.json")]}


def validate_and_save(model, val, cfg, out: Path, step: int, device: str, label2answer, ranks: Ranks,
                      write_val: bool) -> None:
    import torch

    timer = {"data_s": 0.0, "model_s": 0.0, "items": 0}
    batches = progress(val, desc=f"validate at step {step}", unit="batches", disable=ranks.rank != 0)
    results = merge_results(ranks.gather(predict(model, batches, EVAL_CLIPS, cfg["score_agg_func"], device,
                                                 label2answer, timer)))
    if ranks.rank == 0:
        score = accuracy(results, Path(cfg["val_txt_db"]))
        print(f"step {step}: val {score or 'not scored'} ({len(results)} questions)", flush=True)
        (out / "ckpt").mkdir(parents=True, exist_ok=True)
        from zoorepro.fsutil import writing_file

        with writing_file(out / "ckpt" / f"model_step_{step}.pt") as tmp:
            torch.save({k: v.detach().cpu().float() if v.is_floating_point() else v.detach().cpu()
                        for k, v in model.state_dict().items()}, tmp)
        if write_val:
            write_json(out / f"val_{step}.json", results)
    ranks.barrier()


def last_step(ckpt_dir: Path) -> int:
    steps = [int(p.stem.rsplit("_", 1)[1]) for p in ckpt_dir.glob("model_step_*.pt")
             if p.stem.rsplit("_", 1)[1].isdigit()]
    if not steps:
        raise ZooreproError(f"{ckpt_dir}: no model_step_N.pt checkpoint")
    return max(steps)


def inference(args, cfg: dict, out: Path, device: str, ranks: Ranks) -> dict:
    from zoorepro.clipbert.model import load_checkpoint

    source = args.checkpoint_dir or out
    step = last_step(source / "ckpt") if args.inference_model_step == "last" else int(args.inference_model_step)
    stored_path = source / "log" / "args.json"
    if not stored_path.is_file():
        raise ZooreproError(f"{stored_path} missing: inference reads a finetune's output folder "
                            "(log/args.json, log/model_config.json, ckpt/model_step_N.pt)")
    stored = json.loads(stored_path.read_text())
    raw = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if v is not None}
    # upstream: the stored settings win over the command line's, except the inference ones
    merged = {**cfg, **raw, **{k: v for k, v in stored.items() if "inference" not in k}}
    merged["model_config"] = str(source / "log" / "model_config.json")
    ckpt = source / "ckpt" / f"model_step_{step}.pt"
    folder = out / f"results_{Path(args.inference_txt_db).stem}" / \
        f"step_{step}_{args.inference_n_clips}_{merged['score_agg_func']}"
    model, ans2label, _ = build(merged, device, ranks)
    load_checkpoint(model, ckpt)
    data = loader(merged, Path(args.inference_txt_db), Path(args.inference_img_db or merged["img_db"]),
                  args.inference_batch_size, False, None, ranks)
    timer = {"data_s": 0.0, "model_s": 0.0, "items": 0}
    start = time.perf_counter()
    on_gpu = device.startswith("cuda")
    batches = progress(data, desc=f"inference {Path(args.inference_txt_db).name}", unit="batches",
                       disable=ranks.rank != 0)
    mine = predict(model, batches, args.inference_n_clips, merged["score_agg_func"], device, list(ans2label), timer,
                   args.fault, amp=on_gpu and bool(merged.get("fp16")), count_flops=True)
    if ranks.world > 1:
        write_json(folder / f"results_rank{ranks.rank}.json",
                   [{"question_id": r["question_id"], "answer": r["answer"]} for r in mine])
    results = merge_results(ranks.gather(mine))
    wall = time.perf_counter() - start - timer.get("uncounted_s", 0.0)
    if ranks.rank == 0:
        write_json(folder / "raw_args.json", raw, indent=4)
        write_json(folder / "merged_args.json", merged, indent=4)
        write_json(folder / "scores.json", accuracy(results, Path(args.inference_txt_db)), indent=4)
        write_json(folder / "results_all.json", results)
        print(f"wrote {len(results)} answers to {folder / 'results_all.json'}", flush=True)
        lineage.record(folder, [ckpt, args.inference_txt_db, args.inference_img_db or merged["img_db"]])
    ranks.barrier()
    return {"questions": len(results), "wall_s": wall, "timer": timer, "folder": str(folder),
            "amp": on_gpu and bool(merged.get("fp16")), "batch_size": args.inference_batch_size * ranks.world,
            "raw": [str(folder / "results_all.json")]}


def loss_rows(report: dict, world: int, common: dict) -> list:
    """The mean training loss of the first and of the last epoch (rank 0's share, whose batches
    the averaged gradients include): the table shows the finetune ran and learned."""
    from zoorepro.measurements import Measurement

    losses, starts = report["losses"], report["epoch_starts"]
    first = losses[starts[0]:starts[1] if len(starts) > 1 else None]
    last = losses[starts[-1]:]
    how = f"{report['steps']} steps, {len(starts)} epoch(s) on {world} process(es); rank 0's batches"
    epochs = ((1, first), (len(starts), last)) if len(starts) > 1 else ((1, first),)
    return [Measurement(f"finetune loss, epoch {i}", kind="training", value=sum(part) / len(part), unit="loss",
                        note=f"mean cross-entropy over {len(part)} steps; {how}", **common)
            for i, part in epochs]


def peak_rows(kind: str, items_per_s: float, report: dict, gpu_name: str | None, dtype: str, common: dict,
              peak=None, processes: int = 1) -> list:
    """items/s x counted FLOPs an item (zoorepro/clipbert/compute.py) over a peak: `peak`, the
    target's (rules/peaks.smk; on cpu this host's, measured with every core, so the rate is every
    process's together), else a GPU listed in zoorepro/peaks.yaml by name for the dtype (each
    process has its GPU: the rate of one process). No row without a count or a known peak."""
    from zoorepro.clipbert.compute import percent_of_peak
    from zoorepro.measurements import Measurement

    flops_item = report["timer"].get("flops_per_item")
    if not flops_item:
        return []
    backward = ", x3 for the backward" if kind == "finetune" else ""
    if peak is not None:
        return [Measurement(f"{kind} % of peak", kind="throughput", value=peak.percent(items_per_s * flops_item),
                            unit="percent",
                            note=(f"{flops_item / 1e9:.2f} GFLOP an item (counted by torch's FlopCounterMode on the "
                                  f"meta device{backward}) x items/s of all {processes} process(es) over "
                                  f"{peak.describe()}"), **common)]
    if not gpu_name:
        return []
    found = percent_of_peak(items_per_s / processes, flops_item, gpu_name, dtype)
    if found is None:
        print(f"% of peak: {gpu_name} is not in zoorepro/peaks.yaml: no row", flush=True)
        return []
    percent, flops, source = found
    return [Measurement(f"{kind} % of peak", kind="throughput", value=percent, unit="percent",
                        note=(f"{flops_item / 1e9:.2f} GFLOP an item (counted by torch's FlopCounterMode on the meta "
                              f"device{backward}) x items/s a process over {flops / 1e12:.1f} TFLOP/s a GPU "
                              f"({gpu_name}, {dtype}; {source})"),
                        **common)]


def write_perf(path: Path, kind: str, report: dict, ranks: Ranks, precision: str, gpu_name: str | None = None,
               peak=None, throughput_only: bool = False) -> None:
    """The step's table rows: throughput, % of peak, data loading share, and (finetune) the loss
    rows unless `throughput_only` (the shape scale: random weights on synthetic frames)."""
    from zoorepro.measurements import Measurement, write_measurements

    timer = report["timer"]
    busy = timer["data_s"] + timer["model_s"]
    # the batch of one step over every process (what the rate is measured at)
    common = {"precision": precision, "batch_size": report["batch_size"], "raw": tuple(report["raw"])}
    dtype = "bfloat16" if precision.startswith("bfloat16") else "float32"
    if kind == "finetune":
        rate = timer["items"] / max(busy, 1e-9)
        rows = [Measurement("finetune samples/s", kind="throughput", value=rate,
                            unit="samples/s",
                            note=f"{report['steps']} steps on {ranks.world} processes (rank 0's clock)", **common)]
        if not throughput_only:
            rows += loss_rows(report, ranks.world, common)
    else:
        rate = report["questions"] / max(report["wall_s"], 1e-9)
        rows = [Measurement(f"{kind} questions/s", kind="throughput", value=rate,
                            unit="questions/s", note=f"{report['questions']} questions on {ranks.world} processes",
                            **common)]
    rows += peak_rows(kind, rate, report, gpu_name, dtype, common, peak, ranks.world)
    rows.append(Measurement(f"{kind} data loading share", kind="latency", value=100 * timer["data_s"] / max(busy, 1e-9),
                            unit="percent", note="time waiting for frames (decode, resize, collate) over the loop",
                            **common))
    write_measurements(path, rows)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", type=Path, help="the run config (ClipBERT's keys); inference reads the finetune's "
                    "log/args.json over it")
    ap.add_argument("--output_dir", required=True, type=Path)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--do_inference", type=int, default=0, choices=(0, 1))
    ap.add_argument("--inference_split", default="val")
    ap.add_argument("--inference_model_step", type=step_arg, help="a checkpoint step N, or 'last'")
    ap.add_argument("--checkpoint_dir", type=Path, help="the finetune's folder (log/, ckpt/) when it is not "
                    "--output_dir (the pipeline keeps it read-only)")
    ap.add_argument("--inference_txt_db", type=Path)
    ap.add_argument("--inference_img_db", type=Path)
    ap.add_argument("--inference_batch_size", type=int, default=64)
    ap.add_argument("--inference_n_clips", type=int, default=1)
    ap.add_argument("--measurements", type=Path, help="write timings as table measurements")
    ap.add_argument("--toolchain", type=Path, help="write the runner's versions here (rank 0; needs --target)")
    ap.add_argument("--target", help="the params.yaml target (for --toolchain)")
    ap.add_argument("--peak", type=Path, help="the target's peak (python -m zoorepro.peaks --json): adds the "
                    "% of peak rows (on cuda without it: the GPU's peak by name)")
    ap.add_argument("--throughput-only", action="store_true", help="no loss rows (shape scale: random weights)")
    ap.add_argument("--fault", default="none", choices=FAULTS, help="inject a fault into inference (tests)")
    return ap


def step_arg(text: str):
    if text == "last" or text.isdigit():
        return text
    raise argparse.ArgumentTypeError(f"expected a step number or 'last', not {text!r}")


def run(args: argparse.Namespace) -> dict:
    """The step for parsed arguments (in-process callers: one process, no torchrun)."""
    from zoorepro.runners.transformers import check_device

    check_device(args.device)
    if args.toolchain and not args.target:
        raise ConfigError("--toolchain needs --target")
    if args.config is None and not args.do_inference:
        raise ConfigError("finetuning needs --config")
    cfg = load_config(args.config) if args.config and not args.do_inference else \
        (json.loads(args.config.read_text()) if args.config else {})
    ranks = Ranks(args.device)
    import torch

    device = f"cuda:{ranks.local}" if args.device == "cuda" else "cpu"
    if args.device == "cuda":
        torch.cuda.set_device(ranks.local)
    if args.do_inference:
        if args.inference_model_step is None or args.inference_txt_db is None:
            raise ConfigError("--do_inference 1 needs --inference_model_step and --inference_txt_db")
        report = inference(args, cfg, args.output_dir, device, ranks)
        # the val split's rows are the table's; another split's (test: answers for the ANetQA server) say which
        kind = "inference" if args.inference_split == "val" else f"{args.inference_split}-split inference"
    else:
        report = finetune(cfg, args.output_dir, device, ranks)
        kind = "finetune"
    # what the loop ran in: the finetune's config, or for inference the settings it merged (stored win)
    precision = AMP_PRECISION if report["amp"] else "float32"
    if args.measurements and ranks.rank == 0:
        gpu_name = torch.cuda.get_device_name(ranks.local) if args.device == "cuda" else None
        from zoorepro.peaks import read_peak

        peak = read_peak(args.peak) if args.peak else None
        write_perf(args.measurements, kind, report, ranks, precision, gpu_name, peak, args.throughput_only)
    if args.toolchain and ranks.rank == 0:
        from zoorepro.runners.toolchain import write_toolchain

        write_toolchain(args.toolchain, "clipbert", args.target, {"precision": precision, "processes": ranks.world})
    return report


def main() -> int:
    hub_offline()
    run(parser().parse_args())
    return 0


if __name__ == "__main__":
    run_step_then_exit(main)
