"""The document's postprocess metrics (allennlp F1MultiLabelMeasure micro + VqaMeasure) against
values worked out by hand on a crafted example, and the postprocess step's file handling."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from zoorepro.errors import ZooreproError
from zoorepro.vilbert.metrics import (
    F1MultiLabelMicro,
    VqaScore,
    answer_vocab_size,
    evaluate,
    measurement_records,
    weighted_labels,
)

ROOT = Path(__file__).resolve().parents[1]
THIRD, TWO_THIRDS = np.float32(1 / 3), np.float32(2 / 3)

# Six answer classes: 0 = @@PADDING@@, 1 = @@UNKNOWN@@ (OOV), 2..5 = answers.
# Per row, with "predicted" = logit >= 0.5 in columns 2..5 of a row whose logits do not sum to 0,
# "gold" = columns of labels > 1, "VQA" = weight of the label equal to argmax over all 6 columns:
LOGITS = np.array([
    [0.9, 0.9, 0.7, -1.0, 0.5, 0.2],   # predicted {2, 4} (0.5 counts); gold {2, 4}: TP 2; argmax 0 (first max) -> 0
                                       #   (an argmax over columns 2..5 would score 2/3 here)
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],    # all zero: predicts nothing; gold {3} (OOV label ignored): TP 0; argmax 0 -> 0
    [0.0, 0.0, -0.2, 3.0, 0.6, 0.1],   # predicted {3, 4}; gold {3}: TP 1; argmax 3 = label 3 -> 1.0
    [0.1, 2.0, 0.0, 0.0, 0.0, -1.0],   # column 1 >= 0.5 but masked: predicts nothing; gold {5}: TP 0;
                                       #   argmax 1 = the OOV label, weight 1.0 -> 1.0 (VqaMeasure counts it)
    [0.0, 0.0, 0.75, -0.75, 0.0, 0.0],  # sums to 0: pred_mask drops the 0.75; gold {2}: TP 0; argmax 2 -> 1.0
], dtype=np.float32)
LABELS = [np.array([[2, 4, 1]]), np.array([[3, 1]]), np.array([[3]]), np.array([[1, 5]]), np.array([[2]])]
WEIGHTS = [np.array([[TWO_THIRDS, THIRD, 1.0]], dtype=np.float32), np.array([[TWO_THIRDS, 1.0]], dtype=np.float32),
           np.array([[1.0]], dtype=np.float32), np.array([[1.0, THIRD]], dtype=np.float32),
           np.array([[1.0]], dtype=np.float32)]
# Totals: TP = 2+0+1+0+0 = 3, predicted = 2+0+2+0+0 = 4, true = 2+1+1+1+1 = 6
# precision 3/4, recall 3/6, fscore 2*0.75*0.5/1.25 = 0.6; VQA (0+0+1+1+1)/5 = 0.6.
EXPECTED = {"precision": 0.75, "recall": 0.5, "fscore": 0.6000000238418579, "vqa_score": 0.6}


def score(rows: list[int]) -> dict:
    """Both metrics over the given rows, one batch per call of `update`."""
    f1, vqa = F1MultiLabelMicro(), VqaScore()
    for i in rows:
        logits = LOGITS[i:i + 1]
        f1.update(logits, weighted_labels(LABELS[i], WEIGHTS[i], 6))
        vqa.update(logits, LABELS[i], WEIGHTS[i])
    return {**f1.result(), "vqa_score": vqa.result()}


def test_weighted_labels_drop_padding_and_oov():
    labels = np.array([[2, 4, 1, 0], [5, 0, 0, 0]])
    weights = np.array([[1.0, 0.3, 0.7, 0.9], [0.6, 0.0, 0.0, 0.0]], dtype=np.float32)
    np.testing.assert_array_equal(weighted_labels(labels, weights, 6), np.array(
        [[0, 0, 1.0, 0, 0.3, 0], [0, 0, 0, 0, 0, 0.6]], dtype=np.float32))


def test_hand_computed_counts_and_metrics():
    f1 = F1MultiLabelMicro()
    for i in range(5):
        f1.update(LOGITS[i:i + 1], weighted_labels(LABELS[i], WEIGHTS[i], 6))
    assert (f1.true_positives, f1.predicted, f1.true) == (3, 4, 6)
    assert score(list(range(5))) == pytest.approx(EXPECTED, abs=0)


def test_accumulating_batches_equals_one_batch():
    one = F1MultiLabelMicro(), VqaScore()
    two = F1MultiLabelMicro(), VqaScore()
    k = max(x.shape[1] for x in LABELS)
    labels = np.stack([np.pad(x[0], (0, k - x.shape[1])) for x in LABELS])  # padding label 0, weight 0
    weights = np.stack([np.pad(w[0], (0, k - w.shape[1])) for w in WEIGHTS])
    for (f1, vqa), parts in ((one, [slice(0, 5)]), (two, [slice(0, 2), slice(2, 5)])):
        for s in parts:
            f1.update(LOGITS[s], weighted_labels(labels[s], weights[s], 6))
            vqa.update(LOGITS[s], labels[s], weights[s])
    assert {**one[0].result(), "vqa": one[1].result()} == {**two[0].result(), "vqa": two[1].result()}
    assert one[0].result() == pytest.approx({k: EXPECTED[k] for k in ("precision", "recall", "fscore")}, abs=0)
    assert one[1].result() == pytest.approx(0.6)


def test_zero_denominators_give_zero():
    """No prediction at all (every row all-zero): precision 0/0 -> 0, fscore 0 since TP == 0."""
    assert score([1]) == {"precision": 0.0, "recall": 0.0, "fscore": 0.0, "vqa_score": 0.0}
    assert VqaScore().result() == 0.0


def test_threshold_applies_to_logits_not_probabilities():
    """Logit 0.3 is sigmoid 0.57 >= 0.5, yet not a prediction: allennlp thresholds the logits."""
    f1 = F1MultiLabelMicro()
    f1.update(np.array([[0.0, 0.0, 0.3, -0.1]], dtype=np.float32), np.array([[0, 0, 1.0, 0]], dtype=np.float32))
    assert (f1.true_positives, f1.predicted, f1.true) == (0, 0, 1)


def write_samples(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The crafted rows in the per-sample layout; sample 3's output as ais_bench's .bin."""
    out, lab, wgt = (tmp_path / d for d in ("outputs", "labels", "label_weights"))
    for d in (out, lab, wgt):
        d.mkdir()
    for i in range(5):
        np.save(lab / f"{i}.npy", LABELS[i].astype(np.int64))
        np.save(wgt / f"{i}.npy", WEIGHTS[i])
        if i == 3:
            LOGITS[i:i + 1].tofile(out / f"{i}_0.bin")
        else:
            np.save(out / f"{i}_0.npy", LOGITS[i:i + 1])
        np.save(out / f"{i}_1.npy", 1 / (1 + np.exp(-LOGITS[i:i + 1])))  # probs: not read
    return out, lab, wgt


def test_evaluate_reads_the_document_layout(tmp_path):
    result = evaluate(*write_samples(tmp_path), n_classes=6)
    assert result == pytest.approx({**EXPECTED, "n": 5}, abs=0)


def test_evaluate_refuses_a_missing_output(tmp_path):
    out, lab, wgt = write_samples(tmp_path)
    (out / "2_0.npy").unlink()
    with pytest.raises(ZooreproError, match="no model output for sample 2"):
        evaluate(out, lab, wgt, n_classes=6)


def test_evaluate_refuses_logits_of_another_width(tmp_path):
    with pytest.raises(ZooreproError, match=r"sample 0 has shape \(1, 6\).*\[rows, 7\]"):
        evaluate(*write_samples(tmp_path), n_classes=7)


def test_evaluate_needs_the_class_count_for_a_bin_output(tmp_path):
    with pytest.raises(ZooreproError, match="3_0.bin"):
        evaluate(*write_samples(tmp_path), n_classes=None)


def test_evaluate_refuses_an_empty_label_dir(tmp_path):
    with pytest.raises(ZooreproError, match="no label files"):
        evaluate(tmp_path, tmp_path, tmp_path, n_classes=6)


def make_archive(path: Path, answers: str, non_padded: str = "*tags\n*labels\n", prefix: str = "") -> Path:
    """A model archive as allennlp writes it: weights first, then the vocabulary folder."""
    with tarfile.open(path, "w:gz") as tar:
        for name, text in (("weights.th", "x" * 1000), ("vocabulary/non_padded_namespaces.txt", non_padded),
                           ("vocabulary/answers.txt", answers)):
            data = text.encode()
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_answer_vocab_size_counts_as_allennlp(tmp_path):
    answers = "@@UNKNOWN@@\nyes\nno\n2\nred\n"
    assert answer_vocab_size(make_archive(tmp_path / "a.tar.gz", answers)) == 6  # + @@PADDING@@
    assert answer_vocab_size(make_archive(tmp_path / "b.tar.gz", answers, prefix="./")) == 6
    assert answer_vocab_size(make_archive(tmp_path / "c.tar.gz", answers.rstrip("\n"))) == 6
    assert answer_vocab_size(make_archive(tmp_path / "d.tar.gz", answers, non_padded="*tags\nanswers\n")) == 5
    with pytest.raises(ZooreproError, match="OOV"):
        answer_vocab_size(make_archive(tmp_path / "e.tar.gz", "yes\nno\n"))


def test_answer_vocab_size_refuses_an_archive_without_answers(tmp_path):
    with tarfile.open(tmp_path / "f.tar.gz", "w:gz"):
        pass
    with pytest.raises(ZooreproError, match="vocabulary/answers.txt"):
        answer_vocab_size(tmp_path / "f.tar.gz")


def run_postprocess(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zoorepro.vilbert.postprocess", *args],
                          capture_output=True, text=True)


def test_postprocess_cli_writes_metrics_and_measurements(tmp_path):
    out, lab, wgt = write_samples(tmp_path)
    archive = make_archive(tmp_path / "vilbert.tar.gz", "@@UNKNOWN@@\nyes\nno\n2\nred\n")
    proc = run_postprocess(f"--archive_file={archive}", f"--result_dir={out}", f"--label_dir={lab}",
                           f"--label_weight_dir={wgt}", "--out", str(tmp_path / "m.json"),
                           "--measurements", str(tmp_path / "r.json"), "--precision", "fp32")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "m.json").read_text()) == pytest.approx({**EXPECTED, "n": 5}, abs=0)
    records = json.loads((tmp_path / "r.json").read_text())
    assert [(r["metric"], r["kind"], r["unit"], r["batch_size"], r["precision"]) for r in records] == [
        (m, "accuracy", "fraction", None, "fp32") for m in ("precision", "recall", "fscore", "vqa_score")]
    assert [r["value"] for r in records] == pytest.approx([0.75, 0.5, 0.6, 0.6])


def test_postprocess_cli_refuses_a_vocab_that_does_not_match_the_logits(tmp_path):
    out, lab, wgt = write_samples(tmp_path)
    archive = make_archive(tmp_path / "vilbert.tar.gz", "@@UNKNOWN@@\nyes\nno\n")  # 4 classes, logits have 6
    proc = run_postprocess(f"--archive_file={archive}", f"--result_dir={out}", f"--label_dir={lab}",
                           f"--label_weight_dir={wgt}", "--out", str(tmp_path / "m.json"))
    assert proc.returncode == 2
    assert "[rows, 4]" in proc.stderr
    assert not (tmp_path / "m.json").exists()


def test_measurement_records_follow_the_design():
    records = measurement_records({**EXPECTED, "n": 5}, "fp16", ["outputs/x", "labels", "label_weights"])
    assert {tuple(sorted(r.to_dict())) for r in records} == {
        ("batch_size", "kind", "lineage", "metric", "note", "precision", "raw", "unit", "value")}
    assert [r.metric for r in records] == ["precision", "recall", "fscore", "vqa_score"]
    assert all(r.raw == ("outputs/x", "labels", "label_weights") and "5 samples" in r.note and r.kind == "accuracy"
               and r.batch_size is None and r.precision == "fp16" for r in records)


def test_matches_allennlp_on_random_batches(patched_src):
    """allennlp's own metric classes (from the patched 2.10.1 tree) against ours, batch by batch."""
    import torch
    from allennlp.training.metrics.fbeta_multi_label_measure import F1MultiLabelMeasure
    from allennlp_models.vision.metrics.vqa import VqaMeasure

    f1_cls, vqa_cls = F1MultiLabelMeasure, VqaMeasure
    theirs_f1, theirs_vqa = f1_cls(average="micro"), vqa_cls()
    ours_f1, ours_vqa = F1MultiLabelMicro(), VqaScore()
    rng = np.random.default_rng(0)
    for _ in range(20):
        logits = rng.normal(-1.0, 1.5, (8, 40)).astype(np.float32)
        logits[rng.random(8) < 0.2] = 0.0
        labels = rng.integers(0, 40, (8, 4))
        weights = rng.choice(np.array([0, 1 / 3, 2 / 3, 1], dtype=np.float32), (8, 4))
        target = weighted_labels(labels, weights, 40)
        column_mask = torch.ones(8, 40, dtype=torch.bool)
        column_mask[:, :2] = False
        theirs_f1(torch.from_numpy(logits), torch.from_numpy(target), column_mask)
        theirs_vqa(torch.from_numpy(logits), torch.from_numpy(labels), torch.from_numpy(weights))
        ours_f1.update(logits, target)
        ours_vqa.update(logits, labels, weights)
    assert ours_f1.result() == theirs_f1.get_metric()
    assert ours_vqa.result() == pytest.approx(theirs_vqa.get_metric()["score"], rel=1e-12)
