"""The document's `preprocess.py`: VQA v2 balanced_real_val -> per-sample model inputs on disk.

Same as the document: `load_archive`, the archive's `validation_dataset_reader` (vqav2: the torch
image loader, ResNet backbone and Faster R-CNN region detector featurize every image; the
pretrained_transformer tokenizer tokenizes every question), instances indexed with the model's
vocabulary, sequence tensors (token_ids, mask, type_ids) zero-padded or truncated to `pad_len`
and box tensors (box_features, box_coordinates, box_mask) to `box_num` along dim 1, labels and
label_weights left unpadded, one `.npy` per input and sample (layout: docs/design.md).

Fixed here, and why:
* The document nests its whole data loop inside `for input_name in INPUT_NAMES`, so it writes the
  data set 8 times; here every sample is written once.
* The document's loader shuffles (unseeded) on every pass, so which question lands in `N.npy`
  changes from run to run; here samples are written in ascending question_id order, and
  `index.json` records that order.
* The document downloads the question/annotation files at read time (and recommends switching SSL
  verification off) and expects the Faster R-CNN weights in /root/.cache; here the reader gets the
  local, checksummed files (patch allennlp-models/02) and TORCH_HOME points into the data folder.
* Output goes to a temporary sibling folder renamed into place at the end, so an interrupted run
  never leaves a complete-looking `save_dir`.
* Box features are cached in `<save_dir's parent>/feature_cache/<key>` (allennlp's lmdb cache),
  so a rerun does not featurize again; the key covers the featurization settings, the Faster
  R-CNN checkpoint and the image list, so a cache made with other settings is never reused.

Usage: python -m zoorepro.vilbert.preprocess --archive_file data/mini/vilbert/vilbert-vqa-mini.tar.gz
           --save_dir work/mini/vilbert/preprocessed --data_dir data/mini/vilbert
           [--src work/src/vilbert] [--pad_len 32] [--box_num 100] [--question_subset N]
           [--tokenizer_dir DIR] [--image_dir DIR] [--cuda_device -1]
"""
from __future__ import annotations

import argparse
from zoorepro.cli import hub_offline, run_step

import hashlib
import json
import os
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

from zoorepro import lineage
from zoorepro.errors import ZooreproError
from zoorepro.fsutil import building_dir, sha256sum
from zoorepro.progress import progress
from zoorepro.vilbert.export_onnx import model_overrides
from zoorepro.vilbert.sources import activate

SPLIT = "balanced_real_val"
QUESTIONS_FILE = "v2_OpenEnded_mscoco_val2014_questions.json"
ANNOTATIONS_FILE = "v2_mscoco_val2014_annotations.json"
IMAGE_DIR = "val2014"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")  # what the vision reader discovers below image_dir
TORCH_HOME = "torch_home"
HUB_CHECKPOINT = "hub/checkpoints/fasterrcnn_resnet50_fpn_coco-258fb6c6.pth"
READERS = ("dataset_reader", "validation_dataset_reader")
SEQ_NAMES = ("token_ids", "mask", "type_ids")
BOX_NAMES = ("box_features", "box_coordinates", "box_mask")
# Every saved array and its dtype (docs/design.md, "ViLBERT per-sample layout").
DTYPES = {"box_features": np.float32, "box_coordinates": np.float32, "box_mask": np.bool_,
          "token_ids": np.int64, "mask": np.bool_, "type_ids": np.int64,
          "labels": np.int64, "label_weights": np.float32}


def archive_config(archive_file: Path) -> dict:
    """The archive's config.json, read without extracting the (possibly 1 GB) archive."""
    try:
        with tarfile.open(archive_file, "r:gz") as tar:
            member = tar.extractfile("config.json")
            if member is None:
                raise KeyError("config.json")
            return json.load(member)
    except (OSError, KeyError, tarfile.TarError, json.JSONDecodeError) as exc:
        raise ZooreproError(f"{archive_file}: not an allennlp model archive with a config.json ({exc})") from exc


def validation_reader_key(config: dict) -> str:
    """The config key of the reader load_archive returns as validation_dataset_reader (it falls
    back to the training reader when the config has no validation reader)."""
    return "validation_dataset_reader" if "validation_dataset_reader" in config else "dataset_reader"


def default_tokenizer_dir(config: dict, data_dir: Path) -> Path:
    """The data folder's copy of the tokenizer the archive names (e.g. `bert-base-uncased`)."""
    name = config[validation_reader_key(config)]["tokenizer"]["model_name"]
    return data_dir / Path(name).name


def select_questions(data_dir: Path, subset: int | None) -> tuple[dict, dict, list[int]]:
    """The question and annotation documents reduced to the chosen questions, listed in
    ascending question_id order (the first `subset` of them, or all)."""
    questions = json.loads((data_dir / QUESTIONS_FILE).read_text())
    annotations = json.loads((data_dir / ANNOTATIONS_FILE).read_text())
    ordered = sorted(questions["questions"], key=lambda q: q["question_id"])
    if subset is not None:
        if subset < 1:
            raise ZooreproError(f"--question_subset must be positive, got {subset}")
        ordered = ordered[:subset]
    ids = [q["question_id"] for q in ordered]
    if len(set(ids)) != len(ids):
        raise ZooreproError(f"{data_dir / QUESTIONS_FILE}: duplicate question_ids")
    wanted = set(ids)
    by_id = {a["question_id"]: a for a in annotations["annotations"] if a["question_id"] in wanted}
    missing = wanted - by_id.keys()
    if missing:
        raise ZooreproError(f"{data_dir / ANNOTATIONS_FILE}: no annotation for question_ids {sorted(missing)[:5]}...")
    questions = {**questions, "questions": ordered}
    annotations = {**annotations, "annotations": [by_id[i] for i in ids]}
    return questions, annotations, ids


def write_split_files(folder: Path, data_dir: Path, subset: int | None) -> tuple[dict[str, str], list[int]]:
    """Write the chosen questions and their annotations as the reader's local split files;
    returns the files (for the reader's `split_files`) and the question_ids in reading order."""
    questions, annotations, ids = select_questions(data_dir, subset)
    files = {"questions": folder / QUESTIONS_FILE, "annotations": folder / ANNOTATIONS_FILE}
    files["questions"].write_text(json.dumps(questions))
    files["annotations"].write_text(json.dumps(annotations))
    return {kind: str(path) for kind, path in files.items()}, ids


def feature_cache_key(reader: dict, checkpoint: Path, image_dir: Path) -> str:
    """A short digest of everything that determines the box features: the reader's image
    pipeline settings, the Faster R-CNN checkpoint bytes and the images the reader finds (base
    names, as the reader keys its cache, and sizes)."""
    digest = hashlib.sha256()
    settings = {k: reader.get(k) for k in ("image_loader", "image_featurizer", "region_detector")}
    digest.update(json.dumps(settings, sort_keys=True).encode())
    digest.update(sha256sum(checkpoint).encode())
    images = (p for p in image_dir.rglob("*") if p.suffix in IMAGE_SUFFIXES and p.is_file())
    for image in sorted(images, key=lambda p: p.name):
        digest.update(f"{image.name}:{image.stat().st_size}\n".encode())
    return digest.hexdigest()[:16]


def reader_overrides(config: dict, image_dir: Path, tokenizer_dir: Path, split_files: dict,
                     feature_cache: Path, cuda_device: int) -> dict:
    """load_archive overrides that point the readers at local files.

    load_archive builds every reader in the config, so each gets the local image folder and
    tokenizer (the configured ones are the authors' machine paths and hub names). A separate
    training reader's answer vocabulary is a URL fetched at construction; that reader is unused
    here, so its vocabulary is switched off."""
    overrides: dict = {}
    for reader in (key for key in READERS if key in config):
        overrides[f"{reader}.image_dir"] = str(image_dir)
        overrides[f"{reader}.tokenizer.model_name"] = str(tokenizer_dir)
        overrides[f"{reader}.token_indexers.tokens.model_name"] = str(tokenizer_dir)
    validation = validation_reader_key(config)
    if validation != "dataset_reader":
        overrides["dataset_reader.answer_vocab"] = None
    overrides[f"{validation}.split_files"] = {SPLIT: split_files}
    overrides[f"{validation}.feature_cache_dir"] = str(feature_cache)
    overrides[f"{validation}.cuda_device"] = cuda_device
    return overrides


def fit(array: np.ndarray, length: int) -> np.ndarray:
    """Zero-pad or truncate dim 1 to `length`, keeping the dtype (the document's pad_data; a
    negative length keeps the array as it is). Truncating a sequence drops its [SEP], as there."""
    if length < 0:
        return array
    if array.shape[1] >= length:
        return array[:, :length]
    pad = [(0, 0)] * array.ndim
    pad[1] = (0, length - array.shape[1])
    return np.pad(array, pad)


def sample_arrays(tensors: dict, pad_len: int, box_num: int) -> dict[str, np.ndarray]:
    """One batch-of-1 tensor dict -> the eight arrays of the per-sample layout, with the
    layout's dtypes (bool masks, int64 ids)."""
    arrays = {name: fit(tensors[name].cpu().numpy(), box_num) for name in BOX_NAMES}
    tokens = tensors["question"]["tokens"]
    arrays.update({name: fit(tokens[name].cpu().numpy(), pad_len) for name in SEQ_NAMES})
    arrays["labels"] = tensors["labels"].cpu().numpy()
    arrays["label_weights"] = tensors["label_weights"].cpu().numpy()
    for name, dtype in DTYPES.items():
        if arrays[name].dtype != dtype:
            raise ZooreproError(f"{name}: the reader produced {arrays[name].dtype}, the layout needs "
                                f"{np.dtype(dtype)}")
    return arrays


def write_samples(reader, vocab, out: Path, n_expected: int, pad_len: int, box_num: int) -> int:
    """Read the split, index each instance with the model vocabulary and save its arrays as
    `out/<name>/<i>.npy`. Returns the number written."""
    from allennlp.data import Batch

    for name in DTYPES:
        (out / name).mkdir(parents=True)
    count = 0
    # the reader featurizes the images as it goes: this is the long part of the step
    for instance in progress(reader.read(SPLIT), total=n_expected, desc=f"featurize {SPLIT}", unit="samples"):
        if count >= n_expected:
            raise ZooreproError(f"the reader returned more than the {n_expected} questions asked for")
        instance.index_fields(vocab)
        arrays = sample_arrays(Batch([instance]).as_tensor_dict(), pad_len, box_num)
        for name, array in arrays.items():
            np.save(out / name / f"{count}.npy", array)
        count += 1
    if count != n_expected:
        # The reader drops questions without answers; the order would no longer match index.json.
        raise ZooreproError(f"the reader returned {count} instances for {n_expected} questions")
    return count


def preprocess(archive_file: Path, save_dir: Path, data_dir: Path, src: Path, *, pad_len: int = 32,
               box_num: int = 100, question_subset: int | None = None, tokenizer_dir: Path | None = None,
               image_dir: Path | None = None, cuda_device: int = -1) -> dict:
    """Write the per-sample layout for balanced_real_val to `save_dir`; returns index.json's
    content. Sets TORCH_HOME so that torchvision finds the Faster R-CNN weights in the data folder.
    A model built from a Hugging Face model name gets the tokenizer folder as its local copy
    (for bert-base-uncased both are the same Hugging Face snapshot). `image_dir` defaults to
    `<data_dir>/val2014`; the reader finds images anywhere below it."""
    archive_file, save_dir, data_dir = Path(archive_file).resolve(), Path(save_dir).resolve(), Path(data_dir).resolve()
    config = archive_config(archive_file)
    tokenizer_dir = Path(tokenizer_dir).resolve() if tokenizer_dir else default_tokenizer_dir(config, data_dir)
    image_dir = Path(image_dir).resolve() if image_dir else data_dir / IMAGE_DIR
    torch_home = data_dir / TORCH_HOME
    checkpoint = torch_home / HUB_CHECKPOINT
    for needed in (image_dir, data_dir / QUESTIONS_FILE, data_dir / ANNOTATIONS_FILE, tokenizer_dir, checkpoint):
        if not needed.exists():
            raise ZooreproError(f"{needed} does not exist (prepare the data folder first)")
    os.environ["TORCH_HOME"] = str(torch_home)
    activate(src)
    import allennlp_models.vision  # noqa: F401  (registers vqav2 and vqa_vilbert)
    import torch
    from allennlp.models.archival import load_archive

    if cuda_device >= 0 and not torch.cuda.is_available():
        raise ZooreproError(f"--cuda_device {cuda_device} asked for, but CUDA is not available")
    save_dir.parent.mkdir(parents=True, exist_ok=True)
    key = feature_cache_key(config[validation_reader_key(config)], checkpoint, image_dir)
    feature_cache = save_dir.parent / "feature_cache" / key
    with tempfile.TemporaryDirectory(prefix=f".{save_dir.name}.split-", dir=save_dir.parent) as scratch, \
            building_dir(save_dir) as out:
        split_files, ids = write_split_files(Path(scratch), data_dir, question_subset)
        overrides = reader_overrides(config, image_dir, tokenizer_dir, split_files, feature_cache, cuda_device)
        overrides.update(model_overrides(config, tokenizer_dir))
        archive = load_archive(str(archive_file), cuda_device=cuda_device, overrides=json.dumps(overrides))
        write_samples(archive.validation_dataset_reader, archive.model.vocab, out, len(ids), pad_len, box_num)
        index = {"split": SPLIT, "pad_len": pad_len, "box_num": box_num, "question_ids": ids}
        (out / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    return index


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive_file", type=Path, required=True)
    parser.add_argument("--save_dir", type=Path, required=True)
    parser.add_argument("--data_dir", type=Path, required=True,
                        help="folder with val2014/, the two VQA v2 JSONs, torch_home/ and the tokenizer")
    parser.add_argument("--src", type=Path, default=Path("work/src/vilbert"))
    parser.add_argument("--pad_len", type=int, default=-1, help="pad/truncate sequences to this (-1: as read)")
    parser.add_argument("--box_num", type=int, default=-1, help="pad/truncate boxes to this (-1: as read)")
    parser.add_argument("--question_subset", type=int, default=None,
                        help="only the first N questions by ascending question_id")
    parser.add_argument("--tokenizer_dir", type=Path, default=None,
                        help="default: <data_dir>/<tokenizer model_name of the archive's reader>; also the "
                             "local copy of a Hugging Face model the archive's model is built from")
    parser.add_argument("--image_dir", type=Path, default=None,
                        help="folder searched (recursively) for COCO_val2014_*.jpg; default: <data_dir>/val2014")
    parser.add_argument("--cuda_device", type=int, default=-1, help="GPU for featurization (-1: CPU)")
    args = parser.parse_args()
    hub_offline()
    start = time.perf_counter()
    args.save_dir.parent.mkdir(parents=True, exist_ok=True)
    # allennlp's answer-count cache stays out of $HOME and dies with this run (set before allennlp is imported).
    with tempfile.TemporaryDirectory(prefix=".allennlp-cache-", dir=args.save_dir.parent) as cache_root:
        os.environ["ALLENNLP_CACHE_ROOT"] = cache_root
        index = preprocess(args.archive_file, args.save_dir, args.data_dir, args.src, pad_len=args.pad_len,
                           box_num=args.box_num, question_subset=args.question_subset,
                           tokenizer_dir=args.tokenizer_dir, image_dir=args.image_dir,
                           cuda_device=args.cuda_device)
    lineage.record(args.save_dir, [args.archive_file, args.data_dir, *(p for p in (args.tokenizer_dir, args.image_dir) if p)])
    print(f"wrote {len(index['question_ids'])} samples to {args.save_dir} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    run_step(main)
