"""A deterministic mini ViLBERT VQA world: the document's inputs, small enough for CI.

Why: the full scale needs 6 GB of COCO val2014 images, 214354 questions, a 1 GB model archive and
the Faster R-CNN checkpoint. The mini scale generates the same kinds of files in the same formats,
so every step (allennlp's vqav2 reader, the real Faster R-CNN featurization, load_archive, ONNX
export) runs unchanged on a laptop in a minute or two (the generator featurizes the images once,
for the planting run):

* `val2014/COCO_val2014_{id:012d}.jpg`: small JPEGs of coloured shapes on noise;
* the VQA v2 question and annotation JSON files (official layout, 10 answers per question); the
  answers are planted from the random model's own eager outputs (zoorepro/vilbert/planting.py),
  so that precision/recall/fscore/vqa_score take chosen, non-degenerate values;
* `torch_home/hub/checkpoints/fasterrcnn_resnet50_fpn_coco-258fb6c6.pth`: torchvision's
  Faster R-CNN ResNet-50 FPN with seeded random weights under the file name torchvision caches the
  COCO weights as (torchvision checks the hash only when it downloads, so this file loads);
* `bert-tiny-tokenizer/`: a WordPiece vocabulary covering the questions, saved as a transformers
  BertTokenizer folder;
* `vilbert-vqa-mini.tar.gz`: an allennlp model archive of a tiny random-weight `vqa_vilbert`
  (its answer head shaped so that every decision is well away from a threshold or a tie) with a
  fixed answer vocabulary (ANSWER_VOCABULARY);
* `planted_claims.yaml`: the expected metrics, computed by allennlp's own metric classes on the
  eager model (zoorepro/planted.py), written before the manifest so that it is checksummed;
* `MANIFEST.json`: the sha256 of every file above.

The same seed gives the same bytes on every run (fixed JPEG settings, no timestamps in JSON, tar
or gzip headers, sorted members, the shaped head's parameters rounded to a grid), so the
generated set can be checksummed like a download. Paths inside the archive's config are
placeholders relative to the data folder; the preprocess step overrides them with real paths at
run time.

Usage: python -m zoorepro.vilbert.make_mini --out data/mini/vilbert --src work/src/vilbert
           --seed 0 --n-images 12 --n-questions 36
"""
from __future__ import annotations

import argparse
import time
from zoorepro.cli import hub_offline, run_step

import copy
import gzip
import io
import json
import os
import re
import tarfile
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from zoorepro.errors import ZooreproError
from zoorepro.vilbert.preprocess import ANNOTATIONS_FILE, HUB_CHECKPOINT, IMAGE_DIR, QUESTIONS_FILE, TORCH_HOME
from zoorepro.fsutil import building_dir, write_tree_manifest
from zoorepro.planted import PlantedMetric, write_planted_claims
from zoorepro.vilbert import planting
from zoorepro.vilbert.pipeline import CLAIM_METRICS as PLANTED_METRICS
from zoorepro.vilbert.sources import activate

# The data folder layout the preprocess step reads (images, VQA files, TORCH_HOME) is defined there.
FRCNN_CHECKPOINT = f"{TORCH_HOME}/{HUB_CHECKPOINT}"
TOKENIZER_DIR = "bert-tiny-tokenizer"
ARCHIVE = "vilbert-vqa-mini.tar.gz"
MANIFEST = "MANIFEST.json"

IMAGE_SIZES = ((64, 48), (80, 60), (96, 72))
COLORS = {"red": (220, 40, 40), "blue": (40, 60, 220), "green": (40, 180, 60),
          "yellow": (230, 210, 40), "white": (245, 245, 245), "black": (15, 15, 15)}
SHAPES = ("circle", "square", "triangle")
MAX_COUNT = 4
# The answer vocabulary of the mini archive: every plausible answer to the four question kinds.
# It is fixed (not counted from the annotations as the real one was), because the annotations are
# planted from the model's outputs, after the archive exists.
ANSWER_VOCABULARY = (*COLORS, *(str(n) for n in range(1, MAX_COUNT + 1)), *SHAPES, "yes", "no")
# Answers outside the vocabulary (the reader labels them 1, OOV): planted as the humans' other answers.
DISTRACTORS = ("purple", "orange", "pink", "brown", "gray", "oval", "star", "heart", "diamond",
               "5", "6", "7", "8", "many", "maybe", "unknown", "dog", "cat", "tree")
PROVISIONAL_ANSWER = "yes"  # every question's answers while the model runs (logits do not read them)
JPEG_OPTIONS = {"quality": 90, "subsampling": 2, "optimize": False, "progressive": False}
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
WORDPIECE_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"
_FIXED_DATE = "2017-04-26 17:00:44"  # VQA v2's own release date; no generation timestamps

# The tiny model: BERT-like text stream and ViLBERT image stream, both 2 layers of width 32;
# the image features are the Faster R-CNN box head's 1024-d outputs, as in the real model.
HIDDEN = 32
IMAGE_FEATURE_DIM = 1024
LAYERS = 2
# The reader's image pipeline, shrunk so CPU featurization of a dozen images takes seconds.
# box_score_thresh 0: random detector weights score every class near 1/91, below the real 0.05.
IMAGE_LOADER = {"type": "torch", "min_size": 96, "max_size": 128, "size_divisibility": 32}
REGION_DETECTOR = {"type": "faster_rcnn", "box_score_thresh": 0.0, "box_nms_thresh": 0.5,
                   "max_boxes_per_image": 100}


@dataclass(frozen=True)
class Picture:
    """What one generated image shows; the questions about it are answered from this."""

    image_id: int
    width: int
    height: int
    shape: str
    color: str
    count: int


def pick_pictures(rng: np.random.Generator, n_images: int) -> list[Picture]:
    """Distinct COCO-like image ids (ascending) with a random scene each."""
    ids = sorted(int(i) for i in rng.choice(np.arange(1, 581_930), size=n_images, replace=False))
    pictures = []
    for image_id in ids:
        width, height = IMAGE_SIZES[rng.integers(len(IMAGE_SIZES))]
        pictures.append(Picture(image_id, width, height, SHAPES[rng.integers(len(SHAPES))],
                                list(COLORS)[rng.integers(len(COLORS))], int(rng.integers(1, MAX_COUNT + 1))))
    return pictures


def draw(picture: Picture, rng: np.random.Generator) -> bytes:
    """A JPEG of `count` shapes on a noise background, encoded with fixed settings."""
    noise = rng.integers(0, 256, size=(picture.height, picture.width, 3), dtype=np.uint8)
    image = Image.fromarray(noise, "RGB")
    pen = ImageDraw.Draw(image)
    size = min(picture.width, picture.height) // 3
    for _ in range(picture.count):
        x = int(rng.integers(0, picture.width - size))
        y = int(rng.integers(0, picture.height - size))
        box = (x, y, x + size, y + size)
        fill = COLORS[picture.color]
        if picture.shape == "circle":
            pen.ellipse(box, fill=fill)
        elif picture.shape == "square":
            pen.rectangle(box, fill=fill)
        else:
            pen.polygon([(x, y + size), (x + size, y + size), (x + size // 2, y)], fill=fill)
    out = io.BytesIO()
    image.save(out, format="JPEG", **JPEG_OPTIONS)
    return out.getvalue()


def ask(picture: Picture, kind: int) -> tuple[str, str, str, str, tuple[str, ...]]:
    """(question, question_type, answer_type, true answer, plausible answers) for one of four
    VQA-style question kinds."""
    if kind == 0:
        return (f"What color is the {picture.shape}?", "what color is the", "other", picture.color,
                tuple(COLORS))
    if kind == 1:
        return (f"How many {picture.shape}s are there?", "how many", "number", str(picture.count),
                tuple(str(n) for n in range(1, MAX_COUNT + 1)))
    if kind == 2:
        other = SHAPES[(SHAPES.index(picture.shape) + 1) % len(SHAPES)]
        return f"Is there a {other} in the picture?", "is there a", "yes/no", "no", ("yes", "no")
    return "What shape is shown?", "what", "other", picture.shape, SHAPES


@dataclass(frozen=True)
class Question:
    """One generated question and the VQA fields its annotation repeats."""

    record: dict  # the questions file's entry: image_id, question, question_id
    question_type: str
    answer_type: str


def make_questions(pictures: list[Picture], n_questions: int, rng: np.random.Generator) -> list[Question]:
    """VQA v2 questions, listed in a shuffled order so that consumers must sort by question_id
    themselves (the official files are not sorted by it either). Their answers are planted later,
    from the model's outputs (zoorepro/vilbert/planting.py)."""
    questions = []
    per_image: Counter = Counter()
    for i in range(n_questions):
        picture = pictures[i % len(pictures)]
        question_id = picture.image_id * 1000 + per_image[picture.image_id]
        per_image[picture.image_id] += 1
        text, question_type, answer_type = ask(picture, int(rng.integers(4)))[:3]
        questions.append(Question({"image_id": picture.image_id, "question": text, "question_id": question_id},
                                  question_type, answer_type))
    return [questions[i] for i in rng.permutation(n_questions)]


def annotation(question: Question, answers: list[str]) -> dict:
    """The annotation record of one question with its ten human answers."""
    return {
        "question_type": question.question_type,
        "multiple_choice_answer": Counter(answers).most_common(1)[0][0],
        "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": k + 1} for k, a in enumerate(answers)],
        "image_id": question.record["image_id"],
        "answer_type": question.answer_type,
        "question_id": question.record["question_id"],
    }


def vqa_files(questions: list[dict], annotations: list[dict], seed: int) -> tuple[dict, dict]:
    """The two JSON documents in the official VQA v2 layout."""
    info = {"description": f"zoorepro mini VQA v2-format data (generated, seed {seed})",
            "url": "https://visualqa.org", "version": "2.0", "year": 2017,
            "contributor": "zoorepro", "date_created": _FIXED_DATE}
    license_ = {"url": "http://creativecommons.org/licenses/by/4.0/",
                "name": "Creative Commons Attribution 4.0 License"}
    question_doc = {"info": info, "task_type": "Open-Ended", "data_type": "mscoco", "license": license_,
                    "data_subtype": "val2014", "questions": questions}
    annotation_doc = {"info": info, "license": license_, "data_subtype": "val2014",
                      "annotations": annotations, "data_type": "mscoco"}
    return question_doc, annotation_doc


def wordpiece_vocab(questions: list[dict]) -> list[str]:
    """Special tokens, single characters and their ## continuations (so any word tokenizes, as
    in BERT's vocabulary), then every lower-cased word and punctuation mark of the questions."""
    words = sorted({w for q in questions for w in re.findall(r"\w+|[^\w\s]", q["question"].lower())})
    chars = list(WORDPIECE_CHARS) + ["##" + c for c in WORDPIECE_CHARS]
    vocab = list(SPECIAL_TOKENS) + chars
    return vocab + [w for w in words if w not in vocab]


def save_tokenizer(vocab: list[str], folder: Path) -> None:
    """A transformers BertTokenizer folder (vocab.txt, tokenizer.json, tokenizer_config.json) that
    allennlp's pretrained_transformer tokenizer and indexer load offline by path."""
    from transformers import BertTokenizer

    folder.mkdir(parents=True)
    vocab_file = folder / "vocab.txt"
    vocab_file.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizer(vocab=str(vocab_file), do_lower_case=True).save_pretrained(str(folder))


def save_frcnn_checkpoint(path: Path, seed: int) -> None:
    """torchvision's Faster R-CNN ResNet-50 FPN state dict with seeded random weights."""
    import torch
    from torchvision.models.detection import fasterrcnn_resnet50_fpn

    torch.manual_seed(seed)
    model = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)
    path.parent.mkdir(parents=True)
    torch.save(model.state_dict(), path)


def answer_vocabulary() -> list[str]:
    """ANSWER_VOCABULARY, checked to be fixed points of the vqav2 reader's answer normalization
    (else a planted answer would not land on its column) and disjoint from the distractors."""
    from allennlp_models.vision.dataset_readers.utils import preprocess_answer

    moved = [a for a in ANSWER_VOCABULARY + DISTRACTORS if preprocess_answer(a) != a]
    clash = set(ANSWER_VOCABULARY) & set(DISTRACTORS)
    if moved or clash:
        raise ZooreproError(f"answers the reader would normalize {moved} or distractors in the vocabulary {clash}")
    return list(ANSWER_VOCABULARY)


def reader_config() -> dict:
    """The archive's vqav2 reader. `image_dir` and the tokenizer's model name are placeholders
    relative to the data folder; preprocess overrides them with real paths."""
    return {
        "type": "vqav2",
        "image_dir": IMAGE_DIR,
        "image_loader": IMAGE_LOADER,
        "image_featurizer": {"type": "resnet_backbone"},
        "region_detector": REGION_DETECTOR,
        "answer_vocab": None,
        "feature_cache_dir": None,
        "tokenizer": {"type": "pretrained_transformer", "model_name": TOKENIZER_DIR},
        "token_indexers": {"tokens": {"type": "pretrained_transformer", "model_name": TOKENIZER_DIR}},
        "image_processing_batch_size": 16,
    }


def model_config(text_vocab_size: int) -> dict:
    """A tiny `vqa_vilbert`: the real model's structure (co-attention in every layer, "mul"
    fusion, 1024-d box features) at width 32."""
    return {
        "type": "vqa_vilbert",
        "text_embeddings": {"vocab_size": text_vocab_size, "embedding_size": HIDDEN, "pad_token_id": 0,
                            "max_position_embeddings": 512, "type_vocab_size": 2, "dropout": 0.1},
        "image_embeddings": {"feature_size": IMAGE_FEATURE_DIM, "embedding_size": HIDDEN, "dropout": 0.1},
        "encoder": {"num_hidden_layers1": LAYERS, "num_hidden_layers2": LAYERS,
                    "hidden_size1": HIDDEN, "hidden_size2": HIDDEN, "combined_hidden_size": HIDDEN,
                    "intermediate_size1": 2 * HIDDEN, "intermediate_size2": 2 * HIDDEN,
                    "num_attention_heads1": 2, "num_attention_heads2": 2, "combined_num_attention_heads": 2,
                    "activation": "gelu", "biattention_id1": list(range(LAYERS)),
                    "biattention_id2": list(range(LAYERS)), "fixed_layer1": 0, "fixed_layer2": 0},
        "pooled_output_dim": HIDDEN,
        "fusion_method": "mul",
        "dropout": 0.1,
    }


def save_archive_dir(folder: Path, answers: list[str], text_vocab_size: int, seed: int,
                     model: dict | None = None) -> None:
    """config.json, weights.th and vocabulary/ as allennlp's archive_model lays them out; the
    model is the tiny one unless `model` (a `vqa_vilbert` config) is given."""
    import torch
    from allennlp.common import Params
    from allennlp.data import Vocabulary
    from allennlp.models import Model

    reader = reader_config()
    config = {"dataset_reader": reader, "validation_dataset_reader": reader,
              "model": model or model_config(text_vocab_size)}
    vocab = Vocabulary()
    vocab.add_tokens_to_namespace(answers, "answers")
    torch.manual_seed(seed)
    model = Model.from_params(vocab=vocab, params=Params(copy.deepcopy(config["model"])))
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    torch.save(model.state_dict(), folder / "weights.th")
    vocab.save_to_files(str(folder / "vocabulary"))
    # allennlp writes the non-padded namespaces from a set (order varies per process); sort them.
    namespaces = folder / "vocabulary" / "non_padded_namespaces.txt"
    namespaces.write_text("".join(sorted(namespaces.read_text().splitlines(keepends=True))))
    (folder / "vocabulary" / ".lock").unlink(missing_ok=True)


def write_tar_gz(folder: Path, path: Path, level: int = 9) -> None:
    """A gzipped tar of `folder`'s files whose bytes depend only on their names and contents:
    sorted members, zero mtimes, root ownership, fixed modes, no gzip file name or time."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=level) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for file in files:
            info = tarfile.TarInfo(file.relative_to(folder).as_posix())
            info.size, info.mtime, info.mode = file.stat().st_size, 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with file.open("rb") as stream:
                tar.addfile(info, stream)


def write_manifest(folder: Path, params: dict) -> dict:
    """MANIFEST.json: the generator's parameters and every file's sha256 (sorted by path)."""
    return write_tree_manifest(folder, MANIFEST, {"generator": "zoorepro.vilbert.make_mini", "params": params})


def plant(tmp: Path, staging: Path, questions: list[Question], seed: int) -> planting.Planted:
    """Shape the staged archive's answer head, run the model, plant the answers into the
    annotation file and compute the expected metrics with allennlp's own (planting.py)."""
    os.environ["TORCH_HOME"] = str(tmp / TORCH_HOME)
    import allennlp_models.vision  # noqa: F401  (registers vqav2 and vqa_vilbert)

    rng = np.random.default_rng([seed, 1])
    provisional = staging / "provisional_annotations.json"
    write_annotations(provisional, questions, [[PROVISIONAL_ANSWER] * 10] * len(questions), seed)
    planter = planting.Planter(staging / "archive", tmp, tmp / TOKENIZER_DIR, staging)
    reference = planter.reference(tmp / QUESTIONS_FILE, provisional)
    vocab = planter.load_model().vocab
    columns = [vocab.get_token_from_index(c, "answers") for c in range(vocab.get_vocab_size("answers"))]
    answers = planting.plant_answers(reference.logits, columns, list(DISTRACTORS), rng)
    write_annotations(tmp / ANNOTATIONS_FILE, questions, answers, seed)
    metrics, tensors, logits = planter.evaluate(tmp / QUESTIONS_FILE, tmp / ANNOTATIONS_FILE)
    if not np.array_equal(logits, reference.logits):
        raise ZooreproError("the model's logits changed between the planting run and the evaluation run")
    planted = planting.Planted(answers, metrics, planting.threshold_margin(logits),
                               planting.argmax_margin(logits, planting.column_weights(tensors)),
                               sum(len(planting.tied(row)) > 1 for row in logits))
    if min(planted.threshold_margin, planted.argmax_margin) < planting.MARGIN:
        raise ZooreproError(f"planted decisions closer than {planting.MARGIN} to a threshold "
                            f"({planted.threshold_margin:.3f}) or a tie ({planted.argmax_margin:.3f})")
    return planted


def write_annotations(path: Path, questions: list[Question], answers: list[list[str]], seed: int) -> None:
    """The annotation JSON, one record per question in the questions file's order."""
    annotations = [annotation(q, a) for q, a in zip(questions, answers, strict=True)]
    path.write_text(json.dumps(vqa_files([], annotations, seed)[1], indent=1) + "\n")


def write_planted(tmp: Path, planted: planting.Planted) -> None:
    """planted_claims.yaml: the four accuracy metrics as allennlp computed them (fractions)."""
    metrics = [PlantedMetric(name, planted.metrics[name], "fraction") for name in PLANTED_METRICS]
    note = (f"argmax/threshold decisions at least {planting.MARGIN} logits from a tie or from 0.5 "
            f"(smallest: {planted.argmax_margin:.3f} / {planted.threshold_margin:.3f}); "
            f"{planted.tied_questions} questions with near-tied answers given equal votes")
    write_planted_claims(tmp, "vilbert", "zoorepro.vilbert.make_mini", "mini VQA v2-format (generated)",
                         "allennlp's F1MultiLabelMeasure(micro) and VqaMeasure via VqaVilbert.get_metrics() "
                         "on the torch eager model", metrics, note)


def make_mini(out: Path, src: Path, seed: int = 0, n_images: int = 12, n_questions: int = 36) -> dict:
    """Generate the mini set into a temporary sibling of `out` and swap it into place.
    Returns the manifest."""
    if n_images < 1 or n_questions < n_images:
        raise ZooreproError("need n_images >= 1 and n_questions >= n_images (every image gets a question)")
    hub_offline()
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.staging-", dir=out.parent) as staging:
        # allennlp's answer-count cache stays out of $HOME and dies with the run (read when allennlp
        # is first imported, so set before activate() puts it on the path).
        os.environ.setdefault("ALLENNLP_CACHE_ROOT", str(Path(staging) / "allennlp-cache"))
        activate(src)
        return _generate(out, Path(staging), seed, n_images, n_questions)


def _generate(out: Path, staging: Path, seed: int, n_images: int, n_questions: int) -> dict:
    with building_dir(out) as tmp:
        rng = np.random.default_rng(seed)
        pictures = pick_pictures(rng, n_images)
        (tmp / IMAGE_DIR).mkdir()
        for picture in pictures:
            (tmp / IMAGE_DIR / f"COCO_val2014_{picture.image_id:012d}.jpg").write_bytes(draw(picture, rng))
        questions = make_questions(pictures, n_questions, rng)
        records = [q.record for q in questions]
        (tmp / QUESTIONS_FILE).write_text(json.dumps(vqa_files(records, [], seed)[0], indent=1) + "\n")
        vocab = wordpiece_vocab(records)
        save_tokenizer(vocab, tmp / TOKENIZER_DIR)
        save_frcnn_checkpoint(tmp / FRCNN_CHECKPOINT, seed)
        save_archive_dir(staging / "archive", answer_vocabulary(), len(vocab), seed)
        planted = plant(tmp, staging, questions, seed)
        # loading the archive folder for the eager run leaves allennlp's vocabulary lock file behind
        (staging / "archive" / "vocabulary" / ".lock").unlink(missing_ok=True)
        write_tar_gz(staging / "archive", tmp / ARCHIVE)
        write_planted(tmp, planted)
        print(f"planted {planted.metrics}; smallest margins: argmax {planted.argmax_margin:.3f}, "
              f"threshold {planted.threshold_margin:.3f}; {planted.tied_questions} near-tied questions")
        manifest = write_manifest(tmp, {"seed": seed, "n_images": n_images, "n_questions": n_questions})
    return manifest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/mini/vilbert"))
    parser.add_argument("--src", type=Path, default=Path("work/src/vilbert"),
                        help="patched allennlp sources (the vilbert sources step)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-images", type=int, default=12)
    parser.add_argument("--n-questions", type=int, default=36)
    args = parser.parse_args()
    start = time.perf_counter()
    manifest = make_mini(args.out, args.src, args.seed, args.n_images, args.n_questions)
    print(f"wrote {len(manifest['files'])} files to {args.out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    run_step(main)
