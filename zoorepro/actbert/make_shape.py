"""Shape scale: the released ActBERT at its real sizes with random weights, and MSR-VTT test inputs
of the real shapes and dtypes, so that the document's test step runs exactly as at full scale.

Throughput does not depend on weight or feature values. This writes, in the formats the full
scale downloads (zoorepro/actbert/make_mini_data.py describes them), nothing downloaded:

* `ActBERT-shape.pdparams`: PaddleVideo's ActBert around BertForMultiModalPreTraining built from
  the document's test config (configs/actbert_msrvtt.yaml: the backbone's defaults, the released
  model's sizes: 12 text layers of 768, 2 visual layers of 1024, 3 action layers of 768, 2
  connection layers of 1024, vocabulary 30522, 2048-d region and action features), with
  PaddleVideo's own random init (normal, std 0.02) after paddle.seed(seed), saved by paddle.save
  as `main.py --test -w` loads it (about 0.9 GB: 206 M float32 parameters, the word embeddings
  twice, as the masked-LM decoder's tied weight);
* `MSRVTT_JSFUSION_test.csv`: `n_videos` lines `video<N>,caption` (the JSFusion 1k-A split has
  1000), captions of 6 to 20 random words of the vocabulary (the loader pads every caption to its
  36 tokens, so the length changes no shape);
* `msrvtt_test.lmdb`: one pickled feature record per video, at the loader's maximum: 35 regions
  (36 slots with the global feature it prepends) of 2048 float32 with pixel boxes, and 5 action
  rows of 2048 float32;
* `bert-vocab/vocab.txt`: a WordPiece vocabulary of bert-base-uncased's size and layout ([PAD] 0,
  [unused0..98], [UNK] 100, [CLS] 101, [SEP] 102, [MASK] 103), made-up words after them;
* `MANIFEST.json`: the generator's parameters and every file's sha256.

Usage: python -m zoorepro.actbert.make_shape --out data/shape/actbert --src work/src/actbert \
           [--config zoorepro/actbert/configs/actbert_msrvtt.yaml --seed 0 --n-videos 1000]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from zoorepro.cli import run_step

WEIGHTS_FILE = "ActBERT-shape.pdparams"
MANIFEST = "MANIFEST.json"
VOCAB_SIZE = 30522  # bert-base-uncased's, the backbone's vocab_size
N_UNUSED = 99  # bert-base-uncased's [unused0] .. [unused98] between [PAD] and [UNK]
SHAPE_REGIONS = 35  # + the loader's global feature = its max_region_num of 36
CAPTION_WORDS = (6, 20)  # words of a caption (one wordpiece each), inclusive


def shape_vocab() -> list[str]:
    """bert-base-uncased's layout of special tokens, then made-up lower-case words up to VOCAB_SIZE."""
    head = ["[PAD]", *(f"[unused{i}]" for i in range(N_UNUSED)), "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    return head + [f"w{i:05d}" for i in range(VOCAB_SIZE - len(head))]


def shape_captions(rng: np.random.Generator, n: int, words: list[str]) -> list[str]:
    """`n` captions of CAPTION_WORDS[0]..CAPTION_WORDS[1] words drawn from `words`."""
    low, high = CAPTION_WORDS
    return [" ".join(rng.choice(words, size=int(rng.integers(low, high + 1)))) for _ in range(n)]


def shape_record(video_id: str, rng: np.random.Generator) -> dict:
    """One feature record at the loader's maximum sizes (make_mini_data.video_record's keys and dtypes)."""
    from zoorepro.actbert.make_mini_data import IMAGE_SIZES, boxes
    from zoorepro.actbert.msrvtt import ACTION_FEATURE_DIM, MAX_ACTIONS, VISION_FEATURE_DIM

    width, height = IMAGE_SIZES[rng.integers(len(IMAGE_SIZES))]
    return {"video_id": video_id, "image_h": height, "image_w": width,
            "features": np.abs(rng.standard_normal((SHAPE_REGIONS, VISION_FEATURE_DIM), np.float32)),
            "boxes": boxes(SHAPE_REGIONS, width, height, rng),
            "action_features": rng.standard_normal((MAX_ACTIONS, ACTION_FEATURE_DIM), np.float32)}


def make_shape(out: Path, src: Path, config: Path, seed: int = 0, n_videos: int = 1000) -> dict:
    """Write the shape set into a temporary sibling of `out` and swap it into place. Returns the manifest."""
    from zoorepro.actbert.make_mini_data import VOCAB_DIR, VOCAB_FILE, numpy1_pickle, video_ids, write_lmdb
    from zoorepro.actbert.make_mini_model import build_model, save_atomic
    from zoorepro.actbert.msrvtt import CAPTIONS_FILE, FEATURES_DIR
    from zoorepro.actbert.sources import activate
    from zoorepro.errors import ZooreproError
    from zoorepro.fsutil import building_dir, write_tree_manifest

    if n_videos < 1:
        raise ZooreproError(f"need at least one video, got {n_videos}")
    activate(src)
    rng = np.random.default_rng(seed)
    with building_dir(Path(out).resolve()) as tmp:
        model = build_model(config, seed)
        state = model.state_dict()
        save_atomic(state, tmp / WEIGHTS_FILE)
        n_params = sum(int(p.size) for p in model.parameters())  # the LM decoder shares the word embeddings
        n_saved = sum(int(value.size) for value in state.values())  # ... which the state dict holds twice
        del model, state
        vocab = shape_vocab()
        (tmp / VOCAB_DIR).mkdir()
        (tmp / VOCAB_DIR / VOCAB_FILE).write_text("\n".join(vocab) + "\n")
        ids = video_ids(n_videos)
        captions = shape_captions(rng, n_videos, vocab[N_UNUSED + 5:])
        (tmp / CAPTIONS_FILE).write_text("".join(f"{vid},{caption}\n" for vid, caption in zip(ids, captions)))
        write_lmdb(tmp / FEATURES_DIR, {vid: numpy1_pickle(shape_record(vid, rng)) for vid in ids})
        params = {"seed": seed, "n_videos": n_videos, "config": str(config), "parameters": n_params,
                  "saved_values": n_saved,
                  "regions": SHAPE_REGIONS + 1, "vocab_size": len(vocab)}
        return write_tree_manifest(tmp, MANIFEST, {"generator": "zoorepro.actbert.make_shape", "params": params})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--src", type=Path, default=Path("work/src/actbert"),
                        help="patched PaddleVideo sources (the actbert sources step)")
    parser.add_argument("--config", type=Path, default=Path("zoorepro/actbert/configs/actbert_msrvtt.yaml"),
                        help="the document's test config (its MODEL is the released model's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-videos", type=int, default=1000, help="test videos, one caption each (1k-A: 1000)")
    args = parser.parse_args()
    start = time.perf_counter()
    manifest = make_shape(args.out, args.src, args.config, args.seed, args.n_videos)
    print(f"wrote {len(manifest['files'])} files to {args.out} ({manifest['params']['parameters']} parameters) "
          f"in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    run_step(main)
