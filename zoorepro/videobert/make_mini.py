"""A deterministic mini open_cifar world for VideoBERT: the data set and a tiny CLIP-shaped model.

Why: the full scale downloads ByteMLPerf's cifar-100-python.tar (the CIFAR-100 pickles plus a
`text.npy` of 100 tokenized prompts) and a ~600 MB `video-bert.onnx`, a CLIP with inputs
image [B,3,224,224] and text [100,77] and outputs logits_per_image, logits_per_text. The mini scale
writes the same files in the same formats, so the loader, the export and the inference steps run
unchanged, offline, in seconds:

* `cifar-100-python/test` and `meta`: pickles in the real files' own format, i.e. what Python 2's
  cPickle wrote with protocol 2 (Python 2 strings, which load as str with encoding="latin1" and as
  bytes with encoding="bytes"; the uint8 array through `numpy.core.multiarray._reconstruct`), so
  the restricted unpickler meets what it will meet in the real tarball;
* `cifar-100-python/text.npy`: int64 [100,77] CLIP-style token ids per class: a start token, a
  shared prompt, two class ids, an end token (the largest id, as in CLIP), zero padding;
* the images are drawn from 100 "looks" (a per-look colour pair and stripe pattern, plus noise);
* `open_videobert/mini-clip/`: a tiny `transformers.CLIPModel` (224 px images, 77-token context)
  with seeded random weights, saved with save_pretrained (config.json, model.safetensors);
* planted labels: the `fine_labels` are not the looks but the ground truth planted from the model
  itself (below), with `coarse_labels` and file names following them;
* `planted_claims.yaml`: the Top-1 the chain must reproduce (zoorepro/planted.py);
* `MANIFEST.json`: the sha256 of every file above.

Planted outcomes. A random-weight model scores chance (1 %), so a chain with a bug would score
the same. The generator therefore runs the torch CLIPModel (the exporter's source) eagerly on
every image, preprocessed by this module's own CLIP preprocessing (PIL bicubic resize to 224, RGB
order, CLIP's mean/std written here, independently of cifar.py, so a bug in the pipeline's
transform is not shared), and the 100 prompts. Then a chosen fraction of the images (params
`videobert.mini.planted_top1`) is labelled with its eager argmax class and the rest with a class
from the lower half of its own ranking; Top-1 in percent is computed from these logits by numpy.
Margins, so that fp16 engines and ONNX float noise decide as the eager model does: a "right"
image is drawn only among images whose top-1 logit leads the runner-up by at least
`videobert.mini.planted_margin`, and a "wrong" label is a class scoring below the image's median
class, i.e. far from the top. The random model is shaped for this (INIT_FACTOR: larger initial
weights make the image embeddings depend more on the image, so the argmax spreads over more
classes and the top-1 leads by more).

The same seed gives the same bytes on every run.

Usage: python -m zoorepro.videobert.make_mini --out data/mini/videobert --seed 0 --n-images 200
           --planted-top1 0.585 --planted-margin 0.1
"""
from __future__ import annotations

import argparse
import time
from zoorepro.cli import hub_offline, run_step

import io
import pickle
import struct
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from zoorepro.errors import ZooreproError
from zoorepro.fsutil import building_dir, write_tree_manifest
from zoorepro.planted import PlantedMetric, write_planted_claims
from zoorepro.videobert.cifar import CIFAR_DIR, META_FILE, N_CLASSES, PLANAR_SHAPE, TEST_FILE, TEXT_FILE

if TYPE_CHECKING:
    from transformers import CLIPConfig, CLIPModel

MODEL_DIR = "open_videobert/mini-clip"
MANIFEST = "MANIFEST.json"
N_COARSE = 20
CONTEXT_LENGTH = 77
# Text vocabulary of the mini model: 0 pads, the two largest ids start and end a prompt (CLIP's
# end token is its largest id, so pooling at the end token and at the argmax id agree).
TEXT_VOCAB = 256
START_TOKEN = TEXT_VOCAB - 2
END_TOKEN = TEXT_VOCAB - 1
PROMPT_LENGTH = 4  # the shared "a photo of a" part
HIDDEN = 32
LAYERS = 2
HEADS = 2
IMAGE_SIZE = 224
PATCH_SIZE = 32
NOISE_STD = 12.0
# Shaping of the random model: transformers' initializer_factor (1.0 by default). At 2.0 the eager
# argmax of the 200-image mini set spreads over ~15 classes instead of 4, and two thirds of the
# images have a top-1 lead of 0.1 logits or more (the largest fp16-vs-fp32 logit difference of
# this model in torch is ~0.02).
INIT_FACTOR = 2.0
# CLIP's preprocessing constants, written here from CLIP's release (not imported from cifar.py,
# so that the planted outcome and the pipeline do not share a mistake).
CLIP_INPUT = 224
CLIP_PIXEL_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], np.float32)
CLIP_PIXEL_STD = np.array([0.26862954, 0.26130258, 0.27577711], np.float32)
TOP1_METRIC = "top1"  # pipeline.CLAIM_METRICS; percent, as claims/claims.yaml states Top-1


# --------------------------------------------------------------------------------------------
# the CIFAR "python" pickle format


def py2_pickle(obj: object) -> bytes:
    """`obj` pickled as Python 2's cPickle wrote the CIFAR files (protocol 2). Python 3's pickler
    cannot write Python 2 strings, so the opcodes are written here; supported: dict, list, tuple,
    int, bool, None, bytes (written as Python 2 str) and uint8 numpy arrays."""
    out = io.BytesIO()
    out.write(pickle.PROTO + b"\x02")
    _write(out, obj)
    out.write(pickle.STOP)
    return out.getvalue()


def _write(out: io.BytesIO, obj: object) -> None:
    """Append the opcodes that build `obj`."""
    if obj is None:
        out.write(pickle.NONE)
    elif isinstance(obj, bool):
        out.write(pickle.NEWTRUE if obj else pickle.NEWFALSE)
    elif isinstance(obj, int):
        _write_int(out, obj)
    elif isinstance(obj, bytes):
        _write_py2_str(out, obj)
    elif isinstance(obj, tuple):
        out.write(pickle.MARK)
        for item in obj:
            _write(out, item)
        out.write(pickle.TUPLE)
    elif isinstance(obj, list):
        out.write(pickle.EMPTY_LIST + pickle.MARK)
        for item in obj:
            _write(out, item)
        out.write(pickle.APPENDS)
    elif isinstance(obj, dict):
        out.write(pickle.EMPTY_DICT + pickle.MARK)
        for key, value in obj.items():
            _write(out, key)
            _write(out, value)
        out.write(pickle.SETITEMS)
    elif isinstance(obj, np.ndarray) and obj.dtype == np.uint8:
        _write_uint8_array(out, obj)
    else:
        raise ZooreproError(f"py2_pickle cannot write {type(obj).__name__}")


def _write_int(out: io.BytesIO, value: int) -> None:
    """The smallest of BININT1, BININT2 and BININT (signed 32-bit) that holds `value`."""
    if 0 <= value < 1 << 8:
        out.write(pickle.BININT1 + bytes([value]))
    elif 0 <= value < 1 << 16:
        out.write(pickle.BININT2 + struct.pack("<H", value))
    else:
        out.write(pickle.BININT + struct.pack("<i", value))


def _write_py2_str(out: io.BytesIO, value: bytes) -> None:
    """A Python 2 str: SHORT_BINSTRING below 256 bytes, else BINSTRING."""
    if len(value) < 256:
        out.write(pickle.SHORT_BINSTRING + bytes([len(value)]) + value)
    else:
        out.write(pickle.BINSTRING + struct.pack("<i", len(value)) + value)


def _write_uint8_array(out: io.BytesIO, array: np.ndarray) -> None:
    """A numpy 1 array pickle: _reconstruct(ndarray, (0,), 'b'), then __setstate__((1, shape,
    dtype, False, raw bytes)), the dtype being dtype('u1', 0, 1) with __setstate__((3, '|', None,
    None, None, -1, -1, 0))."""
    out.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
    out.write(pickle.GLOBAL + b"numpy\nndarray\n")
    _write(out, (0,))
    _write(out, b"b")
    out.write(pickle.TUPLE3 + pickle.REDUCE)
    out.write(pickle.MARK)
    _write(out, 1)
    _write(out, tuple(int(n) for n in array.shape))
    out.write(pickle.GLOBAL + b"numpy\ndtype\n")
    _write(out, (b"u1", 0, 1))
    out.write(pickle.REDUCE)
    _write(out, (3, b"|", None, None, None, -1, -1, 0))
    out.write(pickle.BUILD)
    _write(out, False)
    _write(out, np.ascontiguousarray(array).tobytes())
    out.write(pickle.TUPLE + pickle.BUILD)


# --------------------------------------------------------------------------------------------
# the data set


def class_names() -> tuple[list[bytes], list[bytes]]:
    """Fine and coarse label names (placeholders: the mini classes are colour patterns)."""
    return ([f"mini_class_{k:02d}".encode() for k in range(N_CLASSES)],
            [f"mini_superclass_{k:02d}".encode() for k in range(N_COARSE)])


def class_looks(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per class: two RGB colours [N_CLASSES,2,3] and a stripe pattern (stripes 1..8 pixels wide,
    horizontal, vertical or diagonal) as a boolean mask [N_CLASSES,32,32]."""
    colours = rng.integers(0, 256, size=(N_CLASSES, 2, 3))
    rows, cols = np.mgrid[:PLANAR_SHAPE[1], :PLANAR_SHAPE[2]]
    masks = [((rows, cols, rows + cols)[(k // 8) % 3] // (1 + k % 8)) % 2 == 0 for k in range(N_CLASSES)]
    return colours, np.stack(masks)


def draw_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """HWC uint8 images [N,32,32,3]: each pixel takes one of its class's two colours by the class
    pattern, plus Gaussian noise."""
    colours, masks = class_looks(rng)
    clean = np.where(masks[labels][..., None], colours[labels, 0][:, None, None, :],
                     colours[labels, 1][:, None, None, :])
    noise = rng.normal(0.0, NOISE_STD, size=clean.shape)
    return np.clip(np.rint(clean + noise), 0, 255).astype(np.uint8)


def cifar_test_dict(images: np.ndarray, labels: np.ndarray, fine_names: list[bytes]) -> dict:
    """The `test` pickle's dict, keys in the real file's order; `data` rows are planar RGB."""
    data = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    return {b"filenames": [b"%s_s_%06d.png" % (fine_names[label], i) for i, label in enumerate(labels)],
            b"batch_label": b"testing batch 1 of 1",
            b"fine_labels": [int(label) for label in labels],
            b"coarse_labels": [int(label) * N_COARSE // N_CLASSES for label in labels],
            b"data": data}


def prompt_tokens(rng: np.random.Generator) -> np.ndarray:
    """int64 [N_CLASSES, CONTEXT_LENGTH]: start, a shared prompt, two ids naming the class (a
    distinct pair per class), end, zero padding; every id below TEXT_VOCAB."""
    prompt = rng.integers(1, START_TOKEN, size=PROMPT_LENGTH)
    pairs = rng.permutation((START_TOKEN - 1) ** 2)[:N_CLASSES]
    text = np.zeros((N_CLASSES, CONTEXT_LENGTH), np.int64)
    for k, pair in enumerate(pairs):
        ids = [START_TOKEN, *prompt, 1 + pair // (START_TOKEN - 1), 1 + pair % (START_TOKEN - 1), END_TOKEN]
        text[k, :len(ids)] = ids
    return text


# --------------------------------------------------------------------------------------------
# the model


def mini_clip_config() -> CLIPConfig:
    """A tiny CLIPConfig with the real model's interface: 224 px images in 32 px patches, a
    77-token context, pooling at END_TOKEN."""
    from transformers import CLIPConfig

    text = {"vocab_size": TEXT_VOCAB, "hidden_size": HIDDEN, "intermediate_size": 2 * HIDDEN,
            "num_hidden_layers": LAYERS, "num_attention_heads": HEADS, "max_position_embeddings": CONTEXT_LENGTH,
            "pad_token_id": 0, "bos_token_id": START_TOKEN, "eos_token_id": END_TOKEN, "projection_dim": HIDDEN}
    vision = {"image_size": IMAGE_SIZE, "patch_size": PATCH_SIZE, "hidden_size": HIDDEN,
              "intermediate_size": 2 * HIDDEN, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
              "projection_dim": HIDDEN}
    text["initializer_factor"] = vision["initializer_factor"] = INIT_FACTOR
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=HIDDEN, initializer_factor=INIT_FACTOR)


def save_mini_model(folder: Path, seed: int) -> CLIPModel:
    """A seeded random-weight CLIPModel saved with save_pretrained (safetensors); returned in
    eval mode for the planting run."""
    import torch
    from transformers import CLIPModel

    torch.manual_seed(seed)
    model = CLIPModel(mini_clip_config()).eval()
    model.save_pretrained(str(folder))
    return model


# --------------------------------------------------------------------------------------------
# planted outcomes


def clip_pixels(images: np.ndarray) -> np.ndarray:
    """CLIP's preprocessing of HWC uint8 RGB images (such an array is an RGB PIL image), float32
    [N,3,224,224]: bicubic resize of the (square) image to 224 by PIL (the centre crop then keeps
    everything), [0,1] scaling, per-channel mean/std in RGB order."""
    from PIL import Image

    out = np.empty((len(images), 3, CLIP_INPUT, CLIP_INPUT), np.float32)
    for i, image in enumerate(images):
        resized = Image.fromarray(image).resize((CLIP_INPUT, CLIP_INPUT), Image.Resampling.BICUBIC)
        scaled = np.asarray(resized, np.float32) / np.float32(255)
        out[i] = ((scaled - CLIP_PIXEL_MEAN) / CLIP_PIXEL_STD).transpose(2, 0, 1)
    return out


def eager_logits(model: CLIPModel, images: np.ndarray, text: np.ndarray, batch: int = 50) -> np.ndarray:
    """logits_per_image [N, N_CLASSES] of the torch model itself (no ONNX), in batches."""
    import torch

    rows = []
    with torch.no_grad():
        for start in range(0, len(images), batch):
            pixels = torch.from_numpy(clip_pixels(images[start:start + batch]))
            rows.append(model(input_ids=torch.from_numpy(text), pixel_values=pixels).logits_per_image.numpy())
    return np.concatenate(rows).astype(np.float32)


def top1_gap(logits: np.ndarray) -> np.ndarray:
    """Per image, how far its top-1 logit leads the runner-up."""
    ordered = np.sort(logits, axis=1)
    return ordered[:, -1] - ordered[:, -2]


def plant_labels(logits: np.ndarray, fraction: float, margin: float,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Labels that make round(fraction * N) images right: those are drawn among the images whose
    argmax leads by >= margin and labelled with it; every other image gets a class from the lower
    half of its own ranking (far below its top, so no float noise makes it right). Returns the
    labels and the mask of images planted right."""
    n = len(logits)
    n_right = int(round(fraction * n))
    clear = np.flatnonzero(top1_gap(logits) >= margin)
    if n_right > len(clear):
        raise ZooreproError(f"only {len(clear)} of {n} images lead by >= {margin} logits, {n_right} needed for a "
                            f"planted Top-1 of {fraction}: lower planted_top1 or planted_margin, or add images")
    right = np.zeros(n, bool)
    right[rng.choice(clear, size=n_right, replace=False)] = True
    ranking = np.argsort(-logits, axis=1, kind="stable")
    low_half = ranking[:, N_CLASSES // 2:]
    labels = np.where(right, ranking[:, 0], low_half[np.arange(n), rng.integers(0, low_half.shape[1], size=n)])
    return labels.astype(np.int64), right


def numpy_top1_percent(logits: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 in percent, by plain numpy: the share of images whose argmax is their label."""
    return float(100.0 * np.mean(np.argmax(logits, axis=1) == labels))


def check_planted(logits: np.ndarray, labels: np.ndarray, right: np.ndarray, margin: float) -> float:
    """The planted Top-1, after checking what the margins promise: every right image leads by at
    least `margin` and every wrong label scores at least `margin` below its image's top."""
    rows = np.arange(len(labels))
    if not (top1_gap(logits)[right] >= margin).all():
        raise ZooreproError("a planted right image leads by less than the margin")
    if not (logits.max(axis=1) - logits[rows, labels] >= margin)[~right].all():
        raise ZooreproError("a planted wrong label is within the margin of its image's top class")
    value = numpy_top1_percent(logits, labels)
    if abs(value - 100.0 * right.mean()) > 1e-9:
        raise ZooreproError(f"planted Top-1 {value} is not the planted share {100.0 * right.mean()}")
    return value


# --------------------------------------------------------------------------------------------
# the whole set


def write_manifest(folder: Path, params: dict) -> dict:
    """MANIFEST.json: the generator's parameters and every file's sha256 (sorted by path)."""
    return write_tree_manifest(folder, MANIFEST, {"generator": "zoorepro.videobert.make_mini", "params": params})


def draw_dataset(seed: int, n_images: int) -> tuple[np.ndarray, np.ndarray]:
    """HWC uint8 images and the prompts: the looks cycle through the 100 patterns in a seeded
    order, so every look appears when n_images >= 100."""
    rng = np.random.default_rng(seed)
    looks = rng.permutation(np.arange(n_images) % N_CLASSES)
    images = draw_images(looks, rng)
    return images, prompt_tokens(rng)


def write_dataset(folder: Path, images: np.ndarray, labels: np.ndarray, text: np.ndarray) -> None:
    """cifar-100-python/{test,meta,text.npy} in `folder`."""
    fine_names, coarse_names = class_names()
    cifar = folder / CIFAR_DIR
    cifar.mkdir(parents=True)
    (cifar / TEST_FILE).write_bytes(py2_pickle(cifar_test_dict(images, labels, fine_names)))
    (cifar / META_FILE).write_bytes(py2_pickle({b"fine_label_names": fine_names,
                                                b"coarse_label_names": coarse_names}))
    with (cifar / TEXT_FILE).open("wb") as stream:
        np.save(stream, text)


def write_planted(folder: Path, top1_percent: float, n_images: int, margin: float, min_gap: float) -> None:
    """planted_claims.yaml: the Top-1 (percent) of the chain, at no particular batch size (the
    accuracy of every image does not depend on it)."""
    method = ("argmax of the eager torch CLIPModel's logits_per_image on the generator's own CLIP "
              "preprocessing, compared with the planted labels in numpy")
    note = (f"planted outcomes over {n_images} images; right images lead their runner-up by >= {min_gap:.4f} "
            f"logits (required {margin}), wrong labels score below their image's median class")
    write_planted_claims(folder, "videobert", "zoorepro.videobert.make_mini", "mini open_cifar (generated)",
                         method, [PlantedMetric(TOP1_METRIC, top1_percent, "percent")], note)


def make_mini(out: Path, seed: int = 0, n_images: int = 200, planted_top1: float = 0.585,
              planted_margin: float = 0.1) -> dict:
    """Generate the mini set into a temporary sibling of `out` and swap it into place.
    Returns the manifest."""
    if n_images < 1:
        raise ZooreproError(f"need at least one image, got n_images={n_images}")
    if not 0 < planted_top1 < 1 or planted_margin <= 0:
        raise ZooreproError(f"planted_top1 must lie in (0, 1) and planted_margin be positive, got "
                            f"{planted_top1} and {planted_margin}")
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with building_dir(out) as tmp:
        images, text = draw_dataset(seed, n_images)
        model = save_mini_model(tmp / MODEL_DIR, seed)
        logits = eager_logits(model, images, text)
        labels, right = plant_labels(logits, planted_top1, planted_margin, np.random.default_rng([seed, 1]))
        value = check_planted(logits, labels, right, planted_margin)
        write_dataset(tmp, images, labels, text)
        write_planted(tmp, value, n_images, planted_margin, float(top1_gap(logits)[right].min()))
        manifest = write_manifest(tmp, {"seed": seed, "n_images": n_images, "planted_top1": planted_top1,
                                        "planted_margin": planted_margin})
    return manifest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/mini/videobert"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-images", type=int, default=200)
    parser.add_argument("--planted-top1", type=float, default=0.585,
                        help="share of the images labelled with the eager model's argmax (the planted Top-1)")
    parser.add_argument("--planted-margin", type=float, default=0.1,
                        help="least lead, in logits, of a right image's top-1 over its runner-up")
    args = parser.parse_args()
    hub_offline()
    start = time.perf_counter()
    manifest = make_mini(args.out, args.seed, args.n_images, args.planted_top1, args.planted_margin)
    print(f"wrote {len(manifest['files'])} files to {args.out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    run_step(main)
