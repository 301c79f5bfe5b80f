"""Mini ANetQA + tiny ClipBERT, offline, in the real formats, with planted answers.

Writes under --out:

* `dataset/qa/qa_{train,val}.json`, `dataset/qa/q_test.json`, `dataset/meta/video_{split}.json`:
  ANetQA's files with its record fields and taxonomy (structures query/verify, semantics
  attribute/object/action, reasoning skills, answer types open/binary);
* `videos/<id>.mp4`: generated H.264 videos (coloured blocks that move), 24-40 frames;
* `txt/anetqa_trainval_ans2label.json`: `<UNK>` 0, then the train and val answers in order of first
  appearance (the size rule: num_labels = max(len, 1540));
* `pretrained/bert-base-uncased/vocab.txt` (a WordPiece vocabulary of the questions' words),
  `pretrained/clipbert_image_text_pretrained.pt` (a random state dict in the e2e pretrained layout:
  the MLM/ITM heads, no QA classifier), `model_config.json` (base_model.json's keys, tiny widths);
* `released/`: a finetuned checkpoint in ClipBERT's layout (`ckpt/model_step_N.pt`, `log/args.json`,
  `log/model_config.json`) whose answers are planted;
* `planted.json`: the planted accuracies (overall and per taxonomy category, percent), the same as
  claims in `planted_claims.yaml` (zoorepro/planted.py), and
  `MANIFEST.json` (every file's sha256).

Planting. The released model is random except its last classifier layer, which is shaped on the
val questions as the pipeline will see them (frames sampled by sample_imgs_clipbert's rule at the
pipeline's settings, resized, mean-subtracted, 16 clips of 1 frame, logits averaged): with Z the
clip-averaged hidden activations, the layer maps each question's centred Z to a chosen answer with a
margin of --margin logits over every other answer (minimum-norm solution), and answers outside the
vocabulary lose by far more. The ground truth then takes that answer for a seeded subset of the val
questions and another answer of the same type for the rest, so the overall and per-category
accuracies are known fractions, counted here from the planted right/wrong flags (not by eval_res).
The generator checks that its own run predicts the chosen answers with the margin, and that feeding
the frames in BGR order and scoring the first clip only each change answers (the faults the
pipeline's tests inject); it stops with an error otherwise.
"""
from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path

import numpy as np

from zoorepro.cli import run_step
from zoorepro.clipbert.pipeline import CATEGORIES
from zoorepro.errors import ZooreproError
from zoorepro.fsutil import building_dir, write_tree_manifest
from zoorepro.planted import PlantedMetric, write_planted_claims

# the taxonomy values whose accuracies claims may name (pipeline.CLAIM_METRICS)
STRUCTURES, SEMANTICS, SKILLS = (CATEGORIES[k] for k in ("structure", "semantics", "skill"))
THINGS = ("man", "woman", "dog", "car", "ball", "cup", "horse", "boy", "girl", "table")
ADJECTIVES = ("tall", "old", "young", "first", "second", "big", "little", "dark")
OPEN_ANSWERS = ("red", "blue", "green", "dog", "ball", "cup", "running", "jumping")
TINY_MODEL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
              "backbone_channel_in_size": 64, "max_position_embeddings": 64}
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
RELEASED_STEP = 30


def video_ids(rng: random.Random, n: int, used: set) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
    out = []
    while len(out) < n:
        vid = "v_" + "".join(rng.choice(letters) for _ in range(11))
        if vid not in used:
            used.add(vid)
            out.append(vid)
    return out


def write_video(path: Path, n_frames: int, rng: np.random.Generator, size=(96, 72)) -> None:
    import av

    w, h = size
    base = rng.integers(0, 256, (4, 3, 3))           # a 4x3 grid of coloured blocks
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": "10"}
        for i in range(n_frames):
            blocks = np.roll(base, i // 4, axis=1).astype(np.uint8)
            img = np.kron(blocks.transpose(1, 0, 2), np.ones((h // 3, w // 4, 1), np.uint8))
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def make_questions(rng: random.Random, videos: list[str], per_video: int, answered: bool, seen: set) -> list[dict]:
    """ANetQA records, every question text distinct (`seen` spans the splits)."""
    records = []
    for vid in videos:
        for n in range(1, per_video + 1):
            binary = rng.random() < 0.4
            structure = "verify" if binary else "query"
            semantics = rng.choice(SEMANTICS)
            skills = sorted(rng.sample(SKILLS, rng.choice((1, 2))))
            while True:
                thing = f"{rng.choice(ADJECTIVES)} {rng.choice(THINGS)}"
                question = (f"is the {thing} {rng.choice(('red', 'moving', 'left', 'small'))} in the video?" if binary
                            else f"what {rng.choice(('color', 'object', 'action', 'shape'))} is the {thing} near?")
                if question not in seen:
                    seen.add(question)
                    break
            record = {"question": question, "qa_id": f"{vid}#{semantics}{structure.title()}#{n}", "video_id": vid[2:],
                      "frame_ids": [], "object_ids": [], "attribute_type": semantics, "step": 1, "program": [],
                      "taxonomy": {"question_type": f"{semantics}{structure.title()}", "question structures": structure,
                                   "question semantics": semantics, "reasoning skills": skills,
                                   "answer types": "binary" if binary else "open"}}
            if answered:
                record["answer"] = rng.choice(("yes", "no")) if binary else rng.choice(OPEN_ANSWERS)
            records.append(record)
    return records


def vocabulary(questions: list[dict]) -> list[str]:
    words = sorted({w for q in questions for w in q["question"].replace("?", " ? ").split()})
    return SPECIAL + words


def planted_metrics(val: list[dict], right: dict[str, bool]) -> dict[str, float]:
    """Accuracy in percent, overall and per category, counted from the planted flags."""
    groups = {"structure": "question structures", "semantics": "question semantics", "skill": "reasoning skills",
              "answer type": "answer types"}
    metrics = {"accuracy": 100.0 * sum(right.values()) / len(right)}
    for label, key in groups.items():
        tally: dict[str, list[int]] = {}
        for q in val:
            names = q["taxonomy"][key]
            for name in names if isinstance(names, list) else [names]:
                t = tally.setdefault(name, [0, 0])
                t[0] += right[q["qa_id"]]
                t[1] += 1
        for name, (r, n) in tally.items():
            metrics[f"accuracy {label}: {name}"] = 100.0 * r / n
    return metrics


def clip_hidden(model, text_ids, text_mask, video, n_clips: int):
    """The classifier's hidden activations per clip: (n_clips, B, 2h)."""
    import torch

    b, total = video.shape[:2]
    clips = video.reshape(b, n_clips, total // n_clips, *video.shape[2:])
    hidden = []
    with torch.no_grad():
        for k in range(n_clips):
            pooled = model.transformer.bert(text_ids, text_mask, model.cnn(clips[:, k]))[1]
            hidden.append(model.transformer.classifier[1](model.transformer.classifier[0](pooled)))
    return torch.stack(hidden)


def shape_head(model, hidden, labels: list[int], n_answers: int, margin: float) -> None:
    """Set classifier.2 so the clip-averaged logits put each question's label `margin` above the
    other answers (minimum-norm least squares on centred activations); labels >= n_answers lose."""
    import torch

    z = hidden.mean(0).double()                         # (B, 2h): mean over clips (logits are linear in z)
    centre = z.mean(0)
    zc = z - centre
    targets = torch.zeros(len(labels), n_answers, dtype=torch.float64)
    targets[torch.arange(len(labels)), torch.tensor(labels)] = margin
    weight = (torch.linalg.pinv(zc) @ targets).T           # (n_answers, 2h)
    layer = model.transformer.classifier[2]
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.fill_(-1e4)
        layer.weight[:n_answers] = weight.float()
        layer.bias[:n_answers] = (-weight @ centre).float()


def val_inputs(out: Path, val: list[dict], videos: list[str], args, tokenizer):
    """The val questions as the pipeline feeds them: (text ids, mask, normalised video)."""
    import torch

    from zoorepro.clipbert.model import normalize
    from zoorepro.clipbert.sample_imgs_clipbert import load_frames, sample_all
    from zoorepro.clipbert.video_qa import resize_and_pad

    with tempfile.TemporaryDirectory() as tmp:
        sample_all(out / "videos", out / "dataset" / "meta", Path(tmp) / "img", splits=("val",), seed=args.sample_seed,
                   size=args.frame_size)
        frames = {v: resize_and_pad(load_frames(Path(tmp) / "img" / "uniform" / f"{v}.npy"), args.max_img_size)
                  for v in videos}
    order = sorted(range(len(val)), key=lambda i: videos.index(val[i]["qa_id"][:13]))   # ClipBERT's grouping
    questions = [val[i] for i in order]
    text = tokenizer([q["question"] for q in questions], max_length=args.max_txt_len, padding="max_length",
                     truncation=True, return_tensors="pt")
    video = normalize(torch.stack([frames[q["qa_id"][:13]] for q in questions]))
    return questions, text["input_ids"], text["attention_mask"], video


def generate(out: Path, args) -> dict:
    import torch
    from transformers import BertTokenizerFast

    from zoorepro.clipbert.model import BASE_MODEL, ClipBertConfig, aggregate_clips, build_model, num_labels_for

    rng, nrng = random.Random(args.seed), np.random.default_rng(args.seed)
    used: set = set()
    videos = {split: video_ids(rng, n, used) for split, n in zip(("train", "val", "test"), args.videos)}
    (out / "videos").mkdir()
    for split in videos:
        for vid in videos[split]:
            write_video(out / "videos" / f"{vid}.mp4", int(nrng.integers(24, 41)), nrng)
    seen: set = set()
    qa = {"train": make_questions(rng, videos["train"], args.per_video, True, seen),
          "val": make_questions(rng, videos["val"], args.per_video, True, seen),
          "test": make_questions(rng, videos["test"], 1, False, seen)}
    answers = ["<UNK>"] + list(dict.fromkeys(["yes", "no", *OPEN_ANSWERS]))
    ans2label = {a: i for i, a in enumerate(answers)}
    vocab = vocabulary(qa["train"] + qa["val"] + qa["test"])
    tok_dir = out / "pretrained" / "bert-base-uncased"
    tok_dir.mkdir(parents=True)
    (tok_dir / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast.from_pretrained(str(tok_dir), local_files_only=True)  # as run_video_qa loads it
    model_config = {**BASE_MODEL, **TINY_MODEL, "vocab_size": len(vocab)}
    config = ClipBertConfig.from_model_config(model_config, num_labels_for(len(ans2label)))
    torch.manual_seed(args.seed)
    model = build_model(config).eval()
    with torch.no_grad():   # random BERT init gives near-constant pooled outputs: spread the weights
        for name, p in model.transformer.named_parameters():
            if p.dim() == 2 and "embeddings" not in name:
                p.mul_(args.weight_scale)
        model.transformer.bert.visual_embeddings.LayerNorm.weight.mul_(args.visual_scale)  # the video matters

    # dataset files first: the planting samples the val frames from them
    for d in ("dataset/qa", "dataset/meta", "txt"):
        (out / d).mkdir(parents=True)
    for split in videos:
        (out / "dataset" / "meta" / f"video_{split}.json").write_text(json.dumps(videos[split]))
    questions, ids, mask, video = val_inputs(out, qa["val"], videos["val"], args, tokenizer)
    hidden = clip_hidden(model, ids, mask, video, 16)
    chosen = []
    for q in questions:   # the released model's answer: a valid answer of the question's type
        pool = ("yes", "no") if q["taxonomy"]["answer types"] == "binary" else OPEN_ANSWERS
        chosen.append(ans2label[rng.choice(pool)])
    shape_head(model, hidden, chosen, len(ans2label), args.margin)
    with torch.no_grad():
        logits = model.clip_logits(ids, mask, video, 16)
        agg = aggregate_clips(logits, "mean")
        bgr = aggregate_clips(model.clip_logits(ids, mask, video[:, :, [2, 1, 0]], 16), "mean")
    top2 = agg.topk(2, -1).values
    smallest = float((top2[:, 0] - top2[:, 1]).min())
    if agg.argmax(-1).tolist() != chosen or smallest < args.margin / 4:
        raise ZooreproError(f"planting failed: predictions differ from the chosen answers or margin {smallest:.3g}")
    changed = {"bgr": int((bgr.argmax(-1) != agg.argmax(-1)).sum()), "first clip": int((logits[0].argmax(-1) != agg.argmax(-1)).sum())}
    if min(changed.values()) < 2:
        raise ZooreproError(f"the planted answers do not react to the injected faults: {changed}")

    # ground truth: right for a seeded subset, another answer of the same type for the rest
    order = list(range(len(questions)))
    rng.shuffle(order)
    n_right = round(args.right_fraction * len(questions))
    right = {questions[i]["qa_id"]: i in set(order[:n_right]) for i in range(len(questions))}
    label2answer = list(ans2label)
    truth = {}
    for q, label in zip(questions, chosen):
        mine = label2answer[label]
        if right[q["qa_id"]]:
            truth[q["qa_id"]] = mine
        else:
            pool = ("yes", "no") if q["taxonomy"]["answer types"] == "binary" else OPEN_ANSWERS
            truth[q["qa_id"]] = rng.choice([a for a in pool if a != mine])
    for q in qa["val"]:
        q["answer"] = truth[q["qa_id"]]
    for name, split in (("qa_train.json", "train"), ("qa_val.json", "val"), ("q_test.json", "test")):
        (out / "dataset" / "qa" / name).write_text(json.dumps(qa[split], indent=1))
    (out / "txt" / "anetqa_trainval_ans2label.json").write_text(json.dumps(ans2label, indent=4))
    (out / "model_config.json").write_text(json.dumps(model_config, indent=4))

    released = out / "released"
    (released / "ckpt").mkdir(parents=True)
    (released / "log").mkdir()
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    torch.save(state, released / "ckpt" / f"model_step_{RELEASED_STEP}.pt")
    (released / "log" / "model_config.json").write_text(json.dumps(model_config, indent=4))
    (released / "log" / "args.json").write_text(json.dumps(
        {"max_txt_len": args.max_txt_len, "max_img_size": args.max_img_size, "score_agg_func": "mean",
         "num_frm": 2, "train_n_clips": 4, "seed": args.seed, "fp16": 1,
         "note": "the mini generator's planted release (not trained); data paths come from the run config"},
        indent=4))
    pretrained = {k: v for k, v in state.items() if not k.startswith("transformer.classifier.")}
    h, v = config.hidden_size, config.vocab_size
    pretrained.update({"transformer.cls.predictions.bias": torch.zeros(v),
                       "transformer.cls.predictions.transform.dense.weight": torch.randn(h, h) * 0.02,
                       "transformer.cls.predictions.transform.dense.bias": torch.zeros(h),
                       "transformer.cls.predictions.transform.LayerNorm.weight": torch.ones(h),
                       "transformer.cls.predictions.transform.LayerNorm.bias": torch.zeros(h),
                       "transformer.cls.predictions.decoder.weight": state["transformer.bert.embeddings.word_embeddings.weight"].clone(),
                       "transformer.cls.predictions.decoder.bias": torch.zeros(v),
                       "transformer.cls.seq_relationship.weight": torch.randn(2, h) * 0.02,
                       "transformer.cls.seq_relationship.bias": torch.zeros(2)})
    torch.save(pretrained, out / "pretrained" / "clipbert_image_text_pretrained.pt")
    metrics = planted_metrics(qa["val"], right)
    planted = {"metrics": metrics, "released_step": RELEASED_STEP, "smallest_margin": smallest,
               "answers_changed_by_fault": changed, "settings": {k: v for k, v in vars(args).items() if k != "out"}}
    (out / "planted.json").write_text(json.dumps(planted, indent=1) + "\n")
    write_planted_claims(out, "clipbert", "zoorepro.clipbert.make_mini_data",
                         f"generated ANetQA val ({len(questions)} questions)",
                         "counting the planted right/wrong flags per taxonomy category (not eval_res)",
                         [PlantedMetric(name, value, "percent") for name, value in metrics.items()])
    write_tree_manifest(out, "MANIFEST.json", {"generator": "zoorepro.clipbert.make_mini_data"})
    print(f"planted accuracy {metrics['accuracy']:.2f} % on {len(questions)} val questions; smallest margin "
          f"{smallest:.3g}; answers changed by BGR frames {changed['bgr']}, by the first clip only {changed['first clip']}")
    return planted


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--videos", type=int, nargs=3, default=(4, 8, 2), metavar=("TRAIN", "VAL", "TEST"))
    ap.add_argument("--per-video", type=int, default=2)
    ap.add_argument("--frame-size", type=int, default=96, help="sample_imgs_clipbert's --size in the pipeline")
    ap.add_argument("--sample-seed", type=int, default=42, help="sample_imgs_clipbert's --seed in the pipeline")
    ap.add_argument("--max-img-size", type=int, default=128)
    ap.add_argument("--max-txt-len", type=int, default=20)
    ap.add_argument("--margin", type=float, default=4.0)
    ap.add_argument("--weight-scale", type=float, default=8.0)
    ap.add_argument("--visual-scale", type=float, default=3.0)
    ap.add_argument("--right-fraction", type=float, default=7 / 12)
    args = ap.parse_args()
    with building_dir(args.out) as tmp:
        generate(tmp, args)
    return 0


if __name__ == "__main__":
    run_step(main)
