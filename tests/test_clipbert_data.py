"""ANetQA's QA files through the document's aux_csv, aux_jsonl and eval_res steps
(zoorepro/clipbert/): exact file formats, the taxonomy scores computed by hand, one clear error per
bad input with nothing written. With ZOOREPRO_ANETQA_CODE pointing at a checkout of
MILVLG/anetqa-code, the upstream scripts run on the same files and must print/write the same."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from zoorepro.clipbert.aux_csv import aux_csv
from zoorepro.clipbert.aux_jsonl import aux_jsonl
from zoorepro.clipbert.eval_res import measurements, report_lines, score
from zoorepro.errors import ZooreproError

A, B, C, D, E = (f"v_{c * 11}" for c in "abcde")


def qa(video: str, n: int, answer: str | None, structure: str, semantics: str, skills: list[str], kind: str) -> dict:
    record = {"question": f"question {n} about {video}?", "qa_id": f"{video}#attrWhat#{n}", "video_id": video[2:],
              "frame_ids": [], "object_ids": [], "attribute_type": "color", "step": 1, "program": [],
              "taxonomy": {"question_type": "attrWhat", "question structures": structure,
                           "question semantics": semantics, "reasoning skills": skills, "answer types": kind}}
    if answer is not None:
        record["answer"] = answer
    return record


def write_dataset(root: Path) -> Path:
    (root / "qa").mkdir(parents=True)
    (root / "meta").mkdir()
    train = [qa(A, 1, "white", "query", "attribute", ["object-attribute"], "open"),
             qa(A, 2, "yes", "verify", "object", ["exist"], "binary"),
             qa(B, 1, "dog", "query", "object", ["object-attribute"], "open")]
    val = [qa(C, 1, "red", "query", "attribute", ["object-attribute", "superlative"], "open"),
           qa(C, 2, "no", "verify", "object", ["exist"], "binary"),
           qa(D, 1, "blue", "query", "attribute", ["superlative"], "open"),
           qa(D, 2, "yes", "verify", "attribute", ["exist", "superlative"], "binary")]
    test = [qa(E, 1, None, "query", "object", ["exist"], "open")]
    for name, records in (("qa_train.json", train), ("qa_val.json", val), ("q_test.json", test)):
        (root / "qa" / name).write_text(json.dumps(records))
    for split, videos in (("train", [B, A, "v_zzzzzzzzzzz"]), ("val", [D, C]), ("test", [E])):
        (root / "meta" / f"video_{split}.json").write_text(json.dumps(videos))
    return root


@pytest.fixture
def dataset(tmp_path) -> Path:
    return write_dataset(tmp_path / "dataset")


def test_aux_csv_writes_upstreams_four_files_video_by_video(dataset, tmp_path, capsys):
    counts = aux_csv(dataset / "qa", dataset / "meta", tmp_path / "csv")
    assert counts == {"train_val": 7, "train": 3, "val": 4, "test": 1}
    assert sorted(p.name for p in (tmp_path / "csv").iterdir()) == [
        "data_test.csv", "data_train.csv", "data_train_val.csv", "data_val.csv"]
    assert (tmp_path / "csv/data_val.csv").read_text() == (
        ",key,question,answer,vid_id,gif_name,description\n"
        f"0,{D}#attrWhat#1,question 1 about {D}?,blue,{D},{D},none\n"
        f"1,{D}#attrWhat#2,question 2 about {D}?,yes,{D},{D},none\n"
        f"2,{C}#attrWhat#1,question 1 about {C}?,red,{C},{C},none\n"
        f"3,{C}#attrWhat#2,question 2 about {C}?,no,{C},{C},none\n")
    assert (tmp_path / "csv/data_test.csv").read_text().splitlines()[1] == f"0,{E}#attrWhat#1,question 1 about {E}?,,{E},{E},none"
    train_val = (tmp_path / "csv/data_train_val.csv").read_text().splitlines()
    assert [line.split(",")[1] for line in train_val[1:]] == [
        f"{B}#attrWhat#1", f"{A}#attrWhat#1", f"{A}#attrWhat#2", f"{D}#attrWhat#1", f"{D}#attrWhat#2",
        f"{C}#attrWhat#1", f"{C}#attrWhat#2"]
    assert "1 train videos without questions skipped" in capsys.readouterr().out


def test_aux_jsonl_lines_are_pandas_records_with_null_test_answers(dataset, tmp_path):
    aux_csv(dataset / "qa", dataset / "meta", tmp_path / "csv")
    aux_jsonl(tmp_path / "csv", tmp_path / "txt")
    assert sorted(p.name for p in (tmp_path / "txt").iterdir()) == ["data_test.jsonl", "data_train.jsonl", "data_val.jsonl"]
    first = (tmp_path / "txt/data_train.jsonl").read_text().splitlines()[0]
    assert first == ('{"Unnamed: 0":0,"key":"' + B + '#attrWhat#1","question":"question 1 about ' + B +
                     '?","answer":"dog","vid_id":"' + B + '","gif_name":"' + B + '","description":"none"}')
    test = [json.loads(line) for line in (tmp_path / "txt/data_test.jsonl").read_text().splitlines()]
    assert [t["answer"] for t in test] == [None]


def test_an_answer_pandas_reads_as_missing_is_an_error(dataset, tmp_path):
    records = json.loads((dataset / "qa/qa_train.json").read_text())
    records[1]["answer"] = "NA"
    (dataset / "qa/qa_train.json").write_text(json.dumps(records))
    aux_csv(dataset / "qa", dataset / "meta", tmp_path / "csv")
    with pytest.raises(ZooreproError, match=f"answer value.*{A}#attrWhat#2"):
        aux_jsonl(tmp_path / "csv", tmp_path / "txt")
    assert not (tmp_path / "txt").exists()


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d["val_meta"].append(B), f"video {B} of meta/video_val.json has no question"),
    (lambda d: d["val"][0]["taxonomy"].pop("answer types"), "taxonomy lacks 'answer types'"),
    (lambda d: d["val"][1].pop("answer"), "missing or empty answer"),
    (lambda d: d["val"].append(dict(d["val"][0])), "appears twice"),
])
def test_bad_qa_input_is_one_error_and_nothing_is_written(dataset, tmp_path, edit, message):
    data = {"val": json.loads((dataset / "qa/qa_val.json").read_text()),
            "val_meta": json.loads((dataset / "meta/video_val.json").read_text())}
    edit(data)
    (dataset / "qa/qa_val.json").write_text(json.dumps(data["val"]))
    (dataset / "meta/video_val.json").write_text(json.dumps(data["val_meta"]))
    with pytest.raises(ZooreproError, match=message):
        if "taxonomy" in message:
            score(dataset / "qa/qa_val.json", tmp_path / "unused.json")
        else:
            aux_csv(dataset / "qa", dataset / "meta", tmp_path / "csv")
    assert not (tmp_path / "csv").exists()


def results(tmp_path: Path, answers: dict[str, str], extra: list | None = None) -> Path:
    path = tmp_path / "results_all.json"
    path.write_text(json.dumps([{"question_id": k, "answer": v} for k, v in answers.items()] + (extra or [])))
    return path


def test_eval_res_scores_each_taxonomy_category_by_hand(dataset, tmp_path):
    # right: C#1 (red), D#2 (yes); wrong: C#2, D#1
    answers = {f"{C}#attrWhat#1": "red", f"{C}#attrWhat#2": "yes", f"{D}#attrWhat#1": "Blue",
               f"{D}#attrWhat#2": "yes"}
    path = results(tmp_path, answers, extra=[{"question_id": f"{C}#attrWhat#1", "answer": "red"}])  # padding duplicate
    result = score(dataset / "qa/qa_val.json", path)
    assert report_lines(result) == [
        "query 0.5", "verify 0.5",                       # C#1 D#1 | C#2 D#2
        "attribute 0.6666666666666666", "object 0.0",    # C#1 D#1 D#2 | C#2
        "object-attribute 1.0", "superlative 0.6666666666666666", "exist 0.5",
        "open 0.5", "binary 0.5", "overall 0.5"]
    rows = {m.metric: m.value for m in measurements(result, ("a", "b"))}
    assert rows["accuracy"] == 50.0 and rows["accuracy skill: superlative"] == pytest.approx(200 / 3)


@pytest.mark.parametrize(("answers", "extra", "message"), [
    ({f"{C}#attrWhat#1": "red"}, [], "3 of 4 val questions have no answer"),
    (None, [{"question_id": f"{A}#attrWhat#1", "answer": "x"}], "1 answers to questions not in"),
    (None, [{"question_id": f"{C}#attrWhat#1", "answer": "blue"}], "answered twice"),
    (None, [{"question_id": 3, "answer": "x"}], "expected {question_id"),
])
def test_eval_res_refuses_incomplete_or_inconsistent_results(dataset, tmp_path, answers, extra, message):
    complete = {f"{v}#attrWhat#{n}": "red" for v in (C, D) for n in (1, 2)}
    with pytest.raises(ZooreproError, match=message):
        score(dataset / "qa/qa_val.json", results(tmp_path, answers or complete, extra))


def test_the_steps_run_as_scripts_and_errors_are_one_line(dataset, tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", *map(str, a)], capture_output=True, text=True)  # noqa: E731
    done = run("zoorepro.clipbert.aux_csv", "--qa_dir", dataset / "qa", "--meta_dir", dataset / "meta",
               "--out_dir", tmp_path / "csv")
    assert done.returncode == 0 and "data_val.csv: 4 questions" in done.stdout
    failed = run("zoorepro.clipbert.eval_res", "--qa_val", dataset / "qa/qa_val.json", "--res_path", tmp_path / "none.json")
    assert failed.returncode == 2 and failed.stderr.startswith("error: ClipBERT results:") and len(failed.stderr.splitlines()) == 1


UPSTREAM = os.environ.get("ZOOREPRO_ANETQA_CODE")


@pytest.mark.skipif(not UPSTREAM, reason="set ZOOREPRO_ANETQA_CODE to a checkout of MILVLG/anetqa-code to compare "
                                         "aux_csv/aux_jsonl/eval_res with its clipbert/ scripts")
def test_conformance_with_a_user_supplied_anetqa_code_checkout(dataset, tmp_path):
    """Upstream's scripts read ../dataset/qa (aux_csv, with the test file named qa_test.json) and
    ../dataset/anetqa/qa_val.json (eval_res, res_path set here) from their working folder."""
    scripts = Path(UPSTREAM) / "clipbert"
    work = tmp_path / "up" / "clipbert"
    work.mkdir(parents=True)
    shutil.copytree(dataset, tmp_path / "up" / "dataset")
    shutil.copy(dataset / "qa/q_test.json", tmp_path / "up/dataset/qa/qa_test.json")
    (tmp_path / "up/dataset/anetqa").mkdir()
    shutil.copy(dataset / "qa/qa_val.json", tmp_path / "up/dataset/anetqa/qa_val.json")
    for script in ("aux_csv.py", "aux_jsonl.py"):
        subprocess.run([sys.executable, str(scripts / script)], cwd=work, check=True, capture_output=True)
    aux_csv(dataset / "qa", dataset / "meta", tmp_path / "csv")
    aux_jsonl(tmp_path / "csv", tmp_path / "txt")
    for name in ("data_train_val.csv", "data_train.csv", "data_val.csv", "data_test.csv"):
        assert (work / name).read_bytes() == (tmp_path / "csv" / name).read_bytes(), name
    for name in ("data_train.jsonl", "data_val.jsonl", "data_test.jsonl"):
        assert (work / name).read_bytes() == (tmp_path / "txt" / name).read_bytes(), name
    answers = results(tmp_path, {f"{C}#attrWhat#1": "red", f"{C}#attrWhat#2": "yes", f"{D}#attrWhat#1": "blue",
                                 f"{D}#attrWhat#2": "no"})
    source, n = re.subn(r'res_path\s*=\s*""', f"res_path = {str(answers)!r}", (scripts / "eval_res.py").read_text(), 1)
    assert n == 1, "eval_res.py no longer has upstream's empty res_path to fill in"
    (work / "eval_res_here.py").write_text(source)
    upstream = subprocess.run([sys.executable, "eval_res_here.py"], cwd=work, check=True, capture_output=True, text=True)
    assert upstream.stdout.split() == " ".join(report_lines(score(dataset / "qa/qa_val.json", answers))).split()
