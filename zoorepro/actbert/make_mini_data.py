"""A deterministic mini ActBERT world: MSR-VTT retrieval test data and HowTo100M pretraining inputs
in PaddleVideo's formats, small enough for CI.

Why: the full scale downloads the MSR-VTT test lmdb (1000 videos of 2048-d region and action
features), its caption csv, bert-base-uncased's vocabulary (a runtime download in paddlenlp) and
the HowTo100M feature files. The mini scale writes the same files in the same formats, offline:

* `MSRVTT_JSFUSION_test.csv`: one `video<N>,caption` line per video, no header, no commas (the
  loader would cut a caption there); every caption is at most MAX_CAPTION_PIECES wordpieces, since
  the loader pads to 36 with [CLS] and [SEP] and never truncates. The captions are chosen by
  zoorepro/actbert/plant.py from `n_candidates` generated ones so that each ranks its video at a
  planted rank under the mini model (planted outcomes, below);
* `msrvtt_test.lmdb/data.mdb`: key `video<N>`, value the pickled record dict (video_id, image_h,
  image_w, features [n,2048] f32 with n <= 36, boxes [n,4] f32 pixel x1 y1 x2 y2 inside the
  image, action_features [m,2048] f32 with m <= 5). Records are pickled as Python 3 with numpy 1
  wrote them (protocol 3, `numpy.core` names), the format the real 2021 database was written in,
  so the restricted unpickler meets what it will meet there. Written with lock=False (no
  lock.mdb: that file is runtime state) in one transaction, in key order;
* `bert-vocab/vocab.txt`: a WordPiece vocabulary ([PAD]=0, [UNK], [CLS], [SEP], [MASK], the
  caption words and `##ing`, so "cooking" is two wordpieces), which paddlenlp's
  `BertTokenizer.from_pretrained(<this folder>)` loads offline;
* `howto100m/actbert_train_data.npy` and `my_data.npy` (the valid set the training yaml names):
  object arrays [n, 11], one row per clip as ActBertDataset + FeaturePadding unpack it: region
  features [nb,2048] f32, region class targets [nb,1601] f32 (rows sum to 1), boxes [nb,4] f32,
  nb, image_h, image_w, image_id, caption (alternatives joined by '!', as RandomCap splits
  them), action features [na,2048] f32, action targets [na] int64 in 0..699, na;
  `caption_train.json` / `caption_val.json`: the list of the split's caption strings RandomCap
  draws negatives from;
* `ActBERT-mini.pdparams` (the tiny model `main.py --test -w` loads) and `bert-mini.pdparams` (its
  text part, the pretraining init), and `planted_claims.yaml` (the expected R@1, R@5, R@10,
  MedianR, MeanR of the mini test; zoorepro/planted.py), all written by zoorepro/actbert/plant.py:
  the model is built after the features, run once in PaddleVideo (eager, cpu) on every candidate
  caption, and the csv written from what it scored;
* `MANIFEST.json`, written last: the generator's parameters, every file's sha256 and, per lmdb key,
  the sha256 of its value. The data.mdb bytes are identical across runs with these settings, so
  the file hash is kept; the per-record hashes let a run compare contents where another lmdb
  build lays the pages out differently.

Features depend on a scene: every vocabulary word has a random 2048-d prototype; a video's
regions are noisy copies of its scene's subject/object/place/adjective prototypes and its actions
of its verb's (MANIFEST.json `video_scenes` says which scene each video shows), so a model could
learn to match captions and videos. The tiny random model has learnt nothing, so the csv pairs
each video with the candidate caption that the model ranks it at the planted rank for, not with
its scene's caption.

Usage: python -m zoorepro.actbert.make_mini_data --out data/mini/actbert --seed 0 --n-videos 24 \
           --src work/src/actbert [--config zoorepro/actbert/configs/mini_msrvtt.yaml] \
           [--n-candidates 192 --top1-fraction 0.4 --min-margin 0.001]
"""
from __future__ import annotations

import argparse
import time
from zoorepro.cli import run_step

import hashlib
import itertools
import json
import pickle
import pickletools
from dataclasses import dataclass
from pathlib import Path

import lmdb
import numpy as np

from zoorepro.actbert.msrvtt import FEATURES_DIR, MAX_ACTIONS, VISION_FEATURE_DIM
from zoorepro.errors import ZooreproError
from zoorepro.fsutil import building_dir, write_tree_manifest

VOCAB_DIR = "bert-vocab"
VOCAB_FILE = "vocab.txt"
HOWTO_DIR = "howto100m"
TRAIN_DATA, VALID_DATA = "actbert_train_data.npy", "my_data.npy"
TRAIN_CAPTIONS, VALID_CAPTIONS = "caption_train.json", "caption_val.json"
MANIFEST = "MANIFEST.json"
MIN_VIDEOS = 12  # R@10 below 100 % needs more than 10 videos (plant.check_non_degenerate)

MAX_REGIONS = 36  # the loader's max_region_num and FeaturePadding's slots
MAX_CAPTION_PIECES = 34  # max_seq_length 36 minus [CLS] and [SEP]
V_TARGET_SIZE = 1601  # the backbone's v_target_size: region class targets
A_TARGET_SIZE = 700  # the backbone's a_target_size: action classes
FIRST_VIDEO = 7010  # MSR-VTT's test videos are video7010..video9999
IMAGE_SIZES = ((320, 240), (480, 360), (640, 480))  # (width, height)
NOISE_STD = 0.5  # against unit-variance word prototypes

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
ING = "##ing"
FUNCTION_WORDS = ("a", "is", "in", "the")
ADJECTIVES = ("young", "tall", "small", "happy", "red")
SUBJECTS = ("man", "woman", "girl", "boy", "chef", "dog", "cat", "player", "singer", "child")
VERBS = ("cook", "play", "sing", "talk", "walk", "drink", "read", "paint", "jump", "fish")  # + ##ing
OBJECTS = ("food", "guitar", "song", "ball", "water", "book", "picture", "car", "game", "news")
PLACES = ("kitchen", "stage", "room", "park", "street", "field", "studio", "beach")


@dataclass(frozen=True)
class Scene:
    """What a clip shows: the words of its caption. `adjective` may be empty."""

    adjective: str
    subject: str
    verb: str
    obj: str
    place: str

    def caption(self) -> str:
        """`a [adjective] subject is verb+ing object in the place`."""
        words = ["a", self.adjective, self.subject, "is", self.verb + "ing", self.obj, "in", "the", self.place]
        return " ".join(word for word in words if word)

    def visual_words(self) -> tuple[str, ...]:
        """The words a region can show."""
        return tuple(word for word in (self.adjective, self.subject, self.obj, self.place) if word)


def vocab() -> list[str]:
    """The WordPiece vocabulary: special tokens first ([PAD] = 0, the loader's padding id), then
    `##ing`, then every caption word, sorted."""
    words = sorted({*FUNCTION_WORDS, *ADJECTIVES, *SUBJECTS, *VERBS, *OBJECTS, *PLACES})
    return [*SPECIAL_TOKENS, ING, *words]


def pick_scenes(rng: np.random.Generator, n: int) -> list[Scene]:
    """`n` distinct scenes, so no two captions are the same. A caption is at most 10 wordpieces
    under vocab() (one per word, two for verb+ing), well within MAX_CAPTION_PIECES."""
    space = list(itertools.product(("", *ADJECTIVES), SUBJECTS, VERBS, OBJECTS, PLACES))
    if n > len(space):
        raise ZooreproError(f"at most {len(space)} distinct mini captions, asked for {n}")
    return [Scene(*space[i]) for i in rng.choice(len(space), size=n, replace=False)]


def prototypes(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A standard-normal 2048-d prototype per caption word (region and action features have the
    same width, so one table serves both)."""
    words = vocab()[len(SPECIAL_TOKENS) + 1:]
    return dict(zip(words, rng.standard_normal((len(words), VISION_FEATURE_DIM))))


def region_words(scene: Scene, n: int, rng: np.random.Generator) -> list[str]:
    """Which of the scene's visual words each of `n` regions shows."""
    return [str(word) for word in rng.choice(scene.visual_words(), size=n)]


def regions(words: list[str], protos: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """float32 [n,2048]: per region a noisy, non-negative (post-ReLU, like detector features) copy
    of its word's prototype."""
    clean = np.stack([protos[word] for word in words])
    return np.abs(clean + NOISE_STD * rng.standard_normal(clean.shape)).astype(np.float32)


def actions(scene: Scene, protos: dict[str, np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
    """float32 [n,2048]: noisy copies of the scene's verb prototype."""
    clean = np.tile(protos[scene.verb], (n, 1))
    return (clean + NOISE_STD * rng.standard_normal(clean.shape)).astype(np.float32)


def boxes(n: int, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """float32 [n,4] pixel boxes x1 y1 x2 y2 with 0 <= x1 < x2 <= width, 0 <= y1 < y2 <= height."""
    x1 = rng.uniform(0, width - 1, size=n)
    y1 = rng.uniform(0, height - 1, size=n)
    return np.stack([x1, y1, rng.uniform(x1 + 1, width), rng.uniform(y1 + 1, height)], axis=1).astype(np.float32)


# --------------------------------------------------------------------------------------------
# MSR-VTT: the caption csv and the lmdb of feature records


def numpy1_pickle(obj: object) -> bytes:
    """`obj` pickled as Python 3.7 with numpy 1 wrote it (pickle.dumps' default protocol 3): the
    opcodes numpy 2 writes, with numpy 1's module names (`numpy.core.*` for `numpy._core.*`).
    Protocol 3 has no frames and its memo counts objects, not bytes, so the GLOBAL opcodes can be
    rewritten in place."""
    payload = pickle.dumps(obj, protocol=3)
    out, copied = bytearray(), 0
    for opcode, arg, position in pickletools.genops(payload):
        if opcode.name == "GLOBAL" and arg.startswith("numpy._core."):
            module, name = arg.split(" ")
            out += payload[copied:position]
            out += pickle.GLOBAL + f"numpy.core.{module[len('numpy._core.'):]}\n{name}\n".encode()
            copied = position + len(pickle.GLOBAL) + len(module) + len(name) + 2
    return bytes(out + payload[copied:])


def video_record(video_id: str, scene: Scene, protos: dict[str, np.ndarray], rng: np.random.Generator) -> dict:
    """One lmdb value before pickling: the real record's keys, types and shapes."""
    width, height = IMAGE_SIZES[rng.integers(len(IMAGE_SIZES))]
    words = region_words(scene, int(rng.integers(5, MAX_REGIONS + 1)), rng)
    n_actions = int(rng.integers(1, MAX_ACTIONS + 1))
    return {"video_id": video_id, "image_h": height, "image_w": width,
            "features": regions(words, protos, rng),
            "boxes": boxes(len(words), width, height, rng),
            "action_features": actions(scene, protos, n_actions, rng)}


def write_lmdb(folder: Path, values: dict[str, bytes]) -> None:
    """An lmdb at `folder` holding `values` under their utf-8 keys: one write transaction in key
    order, no lock file, buffers zeroed (meminit), so the same values give the same data.mdb."""
    map_size = 2 * sum(len(key) + len(value) + 4096 for key, value in values.items()) + (1 << 20)
    env = lmdb.open(str(folder), map_size=map_size, lock=False, meminit=True)
    try:
        with env.begin(write=True) as txn:
            for key in sorted(values):
                txn.put(key.encode(), values[key])
    finally:
        env.close()


def video_ids(n: int) -> list[str]:
    """The mini test's video ids, in csv order."""
    return [f"video{FIRST_VIDEO + i}" for i in range(n)]


def write_features(folder: Path, scenes: list[Scene], protos: dict[str, np.ndarray],
                   rng: np.random.Generator) -> dict[str, str]:
    """The feature lmdb, one record per scene; returns the sha256 of each record's pickled value.
    (The caption csv comes later, from plant.py.)"""
    ids = video_ids(len(scenes))
    values = {vid: numpy1_pickle(video_record(vid, scene, protos, rng)) for vid, scene in zip(ids, scenes)}
    write_lmdb(folder / FEATURES_DIR, values)
    return {vid: sha256_bytes(value) for vid, value in sorted(values.items())}


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of `data`."""
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------------
# HowTo100M: ActBertDataset's feature array and RandomCap's caption lists


def region_targets(words: list[str], rng: np.random.Generator) -> np.ndarray:
    """float32 [n,1601]: per region a detector-like class distribution (softmax of noise with a
    peak at the class of the region's word), rows summing to 1."""
    n = len(words)
    logits = rng.standard_normal((n, V_TARGET_SIZE))
    logits[np.arange(n), [vocab().index(word) for word in words]] += 8.0
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)


def alternatives(scene: Scene, rng: np.random.Generator) -> list[Scene]:
    """Zero to two further descriptions of a clip: same subject and verb, other object and place."""
    return [Scene(scene.adjective, scene.subject, scene.verb, str(rng.choice(OBJECTS)), str(rng.choice(PLACES)))
            for _ in range(int(rng.integers(0, 3)))]


def clip_row(index: int, scene: Scene, protos: dict[str, np.ndarray], rng: np.random.Generator) -> tuple:
    """One clip as FeaturePadding unpacks it (11 fields, in its order); the caption joins the
    clip's descriptions with '!', as RandomCap splits them."""
    width, height = IMAGE_SIZES[rng.integers(len(IMAGE_SIZES))]
    words = region_words(scene, int(rng.integers(5, MAX_REGIONS + 1)), rng)
    n_actions = int(rng.integers(1, MAX_ACTIONS + 1))
    caption = "!".join(s.caption() for s in [scene, *alternatives(scene, rng)])
    action_targets = np.full(n_actions, VERBS.index(scene.verb) * (A_TARGET_SIZE // len(VERBS)), np.int64)
    return (regions(words, protos, rng), region_targets(words, rng), boxes(len(words), width, height, rng),
            len(words), height, width, f"mini{index:05d}", caption,
            actions(scene, protos, n_actions, rng), action_targets, n_actions)


def clip_array(rows: list[tuple]) -> np.ndarray:
    """object [n,11]: the rows as ActBertDataset iterates them (each row unpacks into 11 fields).
    Filled cell by cell: assigning a row at once would make numpy try to broadcast its arrays."""
    array = np.empty((len(rows), len(rows[0])), dtype=object)
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            array[i, j] = value
    return array


def write_howto100m(folder: Path, n_train: int, n_valid: int, protos: dict[str, np.ndarray],
                    rng: np.random.Generator) -> None:
    """actbert_train_data.npy + caption_train.json and my_data.npy + caption_val.json, clips of
    distinct scenes numbered across both splits."""
    folder.mkdir()
    scenes = pick_scenes(rng, n_train + n_valid)
    for name, captions_name, indices in ((TRAIN_DATA, TRAIN_CAPTIONS, range(n_train)),
                                         (VALID_DATA, VALID_CAPTIONS, range(n_train, n_train + n_valid))):
        rows = [clip_row(i, scenes[i], protos, rng) for i in indices]
        with (folder / name).open("wb") as stream:
            np.save(stream, clip_array(rows), allow_pickle=True)
        (folder / captions_name).write_text(json.dumps([row[7] for row in rows], indent=1) + "\n")


# --------------------------------------------------------------------------------------------
# the whole set


def write_manifest(folder: Path, params: dict, records: dict[str, str], scenes: dict[str, str],
                   planted: dict) -> dict:
    """MANIFEST.json: the generator's parameters, every file's sha256 (sorted by path, the
    planted claims among them), the sha256 of each lmdb record's value, what each video's
    features show (`video_scenes`: the scene's caption; the csv's caption is the planted one) and
    the planting's summary (planted ranks and metrics, the metrics a transposed matrix would
    give, the smallest margin)."""
    return write_tree_manifest(folder, MANIFEST, {"generator": "zoorepro.actbert.make_mini_data", "params": params,
                                                   "lmdb_records": records, "video_scenes": scenes,
                                                   "planted": planted})


@dataclass(frozen=True)
class Planting:
    """How the caption csv is planted (zoorepro/actbert/plant.py): the patched PaddleVideo
    sources, the mini test config, candidate captions, share of videos at rank 1, score margin."""

    src: Path = Path("work/src/actbert")
    config: Path = Path("zoorepro/actbert/configs/mini_msrvtt.yaml")
    n_candidates: int = 192
    top1_fraction: float = 0.4
    min_margin: float = 1e-3


def make_mini(out: Path, seed: int = 0, n_videos: int = 24, n_pretrain: int = 8,
              planting: Planting = Planting()) -> dict:
    """Generate the mini set into a temporary sibling of `out` and swap it into place; `n_pretrain`
    training clips and half as many (at least one) valid clips; the model, csv and planted claims
    by plant.py, in this process (it activates the patched PaddleVideo sources). Returns the manifest."""
    if n_videos < MIN_VIDEOS or n_pretrain < 1:
        raise ZooreproError(f"need n_videos >= {MIN_VIDEOS} and n_pretrain >= 1, got {n_videos} and {n_pretrain}")
    from zoorepro.actbert.plant import plant
    from zoorepro.actbert.sources import activate

    activate(planting.src)
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with building_dir(out) as tmp:
        rng = np.random.default_rng(seed)
        protos = prototypes(rng)
        (tmp / VOCAB_DIR).mkdir()
        (tmp / VOCAB_DIR / VOCAB_FILE).write_text("\n".join(vocab()) + "\n")
        scenes = pick_scenes(rng, n_videos)
        records = write_features(tmp, scenes, protos, rng)
        write_howto100m(tmp / HOWTO_DIR, n_pretrain, max(1, n_pretrain // 2), protos, rng)
        candidates = [scene.caption() for scene in pick_scenes(rng, planting.n_candidates)]
        planted = plant(tmp, planting.config, seed, video_ids(n_videos), candidates,
                        planting.top1_fraction, planting.min_margin)
        params = {"seed": seed, "n_videos": n_videos, "n_pretrain": n_pretrain,
                  "n_candidates": planting.n_candidates, "top1_fraction": planting.top1_fraction,
                  "min_margin": planting.min_margin}
        shown = {vid: scene.caption() for vid, scene in zip(video_ids(n_videos), scenes)}
        manifest = write_manifest(tmp, params, records, shown, planted)
    return manifest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/mini/actbert"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-videos", type=int, default=24, help="MSR-VTT test videos (one caption each)")
    parser.add_argument("--n-pretrain", type=int, default=8,
                        help="HowTo100M training clips (the valid set gets half as many, at least one)")
    defaults = Planting()
    parser.add_argument("--src", type=Path, default=defaults.src,
                        help="patched PaddleVideo sources (the actbert sources step)")
    parser.add_argument("--config", type=Path, default=defaults.config, help="the mini test config")
    parser.add_argument("--n-candidates", type=int, default=defaults.n_candidates,
                        help="candidate captions the csv's captions are chosen from")
    parser.add_argument("--top1-fraction", type=float, default=defaults.top1_fraction,
                        help="share of the videos planted at rank 1")
    parser.add_argument("--min-margin", type=float, default=defaults.min_margin,
                        help="smallest score gap between a true video and any other in its caption's row")
    args = parser.parse_args()
    start = time.perf_counter()
    planting = Planting(args.src, args.config, args.n_candidates, args.top1_fraction, args.min_margin)
    manifest = make_mini(args.out, args.seed, args.n_videos, args.n_pretrain, planting)
    print(json.dumps(manifest["planted"], indent=1))
    print(f"wrote {len(manifest['files'])} files to {args.out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    run_step(main)
