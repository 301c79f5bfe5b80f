"""What ClipBERT's run_video_qa does around the model, for frameqa on ANetQA: the jsonl examples, the
sampled frames as its loader shapes them, the collate, the optimizer and the learning-rate
schedule. Written from the project's research notes (upstream code is not vendored).

* examples: one per jsonl line, in file order, grouped by video (first appearance), `key` is the
  question id; training labels are `ans2label[answer]` — an answer outside ans2label is an error
  (upstream: KeyError);
* frames: a training item reads one of the video's 5 sampled sets (`rand/<id>_<k>.npy`, k drawn
  per item), an eval item `uniform/<id>.npy`; uint8 RGB (T, 3, H, W) -> float, the longer side
  resized to max_img_size (bilinear, align_corners False), zero-padded right and bottom to a square;
  the batch is then mean-subtracted (model.normalize) as ClipBERT's PrefetchLoader does;
* text: BERT WordPiece, [CLS] q [SEP], truncated and padded to max_txt_len;
* optimizer: 8 parameter groups (transformer / cnn x lr-multiplier prefix x decay / no decay; no
  decay for names with `bias` or `LayerNorm.weight`), AdamW with ClipBERT's eps 1e-6 and decoupled
  weight decay applied after the Adam step; linear warmup over warmup_ratio of the steps, then linear
  decay to 0 (clamped at 1e-8), evaluated at the step number after the increment.
"""
from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

from zoorepro.clipbert.sample_imgs_clipbert import TRAIN_SETS, load_frames
from zoorepro.errors import ZooreproError
from zoorepro.readers import load_json

NO_DECAY = ("bias", "LayerNorm.bias", "LayerNorm.weight")
CNN_LR_MUL_PREFIX = "grid_encoder"   # upstream's cnn_lr_mul_prefix default (multiplier 1.0)


@dataclass(frozen=True)
class Example:
    index: int
    qa_id: str
    question: str
    video: str
    answer: str | None


def read_jsonl(path: Path, with_answers: bool) -> list[Example]:
    """aux_jsonl's lines, in ClipBERT's order (grouped by video in order of first appearance)."""
    if not Path(path).is_file():
        raise ZooreproError(f"{path} does not exist (run aux_jsonl first)")
    rows = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            rows.append((raw["key"], raw["question"], raw.get("gif_name") or raw["video_id"], raw.get("answer")))
        except (ValueError, KeyError, TypeError) as exc:
            raise ZooreproError(f"{path}:{n}: not an aux_jsonl line ({exc})") from None
        if with_answers and not isinstance(rows[-1][3], str):
            raise ZooreproError(f"{path}:{n}: question {rows[-1][0]} has no answer")
    grouped: dict[str, list] = {}
    for row in rows:
        grouped.setdefault(row[2], []).append(row)
    ordered = [row for group in grouped.values() for row in group]
    return [Example(i, key, q, vid, ans) for i, (key, q, vid, ans) in enumerate(ordered)]


def read_ans2label(path: Path) -> dict[str, int]:
    ans2label = load_json(path, "ans2label")
    if not isinstance(ans2label, dict) or list(ans2label.values()) != list(range(len(ans2label))):
        raise ZooreproError(f"ans2label {path}: values must be 0..n-1 in file order (ClipBERT's label2answer "
                            "is the keys in file order)")
    return ans2label


def resize_and_pad(frames, size: int):
    """(T, 3, H, W) uint8 -> (T, 3, size, size) float in [0, 255], longer side to `size`."""
    import torch
    import torch.nn.functional as F

    t, _, h, w = frames.shape
    scale = size / max(h, w)
    nh, nw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
    x = torch.as_tensor(frames).float()
    if (nh, nw) != (h, w):
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False)
    return F.pad(x, (0, size - nw, 0, size - nh), "constant", 0.0)


class VideoQADataset:
    """Items (example, frames) for torch's DataLoader; `train` draws one of the 5 sampled sets."""

    def __init__(self, examples: list[Example], img_db: Path, max_img_size: int, train: bool, seed: int):
        self.examples, self.img_db, self.size, self.train = examples, Path(img_db), max_img_size, train
        self.rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self.examples)

    def frames_path(self, example: Example) -> Path:
        if self.train:
            return self.img_db / "rand" / f"{example.video}_{self.rng.randint(1, TRAIN_SETS)}.npy"
        return self.img_db / "uniform" / f"{example.video}.npy"

    def __getitem__(self, i: int):
        example = self.examples[i]
        path = self.frames_path(example)
        if not path.is_file():
            raise ZooreproError(f"no sampled frames for video {example.video}: {path} (run sample_imgs_clipbert)")
        return example, resize_and_pad(load_frames(path), self.size)


class Collator:
    def __init__(self, tokenizer, max_txt_len: int, ans2label: dict[str, int] | None):
        self.tokenizer, self.max_txt_len, self.ans2label = tokenizer, max_txt_len, ans2label

    def __call__(self, batch):
        import torch

        examples = [e for e, _ in batch]
        text = self.tokenizer([e.question for e in examples], max_length=self.max_txt_len, padding="max_length",
                              truncation=True, return_tensors="pt")
        labels = None
        if self.ans2label is not None:
            unknown = [e for e in examples if e.answer not in self.ans2label]
            if unknown:
                raise ZooreproError(f"answer {unknown[0].answer!r} of question {unknown[0].qa_id} is not in ans2label")
            labels = torch.tensor([self.ans2label[e.answer] for e in examples])
        return {"examples": examples, "text_ids": text["input_ids"], "text_mask": text["attention_mask"],
                "video": torch.stack([f for _, f in batch]), "labels": labels}


def parameter_groups(model, lr: float, weight_decay: float, cnn_lr: float, cnn_weight_decay: float) -> list[dict]:
    """ClipBERT's 8 groups: for the transformer then the cnn, [top decay, top no-decay, rest decay,
    rest no-decay]; the transformer's top prefix is empty (no parameter), the cnn's is grid_encoder."""
    groups = []
    for side, prefix, side_lr, side_wd in (("transformer", None, lr, weight_decay),
                                           ("cnn", CNN_LR_MUL_PREFIX, cnn_lr, cnn_weight_decay)):
        named = [(n, p) for n, p in model.named_parameters() if n.startswith(side + ".") and p.requires_grad]
        for top in (True, False):
            chosen = [(n, p) for n, p in named if (prefix is not None and prefix in n) == top]
            for decay in (True, False):
                params = [p for n, p in chosen if (not any(nd in n for nd in NO_DECAY)) == decay]
                groups.append({"params": params, "weight_decay": side_wd if decay else 0.0, "lr": side_lr,
                               "base_lr": side_lr, "side": side})
    return groups


class AdamW:
    """ClipBERT's AdamW (bias-corrected Adam, eps 1e-6, then p -= lr * weight_decay * p)."""

    def __init__(self, groups: list[dict], betas=(0.9, 0.98), eps: float = 1e-6):
        import torch

        self.param_groups, self.betas, self.eps = groups, tuple(betas), eps
        self.state = {id(p): {"step": 0, "m": torch.zeros_like(p), "v": torch.zeros_like(p)}
                      for g in groups for p in g["params"]}

    def step(self) -> None:
        import torch

        b1, b2 = self.betas
        with torch.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    s = self.state[id(p)]
                    s["step"] += 1
                    s["m"].mul_(b1).add_(p.grad, alpha=1 - b1)
                    s["v"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                    step_size = group["lr"] * math.sqrt(1 - b2 ** s["step"]) / (1 - b1 ** s["step"])
                    p.addcdiv_(s["m"], s["v"].sqrt().add_(self.eps), value=-step_size)
                    if group["weight_decay"] > 0:
                        p.add_(p, alpha=-group["lr"] * group["weight_decay"])

    def zero_grad(self) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None


def linear_lr(base: float, step: int, total: int, warmup_ratio: float) -> float:
    """ClipBERT's warmup_linear at the post-increment step."""
    warmup = int(warmup_ratio * total)
    factor = step / warmup if step < warmup else max(0.0, (total - step) / max(1, total - warmup))
    lr = base * factor
    return lr if lr > 0 else 1e-8


def train_steps(n_examples: int, world: int, batch_size: int, epochs: float) -> int:
    return math.ceil(epochs * n_examples / (world * batch_size))


def valid_every(num_train_steps: int, num_valid: int, min_valid_steps: int) -> int:
    return max(1, math.ceil(num_train_steps / num_valid / min_valid_steps)) * min_valid_steps
