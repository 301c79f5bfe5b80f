"""ANetQA's files (MILVLG/anetqa-code dataset/README.md): `qa/qa_{train,val}.json` and `qa/q_test.json`
(lists of QA records), `meta/video_{train,val,test}.json` (lists of video ids). Readers that check
what the document's steps rely on and say which record of which file breaks it."""
from __future__ import annotations

from pathlib import Path

from zoorepro.errors import ZooreproError
from zoorepro.readers import load_json

SPLITS = ("train", "val", "test")
# The dataset names the test file q_test.json (no answers); the document's aux_csv.py reads qa_test.json.
QA_FILES = {"train": "qa_train.json", "val": "qa_val.json", "test": "q_test.json"}
TAXONOMY = ("question structures", "question semantics", "reasoning skills", "answer types")
VIDEO_ID_LEN = 13  # "v_" + the 11-character YouTube id: aux_csv takes qa_id[:13]


def video_id(qa_id: str) -> str:
    return qa_id[:VIDEO_ID_LEN]


def check_record(record, where: str, answered: bool, taxonomy: bool) -> None:
    if not isinstance(record, dict):
        raise ZooreproError(f"{where}: expected an object, got {type(record).__name__}")
    needed = ["qa_id", "question"] + (["answer"] if answered else [])
    missing = [k for k in needed if not isinstance(record.get(k), str) or not record.get(k)]
    if missing:
        raise ZooreproError(f"{where}: missing or empty {', '.join(missing)}")
    qa_id = record["qa_id"]
    if not qa_id.startswith("v_") or len(qa_id) <= VIDEO_ID_LEN or qa_id[VIDEO_ID_LEN] != "#":
        raise ZooreproError(f"{where}: qa_id {qa_id!r} is not '<v_ + 11-character video id>#...'")
    if taxonomy:
        fields = record.get("taxonomy")
        if not isinstance(fields, dict):
            raise ZooreproError(f"{where} ({qa_id}): no taxonomy")
        absent = [k for k in TAXONOMY if k not in fields]
        if absent:
            raise ZooreproError(f"{where} ({qa_id}): taxonomy lacks {', '.join(repr(k) for k in absent)}")
        skills = fields["reasoning skills"]
        if not isinstance(skills, list) or not all(isinstance(s, str) for s in skills):
            raise ZooreproError(f"{where} ({qa_id}): taxonomy 'reasoning skills' must be a list of names")
        for key in ("question structures", "question semantics", "answer types"):
            if not isinstance(fields[key], str):
                raise ZooreproError(f"{where} ({qa_id}): taxonomy {key!r} must be a name")


def read_qa(path: Path, split: str, taxonomy: bool = False) -> list[dict]:
    """A split's QA list; every record checked (test records carry no answer)."""
    records = load_json(path, f"ANetQA {split} questions")
    if not isinstance(records, list):
        raise ZooreproError(f"ANetQA {split} questions: {path} is not a list")
    seen = set()
    for i, record in enumerate(records):
        check_record(record, f"{path} record {i}", answered=split != "test", taxonomy=taxonomy)
        if record["qa_id"] in seen:
            raise ZooreproError(f"{path} record {i}: qa_id {record['qa_id']!r} appears twice")
        seen.add(record["qa_id"])
    return records


def read_video_list(path: Path, split: str) -> list[str]:
    ids = load_json(path, f"ANetQA {split} video list")
    if not isinstance(ids, list) or not all(isinstance(v, str) and len(v) == VIDEO_ID_LEN for v in ids):
        raise ZooreproError(f"ANetQA {split} video list: {path} is not a list of {VIDEO_ID_LEN}-character video ids")
    if len(set(ids)) != len(ids):
        raise ZooreproError(f"ANetQA {split} video list: {path} names a video twice")
    return ids
