"""Shape scale: ClipBERT at its real sizes with random weights, on synthetic ANetQA-format data.

Throughput does not depend on weight values or pixel contents: this writes what the full-scale
steps read, in the full scale's layout and formats, at the real sizes, so that select_videos,
sample_imgs_clipbert (16 uniform frames per val/test video, 5 sets of 4x2 per train video, resized
to 512x512), aux_csv, aux_jsonl, make_config (the document's anetqa_frameqa_base_resnet50.json:
max_img_size 448, max_txt_len 40), run_video_qa (finetune) and its inference run exactly as at full
scale. Nothing is downloaded. Accuracy is not measured at this scale (the answers are random).

Writes under --out (data/shape/clipbert, the layout of data/full/clipbert):

* `dataset/qa/qa_{train,val}.json`, `dataset/qa/q_test.json`, `dataset/meta/video_{split}.json`:
  ANetQA's record fields (the mini generator's question maker), `dataset/video/<id>.mp4`: generated
  H.264 videos of --video-size pixels (ActivityNet's common 640x360) and --video-frames frames;
* `txt/anetqa_trainval_ans2label.json`: ANetQA's answer-list size, 12,911 entries (`<UNK>`, yes,
  no, ...), so the classifier is the real 768 -> 1536 -> 12,911 head;
* `bert-base-uncased/vocab.txt` (30,522 WordPiece entries: the specials, the questions' words,
  unused fillers; bert-base-uncased's size) and `config.json` (BERT-base's widths; the tokenizer
  reads vocab.txt only, the e2e checkpoint carries every weight);
* `pretrained/clipbert_image_text_pretrained.pt`: the e2e pretrained checkpoint's layout (a flat
  float32 state dict of ClipBertForPreTraining: ResNet-50 C5 and its unused detector heads, the
  grid encoder, BERT-base, the MLM/ITM heads, no QA classifier), seeded random weights (about
  0.9 GB: 221 M parameters);
* `MANIFEST.json` (every file's sha256 and the generator's parameters).

Usage: python -m zoorepro.clipbert.make_shape --out data/shape/clipbert [--seed 0]
         [--videos 1 1 1] [--per-video 2] [--video-frames 48] [--video-size 640 360]
"""
from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np

from zoorepro.cli import run_step
from zoorepro.fsutil import building_dir, write_tree_manifest

ANSWERS = 12911      # anetqa_trainval_ans2label.json (MILVLG/anetqa-code)
VOCAB_SIZE = 30522   # bert-base-uncased's vocab.txt (base_model.json vocab_size)
E2E = "pretrained/clipbert_image_text_pretrained.pt"


def answer_list(n: int = ANSWERS) -> list[str]:
    """`<UNK>` 0, yes 1, no 2 (ANetQA's first entries), then placeholders to the real size."""
    from zoorepro.clipbert.make_mini_data import OPEN_ANSWERS

    head = ["<UNK>", "yes", "no", *OPEN_ANSWERS]
    return head + [f"answer_{i}" for i in range(n - len(head))]


def vocabulary(questions: list[dict], size: int = VOCAB_SIZE) -> list[str]:
    """The specials, the questions' words, then `[unusedN]` fillers up to bert-base-uncased's size."""
    from zoorepro.clipbert.make_mini_data import vocabulary as words

    vocab = words(questions)
    return vocab + [f"[unused{i}]" for i in range(size - len(vocab))]


def e2e_state(model) -> dict:
    """The e2e pretrained checkpoint's layout from a ClipBertQA: its state without the QA classifier,
    plus ClipBertForPreTraining's MLM head (decoder tied to the word embeddings) and ITM head."""
    import torch

    from zoorepro.clipbert.model import FINETUNE_ONLY_PREFIX, PRETRAINED_ONLY_PREFIX

    state = {k: v.detach().clone() for k, v in model.state_dict().items() if not k.startswith(FINETUNE_ONLY_PREFIX)}
    h, v = model.config.hidden_size, model.config.vocab_size
    cls = PRETRAINED_ONLY_PREFIX
    state.update({f"{cls}predictions.bias": torch.zeros(v),
                  f"{cls}predictions.transform.dense.weight": torch.randn(h, h) * 0.02,
                  f"{cls}predictions.transform.dense.bias": torch.zeros(h),
                  f"{cls}predictions.transform.LayerNorm.weight": torch.ones(h),
                  f"{cls}predictions.transform.LayerNorm.bias": torch.zeros(h),
                  f"{cls}predictions.decoder.weight": state["transformer.bert.embeddings.word_embeddings.weight"].clone(),
                  f"{cls}predictions.decoder.bias": torch.zeros(v),
                  f"{cls}seq_relationship.weight": torch.randn(2, h) * 0.02,
                  f"{cls}seq_relationship.bias": torch.zeros(2)})
    return state


def generate(out: Path, seed: int, videos: tuple[int, int, int], per_video: int, frames: int,
             size: tuple[int, int]) -> dict:
    import torch

    from zoorepro.clipbert.make_mini_data import make_questions, video_ids, write_video
    from zoorepro.clipbert.model import BASE_MODEL, ClipBertConfig, build_model, num_labels_for

    rng, nrng = random.Random(seed), np.random.default_rng(seed)
    used: set = set()
    ids = {split: video_ids(rng, n, used) for split, n in zip(("train", "val", "test"), videos)}
    seen: set = set()
    qa = {"train": make_questions(rng, ids["train"], per_video, True, seen),
          "val": make_questions(rng, ids["val"], per_video, True, seen),
          "test": make_questions(rng, ids["test"], 1, False, seen)}
    for d in ("dataset/qa", "dataset/meta", "dataset/video", "txt", "bert-base-uncased", "pretrained"):
        (out / d).mkdir(parents=True)
    for split, vids in ids.items():
        (out / "dataset" / "meta" / f"video_{split}.json").write_text(json.dumps(vids))
        for vid in vids:
            write_video(out / "dataset" / "video" / f"{vid}.mp4", frames, nrng, size=size)
    for name, split in (("qa_train.json", "train"), ("qa_val.json", "val"), ("q_test.json", "test")):
        (out / "dataset" / "qa" / name).write_text(json.dumps(qa[split], indent=1))
    answers = answer_list()
    (out / "txt" / "anetqa_trainval_ans2label.json").write_text(
        json.dumps({a: i for i, a in enumerate(answers)}, indent=4))
    vocab = vocabulary(qa["train"] + qa["val"] + qa["test"])
    (out / "bert-base-uncased" / "vocab.txt").write_text("\n".join(vocab) + "\n")
    (out / "bert-base-uncased" / "config.json").write_text(json.dumps(
        {"architectures": ["BertForMaskedLM"], **{k: v for k, v in BASE_MODEL.items() if not k.startswith("max_grid")
                                                  and k not in ("backbone_channel_in_size",
                                                                "max_temporal_position_embeddings")}}, indent=2))
    config = ClipBertConfig.from_model_config(dict(BASE_MODEL), num_labels_for(len(answers)))
    torch.manual_seed(seed)
    model = build_model(config)
    torch.save(e2e_state(model), out / E2E)
    parameters = sum(p.numel() for p in model.parameters())
    params = {"seed": seed, "videos": list(videos), "per_video": per_video, "video_frames": frames,
              "video_size": list(size), "answers": len(answers), "vocab": len(vocab)}
    manifest = write_tree_manifest(out, "MANIFEST.json", {"generator": "zoorepro.clipbert.make_shape",
                                                          "params": params})
    print(f"wrote {sum(videos)} videos ({frames} frames, {size[0]}x{size[1]}), "
          f"{sum(len(q) for q in qa.values())} questions, {len(answers)} answers, {len(vocab)} vocab entries, "
          f"the e2e checkpoint of the full-size ClipBERT ({parameters / 1e6:.1f} M parameters in the QA model)")
    return manifest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--videos", type=int, nargs=3, default=(1, 1, 1), metavar=("TRAIN", "VAL", "TEST"))
    ap.add_argument("--per-video", type=int, default=2, help="questions per train/val video (test: 1)")
    ap.add_argument("--video-frames", type=int, default=48)
    ap.add_argument("--video-size", type=int, nargs=2, default=(640, 360), metavar=("W", "H"))
    args = ap.parse_args()
    with building_dir(args.out) as tmp:
        generate(tmp, args.seed, tuple(args.videos), args.per_video, args.video_frames, tuple(args.video_size))
    return 0


if __name__ == "__main__":
    run_step(main)
