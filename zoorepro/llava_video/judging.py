"""How an answer string becomes a choice letter: the document's reading (its
llava_video_precision_test.py, exactly, bugs included) and the corrected reading.

Document reading (../shared/upstream/llava_clipbert.md §1.5):
* the answer is `output_sequence[0]`: the GPU file holds a list, so that is the answer; MindIE's NPU
  file holds a plain string, so `[0]` is its first character;
* double spaces collapsed (ten passes), `</s>` and `<|im_end|>` removed;
* shorter than 5 characters: the first of A, B, C, D, E the text contains (alphabetical, not by
  position); else the first of `is A`..`is E` it contains; else the first of ` A.`..` E.`;
  nothing found: the question is left out (not counted wrong); F is never recognised;
* the correct answers are flattened over subsets into one dict keyed by question id (later subsets
  overwrite equal ids), each the first of A..E its `answer` contains (F: never right);
* accuracy = right / questions parsed in BOTH files (ZeroDivisionError upstream when none: here
  an error that says so).

Corrected reading: the whole answer (a list's first item, a string as it is), letters A-F, the
earliest match by position of a bare letter, `is X`, `X.`/`X)`/`(X)`; every sampled question
counts, keyed by (subset, question id), and one that cannot be parsed is wrong.
"""
from __future__ import annotations

import re

from zoorepro.errors import ZooreproError

DOC_LETTERS = ("A", "B", "C", "D", "E")
LETTERS = ("A", "B", "C", "D", "E", "F")
SPECIAL = ("</s>", "<|im_end|>")


# ---- the document's reading -------------------------------------------------------------------


def check_answer(text: str, candidates, position: int = -1):
    """The first candidate (in list order) contained in `text`, as its character at `position`."""
    for candidate in candidates:
        if candidate in text:
            return candidate[position]
    return False


def document_letter(output_sequence):
    """The document's parse of one answer (False when it finds none)."""
    text = output_sequence[0] if len(output_sequence) else ""
    for _ in range(10):
        text = text.replace("  ", " ")
    for token in SPECIAL:
        text = text.replace(token, "")
    if len(text) < 5:
        return check_answer(text, DOC_LETTERS)
    found = check_answer(text, [f"is {x}" for x in DOC_LETTERS])
    if found:
        return found
    return check_answer(text, [f" {x}." for x in DOC_LETTERS], position=1)


def bare_id(key: str) -> str:
    """The question id as the document's files key it: qualified keys `<Subset>/<id>` lose the subset."""
    return key.rsplit("/", 1)[-1]


def document_answers(eval_file: dict) -> dict[str, str]:
    """q_id -> letter for every answer the document's reading parses (the others are absent)."""
    out = {}
    for key, item in eval_file.items():
        letter = document_letter(item["output_sequence"])
        if letter:
            out[bare_id(key)] = letter
    return out


def document_truth(sampling_answer: dict) -> dict[str, object]:
    """The document's flattened correct answers (q_id -> letter or False)."""
    truth = {}
    for subset in sampling_answer.values():
        for q_id, entry in subset.items():
            truth[q_id] = check_answer(str(entry["answer"]), DOC_LETTERS)
    return truth


def document_accuracy(npu: dict, gpu: dict, sampling_answer: dict) -> dict:
    """The document's calculate(): (gpu, npu) accuracy over questions parsed in both files."""
    npu_letters, gpu_letters = document_answers(npu), document_answers(gpu)
    truth = document_truth(sampling_answer)
    both = [q for q in truth if q in npu_letters and q in gpu_letters]
    if not both:
        raise ZooreproError("document reading: no question is parsed in both the NPU and the GPU file (the "
                            "document's script divides by zero here)")
    gpu_right = sum(gpu_letters[q] == truth[q] for q in both)
    npu_right = sum(npu_letters[q] == truth[q] for q in both)
    return {"gpu": gpu_right / len(both), "npu": npu_right / len(both), "denominator": len(both),
            "questions": len(truth), "npu_parsed": len(npu_letters), "gpu_parsed": len(gpu_letters)}


# ---- the corrected reading --------------------------------------------------------------------

_PATTERNS = (
    re.compile(r"^\s*\(?([A-F])\)?\s*[.):]?\s*$"),         # the whole answer is a letter: "C", " C.", "(C)"
    re.compile(r"\bis\s+\(?([A-F])\b"),                      # "... is C"
    re.compile(r"(?:^|\s)\(?([A-F])(?:[.)]|\s*$)"),          # " C." / "C)" / a trailing "C"
)


def corrected_letter(output_sequence) -> str | None:
    """The corrected parse of one answer, or None."""
    text = output_sequence[0] if isinstance(output_sequence, list) else output_sequence
    if not isinstance(text, str):
        raise ZooreproError(f"output_sequence must be a string or a list of strings, got {output_sequence!r}")
    for token in SPECIAL:
        text = text.replace(token, "")
    found = [(m.start(1), m.group(1)) for pattern in _PATTERNS for m in [pattern.search(text)] if m]
    return min(found)[1] if found else None


def corrected_answers(eval_file: dict) -> dict[tuple[str, str], str | None]:
    """(subset, q_id) -> letter or None, for every answer of an eval file."""
    out = {}
    for key, item in eval_file.items():
        subset = item.get("dataset")
        if not subset:
            raise ZooreproError(f"answer {key!r} has no `dataset` (the sampled QA file's subset)")
        out[(subset, bare_id(key))] = corrected_letter(item["output_sequence"])
    return out


def corrected_truth(sampling_answer: dict) -> dict[tuple[str, str], str]:
    truth = {}
    for subset, entries in sampling_answer.items():
        for q_id, entry in entries.items():
            letter = str(entry.get("answer", "")).strip()
            if letter not in LETTERS:
                raise ZooreproError(f"sampling answer {subset}/{q_id}: answer {entry.get('answer')!r} is not one of A-F")
            truth[(subset, q_id)] = letter
    return truth


def corrected_accuracy(eval_file: dict, sampling_answer: dict) -> dict:
    """Accuracy overall and per subset over every sampled question (missing or unparseable = wrong)."""
    letters, truth = corrected_answers(eval_file), corrected_truth(sampling_answer)
    extra = sorted(set(letters) - set(truth))
    if extra:
        raise ZooreproError(f"answers for questions that are not in the sample: {extra[:5]}")
    per_subset: dict[str, list[int]] = {}
    for key, want in truth.items():
        right = per_subset.setdefault(key[0], [0, 0])
        right[0] += letters.get(key) == want
        right[1] += 1
    total = sum(n for _, n in per_subset.values())
    return {"accuracy": sum(r for r, _ in per_subset.values()) / total,
            "per_subset": {s: r / n for s, (r, n) in per_subset.items()},
            "counts": {s: n for s, (_, n) in per_subset.items()},
            "unparsed": sum(1 for k in truth if letters.get(k) is None), "questions": total}


def agreement(npu: dict, gpu: dict) -> dict:
    """The share of questions both files answer with the same letter (corrected reading; a
    question either side could not parse does not agree)."""
    a, b = corrected_answers(npu), corrected_answers(gpu)
    keys = sorted(set(a) | set(b))
    same = sum(1 for k in keys if a.get(k) is not None and a.get(k) == b.get(k))
    return {"agreement": same / len(keys) if keys else 0.0, "questions": len(keys)}
