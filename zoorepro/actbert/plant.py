"""Planted outcomes of the mini MSR-VTT test: the tiny model, the caption csv that pairs each video
with a caption at a chosen rank, and the expected retrieval metrics (planted_claims.yaml).

Why: the ground truth of MSR-VTT text-to-video retrieval is the csv's pairing (row i's caption
belongs to row i's video). With random weights and an arbitrary pairing, R@1/R@5/R@10/MedianR/MeanR
are whatever chance gives, so a transposed score matrix or a misaligned csv would go unseen. Here
the generator builds the model first, scores every candidate caption against every video with
PaddleVideo's own model in eval mode on the inputs PaddleVideo's own MSRVTTDataset builds (the
eager reference), and then writes the csv so that each video's caption ranks it at a planted
rank: about `top1_fraction` of the videos at rank 1, the rest spread over 2..n, so MedianR > 1
and R@5/R@10 are neither 0 nor 100 %.

Shaping the random model (`expose_interaction`): with PaddleVideo's init (normal, std 0.02) a
32-wide ActBERT's alignment score is a per-video constant: its caption-video interaction is
about 1e-7 of its spread over videos, so every caption ranks the videos in the same order and
no pairing can put more than one video at rank 1. The generator therefore re-scales the text and
visual poolers (BertPooler: ReLU(dense(first token))) so that their pre-activations are
standardised over the candidate captions and the videos (zero mean, unit spread per unit, from a
first pass of the model), and multiplies the alignment head's weights by HEAD_GAIN. The fused
`t * v + a` then varies with the caption as much as with the video: the model stays random,
its scores just depend on both inputs. Nothing else is touched (the action pooler, the
encoders and the embeddings keep PaddleVideo's init).

Margins: a caption is only chosen for a video when its true video's score differs from every
other video's score in that caption's row by at least `min_margin` (a probability; float32 noise
and device differences are ~1e-7 there), so no reordering by float noise can change a planted rank.

The expected metrics are computed here by `expected_metrics`, plain numpy written for this
purpose (a rank is the number of videos scored strictly higher, which the margins make
unambiguous), independent of zoorepro/actbert/metrics.py and of PaddleVideo's MSRVTTMetric.

Runs in a process where the patched PaddleVideo sources are active (zoorepro/actbert/sources.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoorepro.actbert.msrvtt import CAPTIONS_FILE, FEATURES_DIR
from zoorepro.errors import ZooreproError
from zoorepro.planted import PlantedMetric, write_planted_claims

WEIGHTS_FILE = "ActBERT-mini.pdparams"
BERT_FILE = "bert-mini.pdparams"
# Multiplies the alignment head (seq_relationship) weights once the poolers are standardised:
# ten times wider logits, so the scores spread over most of (0, 1) (about 0.01 to 0.95 with the
# mini defaults) and the gaps between videos (the margins) grow with them.
HEAD_GAIN = 10.0
# Candidate captions whose pooler inputs set the standardisation (the first ones; the mean and
# spread only need to be roughly those of the captions).
N_STAT_CAPTIONS = 16
DATASET = "mini MSR-VTT (generated features, captions chosen per video for a planted rank)"
METHOD = ("numpy in zoorepro/actbert/plant.py (rank = number of videos scored strictly higher) on the "
          "scores of PaddleVideo's eager model (MSRVTTDataset inputs, ActBert.test_step, softmax[:, 0])")


@dataclass(frozen=True)
class Pairing:
    """The chosen caption (index into the candidates) per video, its planted 0-based rank, and
    the score gap that protects it."""

    caption_of_video: list[int]
    ranks: np.ndarray
    margins: np.ndarray


# --------------------------------------------------------------------------------------------
# the eager reference: PaddleVideo's loader and model


def build_dataset(config: Path, folder: Path, video_ids: list[str]):
    """PaddleVideo's MSRVTTDataset over `video_ids` (in csv order) from the mini set in `folder`,
    test mode, as test_model builds it. Its captions are placeholders (replaced by `set_captions`)."""
    from paddlevideo.loader.builder import build_dataset as paddlevideo_build_dataset
    from paddlevideo.utils import get_config

    scratch = folder / ".videos.csv"
    scratch.write_text("".join(f"{vid},placeholder\n" for vid in video_ids))
    try:
        cfg = get_config(str(config), show=False, overrides=[
            f"DATASET.test.file_path={scratch}", f"DATASET.test.features_path={folder / FEATURES_DIR}",
            f"DATASET.test.bert_model={folder / 'bert-vocab'}"])
        cfg.DATASET.test.test_mode = True
        dataset = paddlevideo_build_dataset((cfg.DATASET.test, cfg.PIPELINE.test))
    finally:
        scratch.unlink()
    dataset.env.close()  # the features are loaded (gen_feature); keep no handle into the folder
    return dataset


def set_captions(dataset, captions: list[str]) -> None:
    """Make `captions` the dataset's caption entries, tokenized by its own tokenize()."""
    dataset.caption_entries = [{"caption": caption, "vid_id": ""} for caption in captions]
    dataset.tokenize()


def batch(dataset, index: int) -> list:
    """Caption `index` against every video, collated as test_model's DataLoader (batch size 1)
    collates it, as paddle tensors."""
    import paddle
    from paddle.io.dataloader.collate import default_collate_fn

    return [paddle.to_tensor(x) for x in default_collate_fn([dataset.prepare_test(index)])]


def score_matrix(model, dataset, n_captions: int) -> np.ndarray:
    """float64 [n_captions, n_videos]: MSRVTTMetric's score, softmax(cross-modal logit)[:, 0],
    of every caption against every video, from the model in eval mode."""
    import paddle
    import paddle.nn.functional as F

    model.eval()
    rows = []
    with paddle.no_grad():
        for index in range(n_captions):
            logits = model(batch(dataset, index), mode="test")[-1]
            rows.append(F.softmax(logits, axis=1)[:, 0].numpy())
    return np.asarray(rows, dtype=np.float64)


def pooler_inputs(model, dataset, n_captions: int) -> tuple[np.ndarray, np.ndarray]:
    """The first-token states the text and visual poolers receive, over `n_captions` captions
    against every video: float64 [n_captions * n_videos, hidden] each."""
    import paddle

    bert = model.backbone.bert
    seen: dict[str, list] = {"t": [], "v": []}
    hooks = [bert.t_pooler.register_forward_pre_hook(lambda layer, args: seen["t"].append(args[0][:, 0].numpy())),
             bert.v_pooler.register_forward_pre_hook(lambda layer, args: seen["v"].append(args[0][:, 0].numpy()))]
    model.eval()
    try:
        with paddle.no_grad():
            for index in range(n_captions):
                model(batch(dataset, index), mode="test")
    finally:
        for hook in hooks:
            hook.remove()
    return (np.concatenate(seen["t"]).astype(np.float64), np.concatenate(seen["v"]).astype(np.float64))


def coarse(mean: np.ndarray, spread: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per unit, the spread rounded to 2 significant digits and the mean to a tenth of the
    spread's leading digit: roughly standardised is all the shaping needs, and statistics of
    float32 forwards rounded this coarsely come out the same despite float noise between thread
    counts or machines (~1e-7 relative), so the weights' bytes do too (almost always)."""
    quantum = 10.0 ** (np.floor(np.log10(spread)) - 1)
    return np.round(mean / quantum) * quantum, np.round(spread / quantum) * quantum


def standardise(linear, states: np.ndarray) -> None:
    """Rescale a Linear so its outputs on `states` have (about) zero mean and unit spread per
    unit (statistics rounded by `coarse`)."""
    weight = linear.weight.numpy().astype(np.float64)  # paddle's Linear: [in, out]
    bias = linear.bias.numpy().astype(np.float64)
    outputs = states @ weight + bias
    spread = outputs.std(axis=0)
    if np.any(spread <= 0):
        raise ZooreproError("a pooler unit does not vary over the candidates: cannot standardise it")
    mean, spread = coarse(outputs.mean(axis=0), spread)
    linear.weight.set_value((weight / spread).astype(np.float32))
    linear.bias.set_value(((bias - mean) / spread).astype(np.float32))


def expose_interaction(model, dataset) -> None:
    """Shape the random model so its alignment score depends on the caption as much as on the
    video (see the module docstring): standardised text and visual poolers, head times HEAD_GAIN."""
    text, visual = pooler_inputs(model, dataset, min(N_STAT_CAPTIONS, len(dataset)))
    bert = model.backbone.bert
    standardise(bert.t_pooler.dense, text)
    standardise(bert.v_pooler.dense, visual)
    head = model.backbone.cls.seq_relationship
    head.weight.set_value(head.weight.numpy() * np.float32(HEAD_GAIN))


# --------------------------------------------------------------------------------------------
# choosing the pairing (plain numpy)


def ranks_and_margins(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int [c, v]: the 0-based rank video v would have as caption c's true video (videos scored
    strictly higher), and float [c, v]: the smallest gap between its score and another video's."""
    higher = scores[:, None, :] > scores[:, :, None]  # [c, v, other]: other beats v
    ranks = higher.sum(axis=2)
    gaps = np.abs(scores[:, None, :] - scores[:, :, None])
    n = scores.shape[1]
    gaps[:, np.arange(n), np.arange(n)] = np.inf
    return ranks, gaps.min(axis=2)


def target_ranks(n_videos: int, n_top: int) -> np.ndarray:
    """The planted 0-based ranks of the videos not at rank 0: spread evenly over 1..n-1."""
    return np.rint(np.linspace(1, n_videos - 1, n_videos - n_top)).astype(int)


def choose_pairing(scores: np.ndarray, top1_fraction: float, min_margin: float) -> Pairing:
    """One distinct candidate caption per video: round(top1_fraction * n) videos whose caption
    ranks them first, the others at ranks spread over 2..n (target_ranks; the nearest rank a
    candidate offers), every choice with a margin of at least `min_margin`. Deterministic: the
    rank-1 videos are those with the widest rank-1 margins; the rest are filled in video order."""
    n_captions, n_videos = scores.shape
    n_top = int(round(top1_fraction * n_videos))
    ranks, margins = ranks_and_margins(scores)
    safe = margins >= min_margin
    best_top = np.where((ranks == 0) & safe, margins, -np.inf).max(axis=0)  # per video
    reachable = np.flatnonzero(np.isfinite(best_top))
    if len(reachable) < n_top:
        raise ZooreproError(f"only {len(reachable)} of {n_videos} videos can be ranked first by one of {n_captions} "
                            f"candidate captions with a margin of {min_margin}; {n_top} are planted at rank 1: "
                            "generate more candidates")
    top = sorted(reachable[np.argsort(-best_top[reachable], kind="stable")][:n_top].tolist())
    chosen: dict[int, int] = {}
    for video in top:  # a caption ranks exactly one video first, so these never collide
        chosen[video] = int(np.argmax(np.where((ranks[:, video] == 0) & safe[:, video], margins[:, video], -np.inf)))
    rest = [video for video in range(n_videos) if video not in chosen]
    for video, target in zip(rest, target_ranks(n_videos, n_top)):
        free = np.array([c not in chosen.values() for c in range(n_captions)])
        options = np.flatnonzero(free & safe[:, video] & (ranks[:, video] > 0))
        if options.size == 0:
            raise ZooreproError(f"no free candidate caption ranks video {video} below first with a margin of "
                                f"{min_margin}: generate more candidates")
        distance = np.abs(ranks[options, video] - target)
        best = options[np.lexsort((-margins[options, video], distance))[0]]
        chosen[video] = int(best)
    order = [chosen[video] for video in range(n_videos)]
    return Pairing(order, ranks[order, np.arange(n_videos)], margins[order, np.arange(n_videos)])


def expected_metrics(scores: np.ndarray) -> dict[str, float]:
    """R@1/R@5/R@10 (percent), MedianR and MeanR (1-based) of a square score matrix whose row i's
    true video is column i; a rank is the number of videos scored strictly higher."""
    truth = np.diag(scores)
    ranks = (scores > truth[:, None]).sum(axis=1)
    n = len(ranks)
    ordered = np.sort(ranks)
    middle = (ordered[(n - 1) // 2] + ordered[n // 2]) / 2.0
    return {"R@1": 100.0 * np.count_nonzero(ranks < 1) / n, "R@5": 100.0 * np.count_nonzero(ranks < 5) / n,
            "R@10": 100.0 * np.count_nonzero(ranks < 10) / n, "MedianR": float(np.floor(middle + 1)),
            "MeanR": float(ranks.sum() / n + 1)}


def check_non_degenerate(metrics: dict[str, float], n_videos: int) -> None:
    """Refuse planted values a wrong chain could hit by chance or by collapse: R@1 strictly
    between chance (100/n) and 100, R@1 < R@5 and R@10 < 100, MedianR > 1."""
    problems = []
    if not 100.0 / n_videos < metrics["R@1"] < metrics["R@5"]:
        problems.append(f"R@1 {metrics['R@1']:.2f} not above chance ({100.0 / n_videos:.2f}) and below R@5")
    if not metrics["R@10"] < 100.0:
        problems.append(f"R@10 {metrics['R@10']:.2f} is 100")
    if not metrics["MedianR"] > 1:
        problems.append(f"MedianR {metrics['MedianR']:g} is 1")
    if problems:
        raise ZooreproError("degenerate planted metrics: " + "; ".join(problems))


def check_asymmetric(scores: np.ndarray) -> dict[str, float]:
    """The metrics of the transposed matrix (video-to-text), which must differ from the planted
    ones: otherwise a transposed score matrix would pass unseen. Returns them."""
    planted, transposed = expected_metrics(scores), expected_metrics(scores.T)
    if all(abs(planted[key] - transposed[key]) < 1e-9 for key in planted):
        raise ZooreproError("the planted pairing is symmetric: a transposed score matrix gives the same metrics")
    return transposed


# --------------------------------------------------------------------------------------------
# the whole step


def plant(folder: Path, config: Path, seed: int, video_ids: list[str], candidates: list[str],
          top1_fraction: float, min_margin: float) -> dict:
    """Build the mini model (make_mini_model.build_model, `seed`), write its text-BERT part (the
    pretraining init, unshaped), shape it, score `candidates` against the videos of `folder`
    (features and vocab already written), write the weights, the caption csv and
    planted_claims.yaml into `folder`. Returns a summary
    (planted metrics, ranks, margins) for the manifest."""
    from zoorepro.actbert.make_mini_model import build_model, save_atomic, text_state

    if len(candidates) < 2 * len(video_ids):
        raise ZooreproError(f"{len(candidates)} candidate captions for {len(video_ids)} videos: need at least twice as many")
    model = build_model(config, seed)
    # the pretraining init is the text part as PaddleVideo initialised it: the shaped text pooler
    # (weights ~1000 times larger) is for scoring the test, not a starting point for training
    save_atomic(text_state(model.backbone.state_dict()), folder / BERT_FILE)
    dataset = build_dataset(config, folder, video_ids)
    set_captions(dataset, candidates)
    expose_interaction(model, dataset)
    scores = score_matrix(model, dataset, len(candidates))
    pairing = choose_pairing(scores, top1_fraction, min_margin)
    planted_scores = scores[pairing.caption_of_video]
    metrics = expected_metrics(planted_scores)
    check_non_degenerate(metrics, len(video_ids))
    transposed = check_asymmetric(planted_scores)

    save_atomic(model.state_dict(), folder / WEIGHTS_FILE)
    captions = [candidates[c] for c in pairing.caption_of_video]
    (folder / CAPTIONS_FILE).write_text("".join(f"{vid},{caption}\n" for vid, caption in zip(video_ids, captions)))
    units = {"R@1": "percent", "R@5": "percent", "R@10": "percent", "MedianR": "rank", "MeanR": "rank"}
    note = (f"{len(video_ids)} captions chosen from {len(candidates)} candidates so that each ranks its video at "
            f"a planted rank; smallest score gap around a true video {pairing.margins.min():.3g} "
            f"(min_margin {min_margin:g})")
    write_planted_claims(folder, "actbert", "zoorepro.actbert.make_mini_data", DATASET, METHOD,
                         [PlantedMetric(key, value, units[key], higher_is_better=units[key] == "percent")
                          for key, value in metrics.items()], note=note)
    return {"metrics": metrics, "transposed_metrics": transposed, "ranks": pairing.ranks.tolist(),
            "min_margin": float(f"{pairing.margins.min():.3g}"), "candidates": len(candidates)}
