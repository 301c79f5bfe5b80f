"""The document's postprocess.py metrics, in numpy, with allennlp's formulas exactly.

postprocess.py loads the whole allennlp model only to call its two metric objects on each ais_bench
output: `F1MultiLabelMeasure(average="micro")` (allennlp @80fb606,
training/metrics/fbeta_multi_label_measure.py + fbeta_measure.py) and `VqaMeasure`
(allennlp-models @b1f3722, vision/metrics/vqa.py), fed as in `VqaVilbert._compute_loss_and_metrics`.
Reimplementing them here keeps the metric independent of an allennlp that does not import on this
stack, and makes every formula visible:

* weighted labels: `w[b, labels[b, j]] = label_weights[b, j]` where `labels[b, j] > 1` (0 is
  padding, 1 is OOV: both ignored), 0 elsewhere;
* F1 (micro, threshold 0.5 applied to the *logits*, not to sigmoid probabilities): columns 0 and 1
  are masked out; a row whose logits sum to exactly 0 predicts nothing (allennlp's pred_mask); gold
  is `w != 0`. TP = gold & (logit >= 0.5) & column mask & pred_mask, predicted = (logit >= 0.5) &
  column mask & pred_mask, true = gold & column mask, each summed over all rows and classes and
  accumulated over batches. P = TP/predicted, R = TP/true (0 on a zero denominator), F = 2PR/(P+R),
  F = 0 where TP == 0. As in allennlp the counts are float32 tensors and P, R, F are computed in
  float32 (the counts are integers, exact below 2**24);
* VQA score: argmax over *all* columns (padding and OOV included), the label weights of the labels
  equal to it summed per batch (float32, as allennlp sums them) and accumulated in Python floats,
  divided by the number of rows: min(1, #humans/3) averaged, not the official 10-choose-9 average.
"""
from __future__ import annotations

import re
import tarfile
from pathlib import Path

import numpy as np

from ..errors import ZooreproError
from ..measurements import Measurement
from ..readers import load_npy

THRESHOLD = 0.5
IGNORED_COLUMNS = (0, 1)  # @@PADDING@@ and @@UNKNOWN@@ of the "answers" namespace
PADDING_TOKEN = "@@PADDING@@"
OOV_TOKEN = "@@UNKNOWN@@"
ANSWERS_FILE = "vocabulary/answers.txt"
NON_PADDED_FILE = "vocabulary/non_padded_namespaces.txt"


def weighted_labels(labels: np.ndarray, label_weights: np.ndarray, n_classes: int) -> np.ndarray:
    """[B, k] answer indices and [B, k] weights -> [B, n_classes] float32 target: the weight at each
    in-vocab answer's column (label > 1), 0 elsewhere. A repeated label keeps its last weight."""
    labels = np.asarray(labels)
    label_weights = np.asarray(label_weights, dtype=np.float32)
    if labels.shape != label_weights.shape or labels.ndim != 2:
        raise ZooreproError(f"labels {labels.shape} and label_weights {label_weights.shape} must both be [B, k]")
    if labels.size and labels.max() >= n_classes:
        raise ZooreproError(f"label index {labels.max()} is outside the {n_classes} answer classes")
    target = np.zeros((labels.shape[0], n_classes), dtype=np.float32)
    rows, cols = np.nonzero(labels > 1)
    target[rows, labels[rows, cols]] = label_weights[rows, cols]
    return target


def _safe_divide(numerator: np.float32, denominator: np.float32) -> np.float32:
    """allennlp's nan_safe_tensor_divide: 0 where the denominator is 0."""
    return numerator / denominator if denominator != 0 else np.float32(0.0)


class F1MultiLabelMicro:
    """allennlp's F1MultiLabelMeasure(average="micro", threshold=0.5) as VqaVilbert calls it,
    with the label mask of columns 0 and 1; `update` once per batch, `result` at the end."""

    def __init__(self) -> None:
        self.true_positives = 0
        self.predicted = 0
        self.true = 0

    def update(self, logits: np.ndarray, gold: np.ndarray) -> None:
        """Count one batch: logits [B, C] and weighted labels [B, C] (nonzero = gold)."""
        logits = np.asarray(logits, dtype=np.float32)
        if logits.shape != gold.shape or logits.ndim != 2:
            raise ZooreproError(f"logits {logits.shape} and weighted labels {gold.shape} must both be [B, C]")
        column_mask = np.ones(logits.shape[1], dtype=bool)
        column_mask[list(IGNORED_COLUMNS)] = False
        pred_mask = (logits.sum(axis=-1) != 0)[:, None]
        predicted = (logits >= THRESHOLD) & column_mask & pred_mask
        is_gold = (gold != 0) & column_mask
        self.true_positives += int(np.count_nonzero(is_gold & predicted))
        self.predicted += int(np.count_nonzero(predicted))
        self.true += int(np.count_nonzero(is_gold))

    def result(self) -> dict[str, float]:
        tp, pred, true = np.float32(self.true_positives), np.float32(self.predicted), np.float32(self.true)
        precision = _safe_divide(tp, pred)
        recall = _safe_divide(tp, true)
        if self.true_positives == 0:
            fscore = np.float32(0.0)
        else:
            fscore = (np.float32(2.0) * precision * recall) / (np.float32(1.0) * precision + recall)
        return {"precision": float(precision), "recall": float(recall), "fscore": float(fscore)}


class VqaScore:
    """allennlp-models' VqaMeasure: the label weight of the argmax answer, averaged over rows."""

    def __init__(self) -> None:
        self.sum_of_scores = 0.0
        self.count = 0

    def update(self, logits: np.ndarray, labels: np.ndarray, label_weights: np.ndarray) -> None:
        """Score one batch: logits [B, C], labels [B, k], label_weights [B, k]."""
        predictions = np.asarray(logits).argmax(axis=1)
        hits = np.asarray(labels) == predictions[:, None]
        self.sum_of_scores += float((np.asarray(label_weights, dtype=np.float32) * hits).sum(dtype=np.float32))
        self.count += len(predictions)

    def result(self) -> float:
        return self.sum_of_scores / self.count if self.count > 0 else 0.0


def _load_logits(result_dir: Path, index: int, n_classes: int | None) -> np.ndarray:
    """`{i}_0.npy` (ais_bench's output 0 = logits), else `{i}_0.bin` as raw float32, as the
    document's postprocess falls back; [rows, n_classes] float32."""
    npy, raw = result_dir / f"{index}_0.npy", result_dir / f"{index}_0.bin"
    if npy.is_file():
        logits = load_npy(npy)
    elif raw.is_file():
        if n_classes is None:
            raise ZooreproError(f"{raw}: the number of answer classes is needed to read a .bin output")
        logits = np.fromfile(raw, dtype=np.float32)
    else:
        raise ZooreproError(f"no model output for sample {index}: neither {npy} nor {raw} exists")
    width = n_classes if n_classes is not None else (logits.shape[-1] if logits.ndim else 0)
    if width == 0 or logits.size == 0 or logits.size % width or (logits.ndim > 1 and logits.shape[-1] != width):
        raise ZooreproError(
            f"output of sample {index} has shape {logits.shape}; expected logits of [rows, {width}] answer classes"
        )
    return logits.reshape(-1, width).astype(np.float32, copy=False)


def _load_sample(directory: Path, index: int) -> np.ndarray:
    path = directory / f"{index}.npy"
    if not path.is_file():
        raise ZooreproError(f"missing {path}: {directory} must hold 0.npy .. N-1.npy")
    return load_npy(path)


def evaluate(result_dir: Path, label_dir: Path, label_weight_dir: Path, n_classes: int | None) -> dict:
    """The document's postprocess over samples 0..N-1, N = number of .npy files in label_dir.

    `n_classes` None takes the width of each logits file (a .bin output then cannot be read).
    Returns {"precision", "recall", "fscore", "vqa_score", "n"}."""
    result_dir, label_dir, label_weight_dir = Path(result_dir), Path(label_dir), Path(label_weight_dir)
    n = sum(1 for p in label_dir.iterdir() if p.suffix == ".npy") if label_dir.is_dir() else 0
    if n == 0:
        raise ZooreproError(f"no label files (*.npy) in {label_dir}")
    f1, vqa = F1MultiLabelMicro(), VqaScore()
    for i in range(n):
        logits = _load_logits(result_dir, i, n_classes)
        labels, weights = _load_sample(label_dir, i), _load_sample(label_weight_dir, i)
        if labels.shape[0] != logits.shape[0]:
            raise ZooreproError(f"sample {i}: {logits.shape[0]} logits rows but {labels.shape[0]} label rows")
        f1.update(logits, weighted_labels(labels, weights, logits.shape[1]))
        vqa.update(logits, labels, weights)
    return {**f1.result(), "vqa_score": vqa.result(), "n": n}


def _member_text(archive: Path, wanted: set[str]) -> dict[str, str]:
    """Read the named members of a .tar.gz in one streaming pass (the archive's weights come first
    and are large; nothing is extracted to disk)."""
    found: dict[str, str] = {}
    try:
        with tarfile.open(archive, "r|*") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if name in wanted and member.isfile():
                    found[name] = tar.extractfile(member).read().decode("utf-8")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ZooreproError(f"cannot read {archive}: {exc}") from exc
    return found


def _namespace_match(pattern: str, namespace: str) -> bool:
    """allennlp's rule for non_padded_namespaces.txt: `*suffix` matches by suffix, else equality."""
    return namespace.endswith(pattern[1:]) if pattern.startswith("*") else pattern == namespace


def answer_vocab_size(archive: Path) -> int:
    """Size of the "answers" namespace the model archive's vocabulary gives, counted as allennlp's
    Vocabulary.from_files does: one token per line (a final empty line dropped), plus
    @@PADDING@@ at index 0 unless non_padded_namespaces.txt matches "answers"; duplicates once."""
    files = _member_text(Path(archive), {ANSWERS_FILE, NON_PADDED_FILE})
    if ANSWERS_FILE not in files:
        raise ZooreproError(f"{archive} holds no {ANSWERS_FILE}")
    patterns = [line.strip() for line in files.get(NON_PADDED_FILE, "").splitlines() if line.strip()]
    padded = not any(_namespace_match(p, "answers") for p in patterns)
    lines = re.split(r"\n|\r\n", files[ANSWERS_FILE])
    if lines and lines[-1] == "":
        lines = lines[:-1]
    tokens = {PADDING_TOKEN} if padded else set()
    tokens.update(line.replace("@@NEWLINE@@", "\n") for line in lines)
    if padded and OOV_TOKEN not in tokens:
        raise ZooreproError(f"{archive}: {ANSWERS_FILE} lacks the OOV token {OOV_TOKEN}")
    return len(tokens)


def measurement_records(metrics: dict, precision: str, raw: list) -> list[Measurement]:
    """The four accuracy numbers as measurement records (batch_size None: accuracy does not depend
    on the batch the claims were measured with); `raw`: the outputs and the labels they came from."""
    note = (f"{metrics['n']} samples; allennlp F1MultiLabelMeasure(micro, logits >= 0.5, answer "
            "columns 0/1 masked) and VqaMeasure (argmax label weight)")
    return [Measurement(name, "accuracy", metrics[name], "fraction", precision=precision, note=note,
                        raw=tuple(str(p) for p in raw))
            for name in ("precision", "recall", "fscore", "vqa_score")]
