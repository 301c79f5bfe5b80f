"""Planted outcomes for the mini ViLBERT set: the generator's eager reference and answer planting.

Why: a random-weight ViLBERT scores 0 F1 and chance VQA, the same whether the chain is right or
wrong. So the mini generator (zoorepro.vilbert.make_mini), after building the random model and the
questions, runs allennlp's own `vqa_vilbert` once in torch eager mode on the instances of the
archive's own vqav2 reader, then

1. shapes the answer head (`classifier`, a Linear on the pooled output): its weights are rescaled
   per column to the spread of the pooled outputs over the mini questions and its bias put so that
   the 0.5 threshold of allennlp's F1 falls in the widest gap between the questions' logits of
   that column (near a chosen fraction of positives). Every logit is then at least `MARGIN` from
   0.5, which the ONNX/onnxruntime chain (padded inputs, float noise) and an fp16 compile cannot
   cross;
2. chooses each question's ten human answers from the logits: the argmax answer gets 0..3+ votes
   (VQA score 0, 1/3, 2/3, 1), an answer whose logit is within `MARGIN` of the argmax gets the
   same votes (so a flipped argmax between near-tied answers cannot change the score), some
   predicted (>= 0.5) answers become gold (true positives), some unpredicted ones too (false
   negatives), and the rest are out-of-vocabulary answers (label 1, ignored by F1);
3. re-reads the final annotations with the same reader and feeds labels and label weights to the
   model's own forward: allennlp's F1MultiLabelMeasure(micro) and VqaMeasure, through
   `VqaVilbert.get_metrics()`, give the expected numbers. zoorepro/vilbert/metrics.py (the
   pipeline's numpy re-implementation) is not used.

The eager reference reads the reader's instances as allennlp batches them (one batch, padded to
its own longest question and box list), not the pipeline's per-sample arrays padded to
pad_len/box_num, so a preprocess bug is not baked into the planted numbers either.
"""
from __future__ import annotations

import copy
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoorepro.errors import ZooreproError

SPLIT = "planting"
PADDING, OOV = 0, 1  # columns of the "answers" namespace that are no answer
# The smallest distance, in logits, of any logit from the 0.5 threshold, and of any answer that
# may decide the VQA score from the argmax. The answer head is scaled so the questions' logits
# spread over about +-SCALE: onnxruntime differs from eager by ~1e-5, fp16 by ~1e-2 at most.
MARGIN = 0.2
SCALE = 4.0
# Per column, the 0.5 threshold goes in the widest gap between the questions' (standardized)
# values whose share of questions above it lies in this range.
POSITIVE_FRACTION = (0.1, 0.6)
# Votes for the argmax answer (0..3; 3 = VQA score 1) and how likely each is.
ARGMAX_VOTES = (0, 1, 2, 3)
ARGMAX_VOTE_P = (0.3, 0.1, 0.15, 0.45)
TP_P = 0.7  # chance that a predicted, non-argmax answer is given by a human
FN_MAX = 3  # unpredicted answers given by humans, per question (0..FN_MAX)
GRID = 1024.0  # head parameters are rounded to multiples of 1/GRID (float noise gives the same bytes)


@dataclass(frozen=True)
class Reference:
    """What the eager run gives: the batched tensors and the logits, one row per question."""

    tensors: dict
    logits: np.ndarray


def reader_params(config: dict, data_dir: Path, tokenizer_dir: Path, split_files: dict, cache: Path) -> dict:
    """The archive's validation reader pointed at the generated files (absolute paths)."""
    reader = copy.deepcopy(config["validation_dataset_reader"])
    reader["image_dir"] = str(data_dir / reader["image_dir"])
    reader["tokenizer"]["model_name"] = str(tokenizer_dir)
    reader["token_indexers"]["tokens"]["model_name"] = str(tokenizer_dir)
    reader["split_files"] = {SPLIT: split_files}
    reader["feature_cache_dir"] = str(cache)
    return reader


def read_tensors(reader_config: dict, vocab) -> dict:
    """All questions of the split as one allennlp batch (the reader's question order)."""
    from allennlp.common import Params
    from allennlp.data import Batch, DatasetReader

    reader = DatasetReader.from_params(Params(copy.deepcopy(reader_config)))
    instances = list(reader.read(SPLIT))
    for instance in instances:
        instance.index_fields(vocab)
    return Batch(instances).as_tensor_dict()


def forward(model, tensors: dict, with_labels: bool = False) -> dict:
    """The model's own forward (patched flat question inputs), no grad."""
    import torch

    tokens = tensors["question"]["tokens"]
    extra = {"labels": tensors["labels"], "label_weights": tensors["label_weights"]} if with_labels else {}
    with torch.no_grad():
        return model(box_features=tensors["box_features"], box_coordinates=tensors["box_coordinates"],
                     box_mask=tensors["box_mask"], token_ids=tokens["token_ids"], mask=tokens["mask"],
                     type_ids=tokens["type_ids"], **extra)


def pooled_outputs(model, tensors: dict) -> np.ndarray:
    """The fused pooled output the answer head reads, [questions, pooled_dim] float64."""
    import torch

    with torch.no_grad():
        out = model.backbone(tensors["box_features"], tensors["box_coordinates"], tensors["box_mask"],
                             tensors["question"])
    return out["pooled_boxes_and_text"].double().numpy()


def widest_gap(values: np.ndarray) -> float:
    """A threshold in the middle of the widest gap between sorted `values` that leaves a share
    within POSITIVE_FRACTION of them above it."""
    ordered = np.sort(values)
    n = len(ordered)
    best, threshold = -1.0, None
    for above in range(1, n):
        if not POSITIVE_FRACTION[0] <= above / n <= POSITIVE_FRACTION[1]:
            continue
        lo, hi = ordered[n - above - 1], ordered[n - above]
        if hi - lo > best:
            best, threshold = hi - lo, (lo + hi) / 2
    if threshold is None:
        raise ZooreproError(f"too few questions ({n}) to place a threshold with {POSITIVE_FRACTION} above it")
    return float(threshold)


def shaped_head(pooled: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """New classifier weight [C, D] and bias [C]: each column's random direction standardized
    over the questions and scaled to SCALE, with the 0.5 threshold in its widest gap. Rounded to
    1/GRID so that the archive's bytes do not depend on float noise in the features."""
    mean = pooled.mean(axis=0)
    raw = (pooled - mean) @ weight.T  # [N, C]
    spread = raw.std(axis=0)
    if np.any(spread <= 0):
        raise ZooreproError("the pooled outputs do not vary over the mini questions")
    thresholds = np.array([widest_gap(raw[:, c] / spread[c]) for c in range(weight.shape[0])])
    new_weight = weight * (SCALE / spread)[:, None]
    new_bias = 0.5 - SCALE * ((mean @ weight.T) / spread + thresholds)
    return np.round(new_weight * GRID) / GRID, np.round(new_bias * GRID) / GRID


def set_head(model, weight: np.ndarray, bias: np.ndarray) -> None:
    import torch

    with torch.no_grad():
        model.classifier.weight.copy_(torch.from_numpy(weight.astype(np.float32)))
        model.classifier.bias.copy_(torch.from_numpy(bias.astype(np.float32)))


def threshold_margin(logits: np.ndarray) -> float:
    """Smallest distance of an answer column's logit (columns > 1, what F1 reads) from 0.5."""
    return float(np.min(np.abs(logits[:, 2:] - 0.5)))


def tied(row: np.ndarray) -> list[int]:
    """The argmax column first, then every column within MARGIN of it."""
    top = int(np.argmax(row))
    return [top] + [int(c) for c in np.flatnonzero(row >= row[top] - MARGIN) if c != top]


def plant_row(row: np.ndarray, answers: list[str], oov: list[str], rng: np.random.Generator) -> list[str]:
    """Ten human answers for one question, given its logits over the answer columns
    (answers[c] is column c's answer string for c > 1)."""
    top = tied(row)
    votes = int(rng.choice(ARGMAX_VOTES, p=ARGMAX_VOTE_P))
    if PADDING in top:
        votes = 0  # the padding column can never be a label: the score is 0 whatever we choose
    votes = min(votes, 10 // len(top))  # every near-tied answer gets the same votes
    counts: Counter = Counter()
    oov_words = iter(rng.permutation(oov))
    deciding = set()  # the answers whose votes decide the VQA score: never changed below
    for column in top:
        answer = answers[column] if column > OOV else (str(next(oov_words)) if column == OOV and votes else None)
        if answer is not None:  # an out-of-vocabulary answer is label 1, the OOV column
            counts[answer] = votes
            deciding.add(answer)
    predicted = [c for c in np.flatnonzero(row >= 0.5) if c > OOV and c not in top]
    unpredicted = [c for c in np.flatnonzero(row < 0.5) if c > OOV and c not in top]
    for column in predicted:
        if rng.random() < TP_P:
            counts[answers[column]] = int(rng.integers(1, 3))
    for column in rng.permutation(unpredicted)[:int(rng.integers(0, FN_MAX + 1))]:
        counts[answers[int(column)]] = int(rng.integers(1, 3))
    while sum(counts.values()) > 10:  # too many: drop gold answers that do not decide the score
        extra = [a for a in counts if a not in deciding]
        if not extra:
            raise ZooreproError(f"cannot fit the tied answers of logits {row} into ten votes")
        del counts[extra[-1]]
    fill_oov = OOV not in top  # out-of-vocabulary fillers would score when the OOV column is argmax
    human = [a for a, n in counts.items() for _ in range(n)]
    while len(human) < 10:
        if fill_oov:
            human.append(str(next(oov_words, oov[0])))
        else:  # repeat a gold answer that does not decide the score, or add a new unpredicted one
            free = [a for a in counts if a not in deciding]
            if not free:
                free = [answers[c] for c in unpredicted if answers[c] not in counts][:1]
                if not free:
                    raise ZooreproError("no answer left to fill ten votes")
                counts[free[0]] = 0
            counts[free[0]] += 1
            human.append(free[0])
    return [str(a) for a in rng.permutation(human)]


def plant_answers(logits: np.ndarray, answers: list[str], oov: list[str], rng: np.random.Generator) -> list[list[str]]:
    """Ten human answers per question (rows of `logits`)."""
    return [plant_row(row, answers, oov, rng) for row in logits]


def allennlp_metrics(model, tensors: dict) -> dict[str, float]:
    """allennlp's own F1MultiLabelMeasure(micro) and VqaMeasure, fed by VqaVilbert's forward
    (a freshly loaded model: its metrics have seen nothing else)."""
    forward(model, tensors, with_labels=True)
    return {k: float(v) for k, v in model.get_metrics(reset=True).items()}


@dataclass
class Planted:
    """The outcome of planting: answers per question (reader order), metrics and margins."""

    answers: list[list[str]]
    metrics: dict[str, float]
    threshold_margin: float
    argmax_margin: float
    tied_questions: int


def argmax_margin(logits: np.ndarray, weights_by_column: list[dict[int, float]]) -> float:
    """Smallest logit gap between a question's argmax and any column with another score."""
    gaps = []
    for row, weights in zip(logits, weights_by_column):
        top = int(np.argmax(row))
        others = [row[top] - row[c] for c in range(len(row)) if weights.get(c, 0.0) != weights.get(top, 0.0)]
        gaps.append(min(others) if others else np.inf)
    return float(min(gaps))


def column_weights(tensors: dict) -> list[dict[int, float]]:
    """Per question, the VQA score each column would earn as the argmax (label weights summed)."""
    labels = tensors["labels"].numpy()
    weights = tensors["label_weights"].numpy()
    out = []
    for row_labels, row_weights in zip(labels, weights):
        earned: Counter = Counter()
        for label, weight in zip(row_labels, row_weights):
            earned[int(label)] += float(weight)
        out.append(dict(earned))
    return out


class Planter:
    """Runs the archive's model and reader over the generated questions (one featurization, kept in
    a feature cache for the second read)."""

    def __init__(self, archive_dir: Path, data_dir: Path, tokenizer_dir: Path, scratch: Path):
        self.archive_dir, self.data_dir, self.scratch = Path(archive_dir), Path(data_dir), Path(scratch)
        self.tokenizer_dir = Path(tokenizer_dir)
        self.config = json.loads((self.archive_dir / "config.json").read_text())

    def load_model(self):
        """The archive folder's model as load_archive builds it, in eval mode."""
        from allennlp.common import Params
        from allennlp.models import Model

        model = Model.load(Params(copy.deepcopy(self.config)), serialization_dir=str(self.archive_dir),
                           weights_file=str(self.archive_dir / "weights.th"), cuda_device=-1)
        model.eval()
        return model

    def read(self, questions: Path, annotations: Path, vocab) -> dict:
        split = {"questions": str(questions), "annotations": str(annotations)}
        params = reader_params(self.config, self.data_dir, self.tokenizer_dir, split, self.scratch / "features")
        return read_tensors(params, vocab)

    def reference(self, questions: Path, provisional: Path) -> Reference:
        """Shape the archive folder's answer head (weights.th rewritten), then the logits of the
        model loaded back from it, on the questions read once (answers provisional: the logits do
        not read them)."""
        import torch

        model = self.load_model()
        tensors = self.read(questions, provisional, model.vocab)
        weight, bias = shaped_head(pooled_outputs(model, tensors), model.classifier.weight.detach().double().numpy())
        set_head(model, weight, bias)
        torch.save(model.state_dict(), self.archive_dir / "weights.th")
        return Reference(tensors, forward(self.load_model(), tensors)["logits"].numpy())

    def evaluate(self, questions: Path, annotations: Path) -> tuple[dict[str, float], dict, np.ndarray]:
        """allennlp's metrics of the archive's model on the final annotations."""
        model = self.load_model()
        tensors = self.read(questions, annotations, model.vocab)
        metrics = allennlp_metrics(model, tensors)
        return metrics, tensors, forward(model, tensors)["logits"].numpy()
