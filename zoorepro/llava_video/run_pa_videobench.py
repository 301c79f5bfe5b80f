"""The document's NPU inference step: MindIE-LLM's run_pa_videobench.sh, run as the document runs
it, with the files handed over the way MindIE accepts them, and its output checked.

Usage: python -m zoorepro.llava_video.run_pa_videobench WEIGHT_PATH VIDEO_PATH EVAL_QA_ROOT \\
           CHAT_CONVERSATION_OUTPUT_FOLDER [MAX_BATCH_SIZE MAX_INPUT_LENGTH MAX_OUTPUT_LENGTH] \\
           [--ckpt 7B] [--measurements FILE] [--toolchain FILE --target npu]

(the positional arguments of run_pa_videobench.sh, in its order; VIDEO_PATH is the sampled video
folder, e.g. S/VideoBench/Eval_video/sampling_data, whose last component names the dataset.)

What it does:
1. checks the toolchain (zoorepro/runners/mindie.py): $MINDIE_LLM_HOME with the script, torch_npu
   and atb_llm importable; else one ToolchainMissing message naming the portable cpu table;
2. hands MindIE real files. MindIE's atb_llm.utils.file_utils refuses a path that is itself a
   symbolic link, a resolved path with characters outside [0-9a-zA-Z_./-], and files writable by
   others or owned by someone else. DVC's symlink cache type turns every file of a tracked folder
   into a symlink into .dvc/cache, which MindIE would refuse. So every path handed over (the
   weights folder and each file in it, the video folder and each video, the QA file) is checked
   with the same rules; a folder that fails gets a private real copy under
   `<output folder's parent>/mindie_inputs/` (folders 0o750, files 0o640, the video folder keeping
   its name, which MindIE takes as the dataset name) and the log says which and why. A folder
   given through a symlinked path is handed over by its resolved path (no copy). Hardlinks (DVC's
   hardlink cache type) are real files that pass MindIE's checks (DVC makes them read-only, owned
   by the user): handed over as they are, no copy;
3. runs `bash examples/models/llava/llava_videobench/run_pa_videobench.sh WEIGHT VIDEO QA OUT
   [...]` with cwd $MINDIE_LLM_HOME/examples/atb_models and the document's environment
   (MASTER_PORT, ASCEND_RT_VISIBLE_DEVICES, the eight ATB_*/runtime variables), absolute paths;
4. checks `{OUT}/{dataset_name}_eval.json`: one entry per question of the QA file, each
   {video_id, question, output_sequence: a plain string, dataset}; an invalid or missing file is an
   error and an invalid one is removed (a stale one is removed before the run), so nothing partial
   is left looking complete;
5. measurements (`--measurements`, names prefixed by `--ckpt`): `{ckpt} seconds per question` =
   the script's wall time / questions. MindIE's start-up and model load are inside that time: the
   script loads and answers in one process and prints no separate load time, so it cannot be
   split from outside (a `{ckpt} load time` is not reported for the NPU).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import stat
import subprocess
import time
from pathlib import Path

from zoorepro.cli import run_step
from zoorepro.errors import ToolchainMissing, ZooreproError
from zoorepro.llava_video.videobench import read_json
from zoorepro.progress import progress

PLAIN = re.compile(r"[0-9a-zA-Z_./-]+")
HANDOVER = "mindie_inputs"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("weight_path", type=Path)
    p.add_argument("video_path", type=Path, help="the sampled video folder (its name is the dataset name)")
    p.add_argument("eval_qa_root", type=Path)
    p.add_argument("chat_conversation_output_folder", type=Path)
    p.add_argument("max_batch_size", type=int, nargs="?")
    p.add_argument("max_input_length", type=int, nargs="?")
    p.add_argument("max_output_length", type=int, nargs="?")
    p.add_argument("--ckpt", help="checkpoint id for metric names (default: from the weights folder name)")
    p.add_argument("--dtype", default="float16", help="the precision recorded (MindIE runs float16)")
    p.add_argument("--measurements", type=Path)
    p.add_argument("--toolchain", type=Path, help="write the runner's versions here (needs --target)")
    p.add_argument("--target", default=None, help="the params.yaml target (default: a bare npu target)")
    args = p.parse_args(argv)
    extra = [args.max_batch_size, args.max_input_length, args.max_output_length]
    given = [x for x in extra if x is not None]
    if given != extra[:len(given)]:
        p.error("MAX_BATCH_SIZE MAX_INPUT_LENGTH MAX_OUTPUT_LENGTH are positional: give them in order")
    if any(x < 1 for x in given):
        p.error("MAX_BATCH_SIZE, MAX_INPUT_LENGTH and MAX_OUTPUT_LENGTH must be at least 1")
    args.extra = given
    return args


def make_runner(target: str | None):
    from zoorepro.runners.mindie import MindIERunner

    if target is None:
        return MindIERunner("npu", {"hardware": "npu"})
    from zoorepro.config import load_params
    from zoorepro.runners import get_runner

    return get_runner("mindie", target, load_params())


# ------------------------------------------------------------------------------------------
# handing MindIE real files


def refusal(path: Path) -> str | None:
    """Why MindIE's file checks would refuse `path` (None when it would not): the path itself a
    symlink, odd characters once resolved, not a regular file/folder, writable by others, not
    the user's or the user's group's."""
    path = Path(path)
    if path.is_symlink():
        return "a symbolic link"
    real = os.path.realpath(path)
    if not PLAIN.fullmatch(real):
        return f"characters outside [0-9a-zA-Z_./-] in {real!r}"
    try:
        st = os.stat(real)
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        return "not a regular file or folder"
    if st.st_mode & stat.S_IWOTH:
        return "writable by others"
    if os.geteuid() != 0 and st.st_uid != os.geteuid() and st.st_gid not in os.getgroups():
        return "owned by another user and group"
    return None


def folder_refusals(folder: Path, names: list[str] | None = None) -> list[str]:
    """`name: reason` for each entry of `folder` (or the `names` in it) MindIE would refuse."""
    folder = Path(os.path.realpath(folder))
    entries = sorted(p.name for p in folder.iterdir()) if names is None else names
    return [f"{name}: {why}" for name in entries if (why := refusal(folder / name)) is not None]


def private_copy(sources: list[Path], dest: Path) -> None:
    """Real copies of `sources` (following links) into `dest` (0o750; files 0o640). A file already
    there with the same size and modification time is kept (a rerun does not copy again)."""
    dest.mkdir(parents=True, exist_ok=True)
    os.chmod(dest, 0o750)
    wanted = {src.name for src in sources}
    for old in dest.iterdir():
        if old.name not in wanted:
            shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()
    bar = progress(total=sum(os.stat(src).st_size for src in sources), desc=f"copy to {dest.name}", unit="B")
    for src in sources:
        target = dest / src.name
        st = os.stat(src)
        if target.is_file() and not target.is_symlink():
            have = os.stat(target)
            if have.st_size == st.st_size and int(have.st_mtime) == int(st.st_mtime):
                bar.update(st.st_size)
                continue
        tmp = dest / f".{src.name}.tmp"
        shutil.copyfile(src, tmp)  # follows a symlink: the bytes, not the link
        os.chmod(tmp, 0o640)
        os.utime(tmp, (st.st_atime, st.st_mtime))
        os.replace(tmp, target)
        bar.update(st.st_size)
    bar.close()


def hand_over_folder(folder: Path, copy_to: Path, what: str, log, names: list[str] | None = None) -> Path:
    """The path of `folder` to give MindIE: itself when it and its entries pass MindIE's checks,
    its resolved path when only the folder's own path is a link, else a private copy."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ZooreproError(f"{what} not found: {folder}")
    resolved = Path(os.path.realpath(folder))
    problems = folder_refusals(resolved, names)
    own = refusal(resolved)
    if own is not None:
        problems.insert(0, f"the folder itself: {own}")
    if not problems:
        if folder.is_symlink():
            log(f"{what}: {folder} is a symbolic link (MindIE refuses links): handing over its real path {resolved}")
        return resolved.absolute()
    shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
    entries = sorted(p for p in resolved.iterdir()) if names is None else [resolved / n for n in names]
    if any(p.is_dir() for p in entries):
        raise ZooreproError(f"{what} {folder}: MindIE would refuse it ({shown}) and it holds sub-folders; "
                            "give a folder of plain files")
    private_copy(entries, copy_to)
    log(f"{what}: MindIE would refuse {folder} ({shown}): handing over a private real copy {copy_to} "
        f"({len(entries)} files, mode 0o640)")
    return copy_to.absolute()


def hand_over_qa(eval_qa_root: Path, dataset_name: str, copy_root: Path, log) -> tuple[Path, Path]:
    """(the QA root to give MindIE, the QA file it will read)."""
    from zoorepro.llava_video.llava_gpu import qa_file

    qa = qa_file(eval_qa_root, dataset_name)
    if not qa.is_file():
        raise ZooreproError(f"QA file not found: {qa}")
    root = Path(os.path.realpath(eval_qa_root))
    why = refusal(qa) or refusal(qa.parent) or refusal(root)
    if why is None:
        return root.absolute(), qa
    private_copy([qa], copy_root / qa.parent.name)
    log(f"QA file: MindIE would refuse {qa} ({why}): handing over a private real copy under {copy_root}")
    return copy_root.absolute(), copy_root / qa.parent.name / qa.name


# ------------------------------------------------------------------------------------------
# the output


def check_output(path: Path, questions: dict) -> dict:
    """MindIE's answers: one per question, {video_id, question, output_sequence: str, dataset}."""
    if not path.is_file():
        raise ZooreproError(f"run_pa_videobench.sh wrote no {path}")
    data = read_json(path, "MindIE's answers file")  # an object keyed by question id
    missing = [k for k in questions if k not in data]
    extra = [k for k in data if k not in questions]
    if missing or extra:
        raise ZooreproError(f"{path}: {len(missing)} questions unanswered (e.g. {missing[:3]}), "
                            f"{len(extra)} unknown keys (e.g. {extra[:3]})")
    for key, entry in data.items():
        if not isinstance(entry, dict) or not {"video_id", "question", "output_sequence", "dataset"} <= set(entry):
            raise ZooreproError(f"{path} [{key}]: expected video_id, question, output_sequence, dataset")
        if not isinstance(entry["output_sequence"], str):
            raise ZooreproError(f"{path} [{key}]: output_sequence must be a plain string (MindIE's format), "
                                f"got {type(entry['output_sequence']).__name__}")
    return data


def main(argv=None) -> int:
    from zoorepro.llava_video.llava_gpu import ckpt_id

    args = parse_args(argv)
    started = time.perf_counter()
    runner = make_runner(args.target)
    try:
        runner.check("llava_video")  # the checkout, the script, torch_npu and atb_llm
    except ToolchainMissing as exc:
        raise exc.for_table("llava_video", "results[/mini]") from None
    out = Path(os.path.abspath(args.chat_conversation_output_folder))
    dataset_name = Path(os.path.abspath(args.video_path)).name
    final = out / f"{dataset_name}_eval.json"
    for stale in (final, args.measurements):
        if stale is not None:
            Path(stale).unlink(missing_ok=True)
    if not PLAIN.fullmatch(str(out)):
        raise ZooreproError(f"the output folder {out} has characters outside [0-9a-zA-Z_./-], which MindIE refuses; "
                            "choose a plain path")
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o750)

    def log(message: str) -> None:
        print(message, flush=True)
    handover = out.parent / HANDOVER

    from zoorepro.llava_video.videobench import load_qa_file

    qa_root, qa = hand_over_qa(args.eval_qa_root, dataset_name, handover / "Video-Bench", log)
    questions = load_qa_file(qa, dataset_name)
    video_names = sorted({Path(item["vid_path"]).name for item in questions.values()})
    missing = [name for name in video_names if not (Path(args.video_path) / name).is_file()]
    if missing:
        key = next(k for k, item in questions.items() if Path(item["vid_path"]).name == missing[0])
        raise ZooreproError(f"question {key}: video not found: {Path(args.video_path) / missing[0]}"
                            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    weights = hand_over_folder(args.weight_path, handover / "weights" / Path(args.weight_path).name,
                               "weights folder", log)
    videos = hand_over_folder(args.video_path, handover / "VideoBench" / "Eval_video" / dataset_name,
                              "video folder", log, names=video_names)
    if videos.name != dataset_name:
        raise ZooreproError(f"the video folder resolves to {videos}, whose name is not {dataset_name!r}: MindIE "
                            "takes the dataset name from it")

    env = {**os.environ, **runner.environment()}
    if (warning := runner.port_warning()):
        log(f"warning: {warning}")
    from zoorepro.llava_video.pipeline import MINDIE_SCRIPT

    command = runner.command(MINDIE_SCRIPT, weights, videos, qa_root, out, *args.extra)
    log(f"cd {runner.cwd()} && " + " ".join(f"{k}={env[k]}" for k in runner.environment()) + " " + " ".join(command))
    start = time.perf_counter()
    done = subprocess.run(command, cwd=runner.cwd(), env=env, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        final.unlink(missing_ok=True)
        raise ZooreproError(f"run_pa_videobench.sh failed (exit {done.returncode}); see the log above")
    try:
        answers = check_output(final, questions)
    except ZooreproError:
        final.unlink(missing_ok=True)
        raise
    # Lineage: the answers were made from these weights, the sampled QA file and these videos.
    from zoorepro import lineage

    lineage.record(final, [args.weight_path, Path(args.eval_qa_root) / "Eval_QA" / "sampling_datasets_QA_new.json",
                           args.video_path])
    ckpt = ckpt_id(args.weight_path, args.ckpt)
    versions = None
    if args.toolchain:
        from zoorepro.runners.toolchain import write_toolchain

        versions = write_toolchain(args.toolchain, "llava_video", args.target or "npu",
                                   {"dtype": args.dtype, "handed_over": {"weights": str(weights),
                                                                          "videos": str(videos), "qa_root": str(qa_root)}})
    standin = versions["standin"] if versions else _standin(runner)
    if args.measurements:
        from zoorepro.measurements import (
            Measurement,
            print_measurements,
            write_measurements,
        )

        note = (f"MindIE-LLM run_pa_videobench.sh{' (ZOOREPRO STAND-IN: transformers on CPU)' if standin else ''}, "
                f"{len(answers)} questions; the script's wall time / questions, MindIE's start-up and model load "
                "included (not separable from outside the script)")
        print_measurements(write_measurements(args.measurements, [
            Measurement(f"{ckpt} seconds per question", "latency", wall / len(answers), "s", batch_size=1,
                        precision=args.dtype, raw=(str(final),), note=note)]))
    log(f"{len(answers)} answers in {final} ({wall:.1f} s in run_pa_videobench.sh, "
        f"{time.perf_counter() - started:.1f} s in all)")
    return 0


def _standin(runner) -> bool:
    from zoorepro.runners.mindie import is_standin

    return is_standin(runner.home)


if __name__ == "__main__":
    run_step(main)
