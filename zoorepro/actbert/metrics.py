"""Text-to-video retrieval metrics exactly as PaddleVideo's MSRVTTMetric computes and logs them.

Why here: the upstream metric only logs, once per caption, `[batch_id] Final r1:..., r5:...,
r10:..., mder:..., meanr:...` (running values over the captions so far, 3 decimals, `mder` its
typo for median R); there is no summary to read. The pipeline parses the last such line AND
recomputes the numbers from the saved score matrix, and `agree` refuses a run where the two differ.

Upstream (`metrics/msrvtt_metric.py`): a caption's score row is P(class 0) of the 2-way softmax
of the cross-modal logits against every video; its rank is the 0-based position of its
ground-truth video (the first 1 in its target row) in `np.argsort(-score)` (numpy's default sort,
so ties fall as numpy orders them). R@K = 100 * #(rank < K) / n, MedianR = floor(median(rank) + 1),
MeanR = mean(rank) + 1.
"""
from __future__ import annotations

import re

import numpy as np

from zoorepro.errors import ZooreproError

METRIC_KEYS = ("R@1", "R@5", "R@10", "MedianR", "MeanR")
# The upstream format string, "[{}] Final r1:{:.3f}, r5:{:.3f}, r10:{:.3f}, mder:{:.3f}, meanr:{:.3f}",
# matched anywhere in a line (the logger prefixes a timestamp and may colour it).
_NUMBER = r"(-?\d+(?:\.\d+)?|nan|inf)"
FINAL_LINE = re.compile(rf"\[(\d+)\] Final r1:{_NUMBER}, r5:{_NUMBER}, r10:{_NUMBER}, "
                        rf"mder:{_NUMBER}, meanr:{_NUMBER}")


def ranks_from_scores(score_matrix: np.ndarray, target_matrix: np.ndarray) -> np.ndarray:
    """int64 [n_captions]: per row, the 0-based rank of the row's ground-truth video (its first
    target 1) when the videos are sorted by descending score, computed as upstream computes it."""
    scores = np.asarray(score_matrix, dtype=np.float64)
    targets = np.asarray(target_matrix)
    if scores.ndim != 2 or scores.shape != targets.shape or scores.size == 0:
        raise ZooreproError(f"score and target matrices must be the same non-empty 2-D shape, "
                            f"got {list(scores.shape)} and {list(targets.shape)}")
    ranks = np.empty(len(scores), np.int64)
    for row, (score, target) in enumerate(zip(scores, targets)):
        truth = np.where(target == 1)[0]
        if truth.size == 0:
            raise ZooreproError(f"caption {row} has no ground-truth video (no 1 in its target row)")
        ranks[row] = np.where(np.argsort(-score) == truth[0])[0][0]
    return ranks


def retrieval_metrics(ranks: np.ndarray) -> dict[str, float]:
    """R@1, R@5, R@10 (percent), MedianR and MeanR (1-based) of 0-based ranks, upstream's formulas."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if ranks.ndim != 1 or ranks.size == 0 or np.any(ranks < 0):
        raise ZooreproError(f"ranks must be a non-empty 1-D array of 0-based ranks, got {list(ranks.shape)}")
    n = len(ranks)
    return {"R@1": float(100.0 * np.sum(ranks < 1) / n), "R@5": float(100.0 * np.sum(ranks < 5) / n),
            "R@10": float(100.0 * np.sum(ranks < 10) / n), "MedianR": float(np.floor(np.median(ranks) + 1)),
            "MeanR": float(np.mean(ranks) + 1)}


def parse_final_line(log_text: str, expected_captions: int | None = None) -> dict[str, float]:
    """The metrics of the LAST `[N] Final ...` line of a PaddleVideo test log, under METRIC_KEYS,
    plus `batch_id` (N: the line covers captions 0..N). With `expected_captions`, a log whose last
    line covers a different number of captions (a run cut short, or another split) is refused:
    its running values are not the final ones."""
    matches = list(FINAL_LINE.finditer(log_text))
    if not matches:
        raise ZooreproError("no `[N] Final r1:..., r5:..., r10:..., mder:..., meanr:...` line in the log: "
                            "the MSR-VTT test did not get through a single caption")
    last = matches[-1]
    batch_id = int(last.group(1))
    if expected_captions is not None and batch_id + 1 != expected_captions:
        raise ZooreproError(f"the log's last Final line is [{batch_id}], i.e. {batch_id + 1} captions; "
                            f"expected {expected_captions}")
    return {"batch_id": batch_id, **{key: float(value) for key, value in zip(METRIC_KEYS, last.groups()[1:])}}


def agree(a: dict[str, float], b: dict[str, float], tol: float = 1e-3) -> None:
    """Raise ZooreproError naming every metric of METRIC_KEYS on which `a` and `b` differ by more
    than `tol` (the log prints 3 decimals, so a faithful recomputation is within 5e-4), or that
    either lacks."""
    missing = [key for key in METRIC_KEYS if key not in a or key not in b]
    if missing:
        raise ZooreproError(f"cannot compare: {missing} missing")
    differ = [f"{key} {a[key]:.4f} vs {b[key]:.4f}" for key in METRIC_KEYS
              if not abs(a[key] - b[key]) <= tol]
    if differ:
        raise ZooreproError(f"the logged and recomputed MSR-VTT metrics disagree (tolerance {tol}): "
                            + "; ".join(differ))
