"""ZOOREPRO STAND-IN for MindIE-LLM's llava_videobench/videobench_utils.py: select_data and
process_qs, written here from the documented strings (../shared/upstream/llava_clipbert.md §1.2),
independently of zoorepro's own videobench.py, so a test can compare the two."""
import os

NAMES = ["Ucfcrime", "Youcook2", "TVQA", "MSVD", "MSRVTT", "Driving-decision-making", "NBA", "SQA3D",
         "Driving-exam", "MV", "MOT", "ActivityNet", "TGIF"]
_WORD = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}


def select_data(eval_qa_root):
    files = {"sampling_data": os.path.join(eval_qa_root, "Eval_QA", "sampling_datasets_QA_new.json")}
    files.update({n: os.path.join(eval_qa_root, "Eval_QA", n + "_QA_new.json") for n in NAMES})
    return files


def process_qs(item, eval_video_root, question=""):
    question += item["question"]
    ch = item["choices"]
    n = len(ch)
    if n >= 2:
        keys = "ABCDEF"[:n]
        opts = " ".join(k + "." + ch[k] for k in keys)
        lead = "Choices: " if n == 6 else " "
        end = " " if n in (2, 3, 5) else ""
        question += (lead + opts + " \n Among the " + _WORD[n] + " options " + ", ".join(keys)
                     + " above, the one closest to the correct answer is:" + end)
    return question, os.path.join(eval_video_root, item["vid_path"])
