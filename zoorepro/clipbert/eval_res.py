"""The document's `python eval_res.py` (anetqa-code clipbert/eval_res.py): ClipBERT's val answers
scored against ANetQA's qa_val.json, overall and per category of the question taxonomy.

Printed as upstream: one line `<category> <fraction>` per question structure, question semantics,
reasoning skill (a question counts for each of its skills) and answer type, categories in order of
first appearance in qa_val.json, then `overall <fraction>`; an answer is right when it equals the
ground-truth string exactly. With --out, the same numbers as table measurements in percent
(`accuracy`, `accuracy <group>: <category>`).

Fixed openly: the results file is an argument (upstream's res_path is an empty string to edit);
a val question without an answer, an answer to a question not in val, or two different answers to
one question are one error each (upstream: a KeyError, a KeyError, the last one wins; identical
duplicates, which the distributed sampler's padding makes, count once as upstream's dict does).

Usage: python -m zoorepro.clipbert.eval_res --qa_val dataset/qa/qa_val.json
         --res_path result/results_data_val/step_N_16_mean/results_all.json [--out eval.measurements.json]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from zoorepro.cli import run_step
from zoorepro.clipbert.anetqa import TAXONOMY, read_qa
from zoorepro.errors import ZooreproError
from zoorepro.readers import load_json

GROUPS = {"question structures": "structure", "question semantics": "semantics",
          "reasoning skills": "skill", "answer types": "answer type"}


def read_results(path: Path) -> dict[str, str]:
    items = load_json(path, "ClipBERT results")
    if not isinstance(items, list):
        raise ZooreproError(f"{path}: expected a list of {{question_id, answer}}")
    answers: dict[str, str] = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("question_id"), str) \
                or not isinstance(item.get("answer"), str):
            raise ZooreproError(f"{path} item {i}: expected {{question_id: <qa_id>, answer: <string>}}, got {item!r}")
        qid, answer = item["question_id"], item["answer"]
        if answers.get(qid, answer) != answer:
            raise ZooreproError(f"{path}: question {qid} answered twice, {answers[qid]!r} and {answer!r}")
        answers[qid] = answer
    return answers


def find_results(path: Path) -> Path:
    """results_all.json itself, or the one results_<txt_db>/step_*/results_all.json under an inference
    output folder (the pipeline's: its step is `last` until the run)."""
    path = Path(path)
    if not path.is_dir():
        return path
    found = sorted(path.glob("results_*/step_*/results_all.json"))
    if len(found) != 1:
        raise ZooreproError(f"{path}: expected one results_*/step_*/results_all.json, found {len(found)}")
    return found[0]


def score(qa_val: Path, res_path: Path) -> dict:
    """{"overall": fraction, "n": count, "groups": {taxonomy key: {category: (right, n)}}}."""
    res_path = find_results(res_path)
    questions = read_qa(qa_val, "val", taxonomy=True)
    answers = read_results(res_path)
    wanted = {q["qa_id"] for q in questions}
    unanswered = [q["qa_id"] for q in questions if q["qa_id"] not in answers]
    if unanswered:
        raise ZooreproError(f"{res_path}: {len(unanswered)} of {len(questions)} val questions have no answer "
                            f"(first: {', '.join(unanswered[:3])})")
    foreign = sorted(set(answers) - wanted)
    if foreign:
        raise ZooreproError(f"{res_path}: {len(foreign)} answers to questions not in {qa_val} "
                            f"(first: {', '.join(foreign[:3])})")
    groups: dict[str, dict[str, list[int]]] = {key: {} for key in TAXONOMY}
    right_total = 0
    for q in questions:
        right = int(answers[q["qa_id"]] == q["answer"])
        right_total += right
        for key in TAXONOMY:
            names = q["taxonomy"][key]
            for name in (names if isinstance(names, list) else [names]):
                tally = groups[key].setdefault(name, [0, 0])
                tally[0] += right
                tally[1] += 1
    return {"overall": right_total / len(questions), "n": len(questions),
            "groups": {k: {c: tuple(v) for c, v in cats.items()} for k, cats in groups.items()}}


def report_lines(result: dict) -> list[str]:
    lines = [f"{name} {right / n}" for key in TAXONOMY for name, (right, n) in result["groups"][key].items()]
    return lines + [f"overall {result['overall']}"]


def measurements(result: dict, raw: tuple[str, ...], precision: str = "") -> list:
    from zoorepro.measurements import Measurement

    common = {"kind": "accuracy", "unit": "percent", "precision": precision, "raw": raw}
    records = [Measurement("accuracy", value=100 * result["overall"], note=f"{result['n']} val questions", **common)]
    for key in TAXONOMY:
        for name, (right, n) in result["groups"][key].items():
            records.append(Measurement(f"accuracy {GROUPS[key]}: {name}", value=100 * right / n,
                                       note=f"{n} questions", **common))
    return records


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--qa_val", required=True, type=Path, help="ANetQA's qa_val.json")
    ap.add_argument("--res_path", required=True, type=Path, help="ClipBERT's results_all.json for the val split, "
                    "or the inference output folder holding one")
    ap.add_argument("--precision", default="")
    ap.add_argument("--out", type=Path, help="write the numbers as measurements (JSON)")
    args = ap.parse_args()
    result = score(args.qa_val, args.res_path)
    for line in report_lines(result):
        print(line)
    if args.out:
        from zoorepro.measurements import write_measurements
        raw = (str(args.qa_val), str(find_results(args.res_path)))
        write_measurements(args.out, measurements(result, raw, args.precision))
    return 0


if __name__ == "__main__":
    run_step(main)
