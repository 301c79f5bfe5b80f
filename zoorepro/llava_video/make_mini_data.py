"""A deterministic mini Video-Bench world for LLaVA-NeXT-Video, in the upstream layout, small enough
for CI: data/mini/llava_video/ (D).

Why: the full scale downloads ~56 GB of Video-Bench videos, the Eval_QA JSON, ANSWER.json and five
checkpoints of 7-34 B parameters. The mini scale writes the same files in the same formats,
offline, with planted outcomes (zoorepro/llava_video/plant.py):

* `VideoBench/Eval_video/<Subset>/<file>`: short generated videos (24-40 frames, 64x48, moving
  coloured shapes on a per-video background, so which frames are sampled and their order matter),
  in the real containers: H.264/yuv420p .mp4, and MPEG-4 Part 2 in .avi for MSVD;
* `Video-Bench/Eval_QA/<Subset>_QA_new.json` for the 13 subsets, in the real per-subset shapes:
  vid_path "Eval_video/<Subset>/<file>", video_id (an int for MSRVTT), question, choices A.. (2-5
  options; TVQA always 5, MOT 6, ActivityNet's first question 1), `qid` for ActivityNet and TGIF,
  `sub_dir` for Youcook2; Ucfcrime, NBA, Driving-decision-making, MV and MOT key their questions
  "0", "1", ... as the real files do, so the upstream merge's key collisions happen here too;
* `models/LLaVA-NeXT-Video-<ckpt>-hf/`: one tiny checkpoint per document checkpoint
  (make_mini_model.py; family per checkpoint, distinct seeds);
* `Video-Bench/ANSWER.json` {Subset: {q_id: {"answer": letter}}}, planted, and
  `planted_claims.yaml` (zoorepro/planted.py): per checkpoint `<ckpt> accuracy` on the cpu side and
  on the npu side (target-specific claims: the two sides prompt differently), and `<ckpt> Video-Bench
  final score` on the cpu side, all in percent, over every generated question (the mini sample
  must take them all: extract_dataset --nums = 13 x per_subset);
* `MANIFEST.json`, written last: the generator's parameters, every file's sha256, the planting's
  summary (per checkpoint and side the letters, the smallest margin, the regenerated questions,
  and the accuracies the injected faults give).

Everything is built in a temporary sibling of D and swapped into place at the end, so a killed run
leaves no partial D that looks complete. The same seed gives the same bytes in every file.

Usage: python -m zoorepro.llava_video.make_mini_data --out data/mini/llava_video --seed 0 \\
           --per-subset 2 --max-new-tokens 3 --frames 8 [--min-margin 0.4 --target-accuracy 0.55]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from zoorepro.cli import run_step
from zoorepro.errors import ZooreproError
from zoorepro.fsutil import building_dir, write_tree_manifest
from zoorepro.llava_video import make_mini_model as mm
from zoorepro.llava_video import plant
from zoorepro.llava_video import videobench as vb

MODEL = "llava_video"
GENERATOR = "zoorepro.llava_video.make_mini_data"
MANIFEST = "MANIFEST.json"
QA_ROOT, VIDEO_ROOT, MODELS = "Video-Bench", "VideoBench", "models"
NUMERIC_KEYS = ("Ucfcrime", "NBA", "Driving-decision-making", "MV", "MOT")
FIXED_CHOICES = {"TVQA": 5, "MOT": 6}
WIDTH, HEIGHT = 64, 48
MAX_ATTEMPTS = 40


# --------------------------------------------------------------------------------------------
# videos


def video_frames(rng: np.random.Generator) -> np.ndarray:
    """uint8 [n, 48, 64, 3], n in 24..40: a background colour, two shapes moving on their own
    paths, and a stripe pattern whose phase runs with time."""
    n = int(rng.integers(24, 41))
    bg = rng.integers(0, 256, 3)
    colours = rng.integers(0, 256, (2, 3))
    start = rng.uniform(0, 1, (2, 2)) * [WIDTH, HEIGHT]
    speed = rng.uniform(-3, 3, (2, 2))
    size = rng.integers(6, 16, 2)
    period = int(rng.integers(4, 12))
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    frames = np.empty((n, HEIGHT, WIDTH, 3), np.uint8)
    for t in range(n):
        img = np.broadcast_to(bg, (HEIGHT, WIDTH, 3)).astype(np.int32).copy()
        img[((xx + yy + 2 * t) // period) % 2 == 0] //= 2
        for s in range(2):
            x, y = (start[s] + speed[s] * t) % [WIDTH, HEIGHT]
            inside = (np.abs(xx - x) < size[s]) & (np.abs(yy - y) < size[s])
            img[inside] = colours[s]
        frames[t] = np.clip(img, 0, 255)
    return frames


def write_video(path: Path, frames: np.ndarray) -> None:
    """The frames ([n, H, W, 3] uint8) as .mp4 (libx264, yuv420p) or .avi (mpeg4), single-threaded so the
    bytes repeat."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    codec = "mpeg4" if path.suffix == ".avi" else "libx264"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=8)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.thread_count = 1
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "threads": "1"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


# --------------------------------------------------------------------------------------------
# questions


def question_ids(subset: str, index: int) -> tuple[str, str, dict]:
    """(q_id, video basename, extra fields) of a subset's index-th question, as the real files
    name them (numeric ids for the subsets that use them; video basenames unique across subsets)."""
    stem = {"Ucfcrime": f"Crime{index:03d}_x264", "Youcook2": f"yc2_{index:03d}", "TVQA": f"s01e{index:02d}_seg02",
            "MSVD": f"msvd_clip{index:03d}", "MSRVTT": f"video{7010 + index}", "Driving-decision-making":
            f"decision_{index:03d}", "NBA": f"nba_{index:03d}", "SQA3D": f"scene{index:04d}_00",
            "Driving-exam": f"exam_{index:03d}", "MV": f"mv_{index:03d}", "MOT": f"MOT17-{index:02d}",
            "ActivityNet": f"v_act{index:07d}", "TGIF": f"tumblr_mini{index:04d}"}[subset]
    extra: dict = {}
    if subset in NUMERIC_KEYS:
        q_id = str(index)
    elif subset in ("ActivityNet", "TGIF"):
        q_id = f"{stem}_{index}"
        extra["qid"] = q_id
    else:
        q_id = f"{stem}_q{index}"
    if subset == "Youcook2":
        extra["sub_dir"] = f"{101 + index}"
    return q_id, stem + vb.VIDEO_EXT[subset], extra


def n_choices(subset: str, index: int, rng: np.random.Generator) -> int:
    """TVQA 5, MOT 6, ActivityNet's first question 1, else 2-5."""
    if subset in FIXED_CHOICES:
        return FIXED_CHOICES[subset]
    if subset == "ActivityNet" and index == 0:
        return 1
    return int(rng.integers(2, 6))


def make_item(seed: int, subset: str, index: int, attempt: int) -> tuple[str, dict]:
    """(q_id, Eval_QA item): words and options drawn from (seed, subset, index, attempt), so a
    regenerated question (attempt + 1) has new text and the same video."""
    rng = np.random.default_rng([seed, vb.SUBSETS.index(subset), index, attempt])
    q_id, video, extra = question_ids(subset, index)
    k = n_choices(subset, index, rng)
    question = " ".join(rng.choice(mm.WORDS, int(rng.integers(4, 9)))).capitalize() + "?"
    choices = {letter: " ".join(rng.choice(mm.WORDS, int(rng.integers(1, 4)))) for letter in vb.LETTERS[:k]}
    stem = video.rsplit(".", 1)[0]
    video_id: object = 7010 + index if subset == "MSRVTT" else stem
    item = {"vid_path": f"{vb.EVAL_VIDEO_DIR}/{subset}/{video}", "video_id": video_id, "question": question,
            "choices": choices, **extra}
    return q_id, item


# --------------------------------------------------------------------------------------------
# the whole set


class Clock:
    """Wall seconds per phase (printed, not written: they differ between runs)."""

    def __init__(self):
        self.start, self.laps = time.perf_counter(), {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name], self.start = now - self.start, now


def planted_metrics(values: dict[str, dict]) -> list:
    """The PlantedMetric list: per checkpoint cpu/npu accuracy and the cpu final score (percent)."""
    from zoorepro.planted import PlantedMetric

    metrics = []
    for ckpt, row in values.items():
        metrics.append(PlantedMetric(f"{ckpt} accuracy", row["cpu accuracy"], "percent", target="cpu"))
        metrics.append(PlantedMetric(f"{ckpt} accuracy", row["npu accuracy"], "percent", target="npu",
                                     precision="fp16"))
        metrics.append(PlantedMetric(f"{ckpt} Video-Bench final score", row["cpu final score"], "percent",
                                     target="cpu"))
        # The NPU table's precision-test rows against the cpu answers (the mini reference side):
        # the corrected-reading gap and the share of equal letters (0 and 100 where both sides see
        # the same prompt: the vicuna checkpoints).
        metrics.append(PlantedMetric(f"{ckpt} |NPU-GPU| accuracy gap", row["npu-cpu gap"], "percent",
                                     higher_is_better=False, target="npu", precision="fp16"))
        metrics.append(PlantedMetric(f"{ckpt} NPU-GPU same answer", row["npu-cpu same answer"], "percent",
                                     target="npu", precision="fp16"))
    return metrics


def make_mini(out: Path, seed: int = 0, per_subset: int = 2, max_new_tokens: int = 3, frames: int = 8,
              min_margin: float = 0.4, target_accuracy: float = 0.55, checkpoints=mm.CHECKPOINTS) -> dict:
    """Generate D into a temporary sibling of `out` and swap it into place. Returns the manifest."""
    from zoorepro.planted import write_planted_claims

    if per_subset < 1 or max_new_tokens < 1 or frames < 1:
        raise ZooreproError("per_subset, max_new_tokens and frames must be >= 1")
    unknown = [c for c in checkpoints if c not in mm.CHECKPOINT_FAMILY]
    if unknown:
        raise ZooreproError(f"unknown checkpoints {unknown} (known: {', '.join(mm.CHECKPOINTS)})")
    out = Path(out).resolve()
    clock = Clock()
    with building_dir(out) as tmp:
        # videos (one per question) and their sampled frames, decoded back from the files
        rng = np.random.default_rng([seed, 99])
        slots = [(s, i) for s in vb.SUBSETS for i in range(per_subset)]
        decoded = {}
        for subset, index in slots:
            _, video, _ = question_ids(subset, index)
            path = tmp / VIDEO_ROOT / vb.EVAL_VIDEO_DIR / subset / video
            write_video(path, video_frames(rng))
            decoded[(subset, index)] = plant.decode_frames(path, frames)
        clock.lap("videos")
        # checkpoints
        refs = []
        for i, ckpt in enumerate(checkpoints):
            folder = tmp / MODELS / mm.folder_name(ckpt)
            mm.build_checkpoint(folder, mm.CHECKPOINT_FAMILY[ckpt], seed * 100 + i, verify=False)
            refs.append(plant.load_reference(ckpt, folder))
        clock.lap("checkpoints")
        # eager reference, both sides; a question whose runs are not sound is regenerated
        questions: dict[str, dict] = {}
        runs: dict[tuple[str, str], dict[str, plant.Run]] = {(r.ckpt, s): {} for r in refs for s in plant.SIDES}
        regenerated = {}
        for subset, index in slots:
            for attempt in range(MAX_ATTEMPTS):
                q_id, item = make_item(seed, subset, index, attempt)
                question = vb.process_qs(item, "")[0]
                result = sound_runs(refs, question, decoded[(subset, index)], max_new_tokens, min_margin)
                if result is not None:
                    break
            else:
                raise ZooreproError(f"no sound question for {subset}/{index} in {MAX_ATTEMPTS} attempts "
                                    f"(min_margin {min_margin})")
            if attempt:
                regenerated[f"{subset}/{q_id}"] = attempt
            key = f"{subset}/{q_id}"
            questions[key] = {**item, "dataset": subset, "q_id": q_id, "_index": index}
            for k, r in result.items():
                runs[k][key] = r
        clock.lap("eager reference")
        letters = {k: {q: r.letter for q, r in v.items()} for k, v in runs.items()}
        ckpts = [r.ckpt for r in refs]
        # ANSWER.json: redrawn until every planted value is non-degenerate
        for attempt in range(MAX_ATTEMPTS):
            answers = plant.choose_answers(questions, letters[(ckpts[0], "cpu")], seed, target_accuracy, attempt)
            values = plant.planted_values(questions, letters, answers, ckpts)
            if not plant.degenerate(values):
                break
        else:
            raise ZooreproError(f"planted values stay degenerate: {plant.degenerate(values)}")
        faults = fault_accuracies(refs[0], questions, decoded, answers, max_new_tokens)
        clock.lap("faults")
        # the QA files and ANSWER.json, then the planted claims, then the manifest
        qa_dir = tmp / QA_ROOT / vb.EVAL_QA_DIR
        qa_dir.mkdir(parents=True)
        answer_json: dict[str, dict] = {}
        for subset in vb.SUBSETS:
            mine = {q["q_id"]: {k: v for k, v in q.items() if k not in ("dataset", "q_id", "_index")}
                    for q in questions.values() if q["dataset"] == subset}
            (qa_dir / f"{subset}{vb.QA_SUFFIX}").write_text(json.dumps(mine, indent=2) + "\n")
            answer_json[subset] = {q["q_id"]: {"answer": answers[key]} for key, q in questions.items()
                                   if q["dataset"] == subset}
        (tmp / QA_ROOT / "ANSWER.json").write_text(json.dumps(answer_json, indent=2) + "\n")
        method = ("zoorepro/llava_video/plant.py: own PyAV frame decode, own greedy loop in float32 on cpu "
                  "(cpu side: chat template + suffix; npu side: MindIE's vicuna prompt), own A-F judge")
        write_planted_claims(tmp, MODEL, GENERATOR, "Video-Bench (mini, generated)", method, planted_metrics(values),
                             note=f"planted outcomes over all {len(questions)} mini questions; {method}")
        params = {"seed": seed, "per_subset": per_subset, "max_new_tokens": max_new_tokens, "frames": frames,
                  "min_margin": min_margin, "target_accuracy": target_accuracy, "checkpoints": list(ckpts)}
        summary = {
            "values": {c: {k: v for k, v in row.items()} for c, row in values.items()},
            "n_questions": len(questions),
            "min_margin_seen": min(r.margin for v in runs.values() for r in v.values()),
            "regenerated": regenerated,
            "answers": {k: answers[k] for k in sorted(answers)},
            "letters": {f"{c}/{s}": {k: letters[(c, s)][k] for k in sorted(letters[(c, s)])} for c, s in letters},
            "faults_7B_cpu": faults,
        }
        clock.lap("write")
        print("timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in clock.laps.items()))
        manifest = write_tree_manifest(tmp, MANIFEST, {"generator": GENERATOR, "params": params, "planted": summary})
    return manifest


def sound_runs(refs: list, question: str, frames: np.ndarray, max_new_tokens: int,
               min_margin: float) -> dict | None:
    """{(ckpt, side): Run} for one question, or None as soon as one run is not sound (the question
    is then regenerated; stopping early keeps the generator within its time budget)."""
    result = {}
    for ref in refs:
        cache: dict[str, plant.Run] = {}
        for side in plant.SIDES:
            prompt = ref.prompt(side, question)
            if prompt not in cache:  # vicuna checkpoints: both sides prompt alike
                cache[prompt] = ref.run(side, question, frames, max_new_tokens)
                if not plant.sound(cache[prompt], min_margin):
                    return None
            result[(ref.ckpt, side)] = cache[prompt]
    return result


def fault_accuracies(ref: plant.Reference, questions: dict, decoded: dict, answers: dict, max_new_tokens: int) -> dict:
    """The first checkpoint's cpu-side accuracy under the two injected faults the chain must notice:
    the prompt without the suffix, and the frames in reverse order (recorded, so a fault test
    knows the values it must not reproduce). The first token alone decides the shaped model's
    letter, so one token is generated."""
    no_suffix, reversed_ = {}, {}
    for key, q in questions.items():
        question = vb.process_qs(q, "")[0]
        frames = decoded[(q["dataset"], q["_index"])]
        reversed_[key] = ref.run("cpu", question, frames[::-1].copy(), 1).letter
        no_suffix[key] = run_without_suffix(ref, question, frames, 1)
    return {"no suffix": plant.accuracy(no_suffix, answers), "frames reversed": plant.accuracy(reversed_, answers)}


def run_without_suffix(ref: plant.Reference, question: str, frames: np.ndarray, max_new_tokens: int) -> str | None:
    """The cpu-side answer letter with the suffix left out of the prompt (a fault)."""
    original = ref.prompt
    text = ref.processor.apply_chat_template(vb.gpu_conversation(question), add_generation_prompt=True)
    faulty = text.split(vb.ASSISTANT)[0] + vb.ASSISTANT
    try:
        ref.prompt = lambda side, q: faulty  # type: ignore[method-assign]
        return ref.run("cpu", question, frames, max_new_tokens).letter
    finally:
        ref.prompt = original  # type: ignore[method-assign]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/mini/llava_video"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-subset", type=int, default=2, help="questions per Video-Bench subset")
    parser.add_argument("--max-new-tokens", type=int, default=3, help="greedy tokens per answer")
    parser.add_argument("--frames", type=int, default=8, help="frames sampled per video")
    parser.add_argument("--min-margin", type=float, default=0.4,
                        help="smallest top-vs-second logit gap at the first answer token (every checkpoint, side, question)")
    parser.add_argument("--target-accuracy", type=float, default=0.55,
                        help="share of questions whose answer is the first checkpoint's cpu-side letter")
    args = parser.parse_args()
    start = time.perf_counter()
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    manifest = make_mini(args.out, args.seed, args.per_subset, args.max_new_tokens, args.frames, args.min_margin,
                         args.target_accuracy)
    planted = manifest["planted"]
    for ckpt, row in planted["values"].items():
        print(f"{ckpt}: cpu accuracy {row['cpu accuracy']:.2f} %, npu accuracy {row['npu accuracy']:.2f} %, "
              f"cpu Video-Bench final score {row['cpu final score']:.2f} %")
    print(f"min margin {planted['min_margin_seen']:.3f}; regenerated {len(planted['regenerated'])} questions; "
          f"faults (first checkpoint, cpu): {planted['faults_7B_cpu']}")
    print(f"wrote {len(manifest['files'])} files to {args.out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    run_step(main)
