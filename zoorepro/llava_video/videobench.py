"""Video-Bench's formats as document 001 uses them, in one place: the subsets, the Eval_QA and
ANSWER.json files, the exact prompt strings of MindIE-LLM's `videobench_utils.process_qs`, the
GPU/NPU prompt joins and the answer cut, and Video-Bench's own score weights.

Why one module: sampling (extract_dataset), both inference steps (llava_gpu, run_pa_videobench), the
mini generator's eager reference (plant.py) and the judging steps must agree on these strings to
the byte (a missing space changes the tokens and so the answers), and every reader of a user's
file should fail the same way, with one message naming the file, subset and key.

The strings are written from the facts in ../shared/upstream/llava_clipbert.md §1.2-1.4 and §2 (no
upstream code is copied).
"""
from __future__ import annotations

from pathlib import Path

from zoorepro.errors import ZooreproError
from zoorepro.readers import load_json

# The 13 subsets in the order of upstream's `select_data` dict (extract_dataset merges them in this
# order, so a later subset overwrites an earlier one's equal question id in the upstream mode).
SUBSETS = ("Ucfcrime", "Youcook2", "TVQA", "MSVD", "MSRVTT", "Driving-decision-making", "NBA", "SQA3D",
           "Driving-exam", "MV", "MOT", "ActivityNet", "TGIF")
# MSVD's videos are AVI; every other subset ships MP4.
VIDEO_EXT = {name: (".avi" if name == "MSVD" else ".mp4") for name in SUBSETS}

QA_SUFFIX = "_QA_new.json"  # Eval_QA/<Subset>_QA_new.json
EVAL_QA_DIR = "Eval_QA"
EVAL_VIDEO_DIR = "Eval_video"
SAMPLING_DATA = "sampling_data"  # the sampled subset's name (llava_gpu --dataset_name)
SAMPLED_QA = "sampling_datasets_QA_new.json"
SAMPLED_ANSWERS = "sampling_answer.json"

# The instruction both inference scripts append, and the marker the GPU script splits and cuts at.
PROMPT_SUFFIX = ("Please respond with only the corresponding options and do not provide any explanations "
                 "or additional information.")
ASSISTANT = "ASSISTANT:"
NPU_PROMPT_HEAD = "USER: <video>\n"

LETTERS = "ABCDEF"  # Video-Bench has at most six options (MOT)
_COUNT_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}


def _options(choices: dict, n: int) -> str:
    return " ".join(f"{letter}.{choices[letter]}" for letter in LETTERS[:n])


def choices_text(choices: dict) -> str:
    """What process_qs appends to the question for a question's `choices`, exactly as upstream
    writes it per number of options. The joins differ by count (upstream's backslash-continued
    literals): six options start with "Choices: " and end without a space; five, three and two end
    with a space after "is:"; four ends without one; one option gets nothing appended."""
    n = len(choices)
    if n == 1:
        return ""
    if n not in _COUNT_WORDS:
        raise ZooreproError(f"a Video-Bench question has 1 to 6 options, this one has {n}: {sorted(choices)}")
    letters = ", ".join(LETTERS[:n])
    among = f" \n Among the {_COUNT_WORDS[n]} options {letters} above, the one closest to the correct answer is:"
    head = "Choices: " if n == 6 else " "
    tail = "" if n in (4, 6) else " "
    return head + _options(choices, n) + among + tail


def process_qs(item: dict, eval_video_root: str | Path, question: str = "") -> tuple[str, str]:
    """upstream `process_qs(item, eval_video_root, question_prefix)`: (question_prefix +
    item['question'] + the per-count choices text, the video's path joined to eval_video_root)."""
    import os

    question = question + item["question"] + choices_text(item["choices"])
    return question, os.path.join(str(eval_video_root), item["vid_path"])


def gpu_prompt(template_text: str) -> str:
    """The GPU script's prompt from the chat template's output: everything before the first
    "ASSISTANT:" (the whole text when there is none, as for the ChatML and [INST] templates), then
    the suffix and " ASSISTANT:", joined without a space (the vicuna template's text already ends
    with one)."""
    return template_text.split(ASSISTANT)[0] + PROMPT_SUFFIX + " " + ASSISTANT


def gpu_conversation(question: str) -> list[dict]:
    """The conversation the GPU script gives apply_chat_template: text first, then the video (the
    templates render videos before text regardless)."""
    return [{"role": "user", "content": [{"type": "text", "text": question}, {"type": "video"}]}]


def npu_prompt(question: str) -> str:
    """MindIE's llava_videobench prompt: always the vicuna form, whatever the checkpoint."""
    return NPU_PROMPT_HEAD + question + " " + PROMPT_SUFFIX + " " + ASSISTANT


def cut_answer(decoded: str) -> str:
    """The GPU script's answer: the text after the first "ASSISTANT:"; when there is none, str.find
    gives -1 and upstream slices from index -1 + len("ASSISTANT:") = 9."""
    return decoded[decoded.find(ASSISTANT) + len(ASSISTANT):]


# --------------------------------------------------------------------------------------------
# files


def read_json(path: Path, what: str) -> dict:
    """A JSON object file of this model's formats (Eval_QA, ANSWER.json, the answers the inference
    steps write), or one error naming `what` and the file: missing, not JSON, not an object."""
    data = load_json(path, what)
    if not isinstance(data, dict):
        raise ZooreproError(f"{what} {path}: expected a JSON object, got {type(data).__name__}")
    return data


def validate_item(item, where: str) -> None:
    """One Eval_QA question: vid_path, question, video_id and 1-6 options keyed A.. in order."""
    if not isinstance(item, dict):
        raise ZooreproError(f"{where}: a question must be an object, got {type(item).__name__}")
    for key in ("vid_path", "question", "choices", "video_id"):
        if key not in item:
            raise ZooreproError(f"{where}: question has no {key!r}")
    if not isinstance(item["vid_path"], str) or not isinstance(item["question"], str):
        raise ZooreproError(f"{where}: vid_path and question must be strings")
    choices = item["choices"]
    if not isinstance(choices, dict) or not 1 <= len(choices) <= 6 or \
            list(choices) != list(LETTERS[:len(choices)]):
        raise ZooreproError(f"{where}: choices must be 1-6 options keyed A, B, ... in order, got "
                            f"{list(choices) if isinstance(choices, dict) else choices!r}")


def qa_path(eval_qa_root: str | Path, subset: str) -> Path:
    """`<Eval_QA_root>/Eval_QA/<Subset>_QA_new.json`."""
    return Path(eval_qa_root) / EVAL_QA_DIR / f"{subset}{QA_SUFFIX}"


def load_qa_file(path: Path, subset: str) -> dict[str, dict]:
    """One subset's questions {q_id: item}, validated."""
    data = read_json(path, f"Eval_QA file of {subset}")
    if not data:
        raise ZooreproError(f"{path}: expected a non-empty object of questions keyed by question id")
    for q_id, item in data.items():
        validate_item(item, f"{path} [{subset}/{q_id}]")
    return data


def load_eval_qa(eval_qa_root: str | Path, subsets=SUBSETS) -> dict[str, dict[str, dict]]:
    """{subset: {q_id: item}} for every subset (all must exist), in `subsets` order."""
    return {name: load_qa_file(qa_path(eval_qa_root, name), name) for name in subsets}


def load_answers(path: str | Path, required: dict[str, list[str]] | None = None) -> dict[str, dict]:
    """ANSWER.json {Subset: {q_id: {"answer": letter, ...}}}. `required` ({subset: [q_id]}): every
    subset and question that must have an answer; a missing one is an error naming file, subset
    and key. Answers must be one letter A-F."""
    path = Path(path)
    data = read_json(path, "answer file")  # {subset: {question id: {'answer': letter}}}
    for subset, q_ids in (required or {}).items():
        if subset not in data:
            raise ZooreproError(f"{path} has no answers for subset {subset!r} (it has: {', '.join(sorted(data))})")
        for q_id in q_ids:
            if q_id not in data[subset]:
                raise ZooreproError(f"{path} has no answer for {subset}/{q_id}")
    for subset, entries in data.items():
        if not isinstance(entries, dict):
            raise ZooreproError(f"{path} [{subset}]: expected an object of answers keyed by question id")
        for q_id, entry in entries.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("answer"), str) \
                    or entry["answer"] not in LETTERS:
                raise ZooreproError(f"{path} [{subset}/{q_id}]: expected {{'answer': one of A-F}}, got {entry!r}")
    return data


# --------------------------------------------------------------------------------------------
# Video-Bench's score (its deleted Step3_compute_scores.py: weighted means per level, final = mean)

LEVEL_WEIGHTS = {
    "level1": {"ActivityNet": 1.0, "MSVD": 1.0, "MSRVTT": 1.0, "TGIF": 1.0, "Youcook2": 1.0, "Ucfcrime": 1.0,
               "MOT": 0.5},
    "level2": {"TVQA": 1.0, "MV": 1.0, "NBA": 1.0},
    "level3": {"Driving-exam": 0.5, "Driving-decision-making": 1.0, "SQA3D": 1.0},
}


def videobench_score(per_subset_acc: dict[str, float]) -> dict:
    """Video-Bench's levels and final score from per-subset accuracies (any unit; the result has
    the same). A level is the weighted mean of its subsets' accuracies, final the mean of the
    three levels. Subsets absent from `per_subset_acc` (a sample need not hold all 13): the level's
    weights are renormalised over the present ones and a level with none present is left out of
    the final mean; `missing` and `renormalised` say so. Unknown subset names are an error."""
    unknown = sorted(set(per_subset_acc) - set(SUBSETS))
    if unknown:
        raise ZooreproError(f"not Video-Bench subsets: {', '.join(unknown)}")
    levels: dict[str, float | None] = {}
    for level, weights in LEVEL_WEIGHTS.items():
        present = {s: w for s, w in weights.items() if s in per_subset_acc}
        total = sum(present.values())
        levels[level] = (sum(w * float(per_subset_acc[s]) for s, w in present.items()) / total) if present else None
    counted = [v for v in levels.values() if v is not None]
    if not counted:
        raise ZooreproError("no Video-Bench subset accuracies given")
    missing = [s for s in SUBSETS if s not in per_subset_acc]
    return {"levels": levels, "final": sum(counted) / len(counted), "missing": missing,
            "renormalised": bool(missing),
            "note": ("all 13 subsets present" if not missing else
                     f"weights renormalised over the present subsets; missing: {', '.join(missing)}"
                     + ("; levels without any subset left out of the final mean"
                        if len(counted) < len(levels) else ""))}
