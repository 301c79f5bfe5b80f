"""The document's sampling step (数据集采样, MindIE-LLM's extract_dataset.py), fixed openly.

Why: upstream draws `random.sample(keys, nums)` unseeded from ONE dict that merges the 13 subsets'
questions keyed by bare question id, in its subset order, later subsets overwriting earlier equal
ids. On the real Video-Bench (17,036 questions -> 14,391 keys) that means Ucfcrime, NBA and
Driving-decision-making (keys "0".."N", overwritten by MV and MOT) can never be sampled, and
Youcook2 keeps 1,129 of its 2,000 questions (loses 871); a missing video is only logged (then a
NameError), and nums larger than the pool only logs, then crashes. Here:

* `--merge qualified` (default): the pool is every (subset, q_id) pair, keys `<Subset>/<q_id>`;
  `--seed` makes the draw repeatable: random.Random(seed).sample(sorted pool, nums);
* `--merge upstream`: upstream's merge and overwrite semantics, keys bare q_id, the draw
  random.Random(seed).sample(list(merged keys), nums) (merged-dict order), for fidelity studies;
* nums larger than the pool, a missing video, or two sampled videos with the same basename (they
  would overwrite each other in sampling_data/) are errors naming what, raised before anything is
  written;
* videos are copied as real files (shutil.copy2 of the resolved source, never a symlink: MindIE's
  file checks refuse links) into `{sampling_output_folder}/sampling_data/<basename>`, each
  atomically; the two JSON files are written last, atomically, so an interrupted run never leaves
  a sample that looks complete.

Outputs (json.dump indent=2, as upstream): `{json_output_path}/sampling_datasets_QA_new.json`
{key: item + vid_path "Eval_video/sampling_data/<basename>" + dataset} and
`{json_output_path}/sampling_answer.json` {Subset: {q_id: ANSWER.json entry}} (bare q_id).

Usage: python -m zoorepro.llava_video.extract_dataset --Eval_QA_root D/Video-Bench \\
         --Eval_Video_root D/VideoBench --sampling_output_folder S/VideoBench/Eval_video \\
         --json_output_path S/Video-Bench/Eval_QA --correct_answer_file D/Video-Bench/ANSWER.json \\
         --nums 1000 --seed 0 [--merge qualified|upstream]
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
from pathlib import Path

from zoorepro import lineage
from zoorepro.cli import run_step
from zoorepro.errors import ZooreproError
from zoorepro.fsutil import atomic_write_text, writing_file
from zoorepro.llava_video import videobench as vb

MERGES = ("qualified", "upstream")


def pool(qa: dict[str, dict[str, dict]], merge: str) -> dict[str, tuple[str, str, dict]]:
    """{key: (subset, q_id, item)} in draw order: qualified keys sorted; upstream's merged dict
    (subset order, later overwriting earlier equal q_ids, a key keeping its first position)."""
    if merge == "qualified":
        entries = {f"{s}/{q}": (s, q, item) for s in qa for q, item in qa[s].items()}
        return {k: entries[k] for k in sorted(entries)}
    if merge == "upstream":
        merged: dict[str, tuple[str, str, dict]] = {}
        for s in vb.SUBSETS:
            for q, item in qa.get(s, {}).items():
                merged[q] = (s, q, item)
        return merged
    raise ZooreproError(f"unknown --merge {merge!r} (known: {', '.join(MERGES)})")


def draw(entries: dict, nums: int, seed: int) -> list[str]:
    """The sampled keys, in draw order."""
    if nums < 1:
        raise ZooreproError(f"--nums must be >= 1, got {nums}")
    if nums > len(entries):
        raise ZooreproError(f"cannot sample {nums} questions from a pool of {len(entries)}")
    return random.Random(seed).sample(list(entries), nums)


def extract(eval_qa_root: Path, eval_video_root: Path, sampling_output_folder: Path, json_output_path: Path,
            correct_answer_file: Path, nums: int, seed: int, merge: str = "qualified") -> dict:
    """Sample, check, copy the videos, write the two JSON files. Returns {subset: count}."""
    qa = vb.load_eval_qa(eval_qa_root)
    entries = pool(qa, merge)
    keys = draw(entries, nums, seed)
    sampled = [(k, *entries[k]) for k in keys]
    answers = vb.load_answers(correct_answer_file, required={
        s: [q for _, s2, q, _ in sampled if s2 == s] for s in {s for _, s, _, _ in sampled}})
    sources: dict[str, Path] = {}
    for key, subset, q_id, item in sampled:  # every check before anything is written
        src = Path(eval_video_root) / item["vid_path"]
        if not src.is_file():
            raise ZooreproError(f"video of {subset}/{q_id} not found: {src}")
        real = src.resolve()
        name = Path(item["vid_path"]).name
        if name in sources and sources[name] != real:
            raise ZooreproError(f"two sampled videos share the basename {name!r}: {sources[name]} and {real} "
                                f"({subset}/{q_id}); they would overwrite each other in {vb.SAMPLING_DATA}/")
        sources[name] = real
    out_videos = Path(sampling_output_folder) / vb.SAMPLING_DATA
    out_videos.mkdir(parents=True, exist_ok=True)
    for name, real in sorted(sources.items()):
        dest = out_videos / name
        if dest.is_symlink():
            dest.unlink()
        with writing_file(dest) as tmp:
            shutil.copy2(real, tmp)
    out_qa: dict[str, dict] = {}
    out_answers: dict[str, dict] = {}
    counts: dict[str, int] = {}
    for key, subset, q_id, item in sampled:
        out_qa[key] = {**item, "vid_path": f"{vb.EVAL_VIDEO_DIR}/{vb.SAMPLING_DATA}/{Path(item['vid_path']).name}",
                       "dataset": subset}
        out_answers.setdefault(subset, {})[q_id] = answers[subset][q_id]
        counts[subset] = counts.get(subset, 0) + 1
    json_dir = Path(json_output_path)
    json_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(json_dir / vb.SAMPLED_ANSWERS, json.dumps(out_answers, indent=2))
    atomic_write_text(json_dir / vb.SAMPLED_QA, json.dumps(out_qa, indent=2))
    # Lineage (zoorepro/lineage.py): the sample is made from the QA files and the answers (the
    # sampled videos are hashed as an artifact of their own, not the whole video tree they came from).
    sources = [Path(eval_qa_root) / vb.EVAL_QA_DIR, Path(correct_answer_file)]
    for artifact in (Path(sampling_output_folder) / vb.SAMPLING_DATA, json_dir / vb.SAMPLED_ANSWERS,
                     json_dir / vb.SAMPLED_QA):
        lineage.record(artifact, sources)
    return {s: counts[s] for s in vb.SUBSETS if s in counts}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--Eval_QA_root", type=Path, default=Path("./Video-Bench/"))
    parser.add_argument("--Eval_Video_root", type=Path, default=Path("./VideoBench/"))
    parser.add_argument("--sampling_output_folder", type=Path, default=Path("./VideoBench/Eval_video"))
    parser.add_argument("--json_output_path", type=Path, default=Path("./Video-Bench/Eval_QA"))
    parser.add_argument("--correct_answer_file", type=Path, default=Path("./Video-Bench/ANSWER.json"))
    parser.add_argument("--nums", type=int, default=1000)
    parser.add_argument("--seed", type=int, required=True, help="the draw's seed (upstream draws unseeded)")
    parser.add_argument("--merge", choices=MERGES, default="qualified",
                        help="qualified: keys <Subset>/<q_id> (fixed); upstream: one dict keyed by q_id, "
                             "later subsets overwriting equal ids (the document's behaviour)")
    args = parser.parse_args()
    counts = extract(args.Eval_QA_root, args.Eval_Video_root, args.sampling_output_folder, args.json_output_path,
                     args.correct_answer_file, args.nums, args.seed, args.merge)
    for subset, n in counts.items():
        print(f"{subset}: {n}")
    print(f"sampled {sum(counts.values())} questions ({args.merge} keys, seed {args.seed}) from "
          f"{len(counts)} subsets")
    return 0


if __name__ == "__main__":
    run_step(main)
