"""LLaVA-NeXT-Video inference steps (issue 10): the frame rule (frames.py), the GPU step's prompt,
answer cut, output and sharding (llava_gpu.py), the runners (transformers, mindie) and the NPU step
against the stand-in MindIE-LLM tree (run_pa_videobench.py, tests/standins/mindie).

One tiny vicuna checkpoint (make_mini_model) is built per session; prompts of the other two
families use their processors only. The NPU test runs the stand-in end to end in a subprocess."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from zoorepro.errors import ToolchainMissing, ZooreproError
from zoorepro.llava_video import frames as fr

ROOT = Path(__file__).resolve().parents[1]
MINDIE = ROOT / "tests" / "standins" / "mindie"
SUFFIX = ("Please respond with only the corresponding options and do not provide any explanations or additional "
          "information.")


def write_video(path: Path, n: int, codec: str | None = None, seed: int = 0, size=(64, 48)) -> Path:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    codec = codec or ("mpeg4" if path.suffix == ".avi" else "libx264")
    w, h = size
    rng = np.random.default_rng(seed)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=8)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(n):
            img = np.zeros((h, w, 3), np.uint8)
            img[:, :, 0] = (i * 6) % 256   # frame index in the red channel: order is visible
            img[:, : 1 + (i * 5) % w, 1] = rng.integers(0, 255)
            for packet in stream.encode(__import__("av").VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_sample(root: Path, n: int = 4) -> tuple[Path, Path, dict]:
    """A sample tree in the upstream layout: (Eval_QA_root, Eval_Video_root, questions)."""
    subsets = ["MSVD", "ActivityNet", "MOT", "TVQA"]
    options = ["running", "cooking", "red car", "dog", "ball", "park"]
    qa = {}
    for i in range(n):
        sub = subsets[i % len(subsets)]
        name = f"v{i}{'.avi' if sub == 'MSVD' else '.mp4'}"
        write_video(root / "VideoBench" / "Eval_video" / "sampling_data" / name, 20 + 5 * i, seed=i)
        count = {"ActivityNet": 1, "MOT": 6, "TVQA": 5}.get(sub, 2)
        qa[f"{sub}/{i}"] = {"vid_path": f"Eval_video/sampling_data/{name}", "question": "what is the man doing?",
                            "choices": {"ABCDEF"[j]: options[j] for j in range(count)}, "video_id": f"v{i}",
                            "dataset": sub}
    qa_dir = root / "Video-Bench" / "Eval_QA"
    qa_dir.mkdir(parents=True, exist_ok=True)
    (qa_dir / "sampling_datasets_QA_new.json").write_text(json.dumps(qa, indent=2))
    return root / "Video-Bench", root / "VideoBench", qa


# ------------------------------------------------------------------------------------------
# frames


def test_sample_indices_upstream_rule():
    assert fr.sample_indices(37).tolist() == [0, 4, 9, 13, 18, 23, 27, 32]
    assert fr.sample_indices(8).tolist() == list(range(8))
    assert fr.sample_indices(5).tolist() == [0, 0, 1, 1, 2, 3, 3, 4]  # repeats kept, as upstream
    with pytest.raises(ZooreproError):
        fr.sample_indices(0)


def test_read_frames_mp4_avi_and_order(tmp_path):
    mp4 = write_video(tmp_path / "a.mp4", 37)
    avi = write_video(tmp_path / "b.avi", 37)
    for path in (mp4, avi):
        video = fr.read_frames(path)
        assert video.shape == (8, 48, 64, 3) and video.dtype == np.uint8
        red = video[:, 10, 40, 0].astype(int)
        assert np.allclose(red, [6 * i for i in (0, 4, 9, 13, 18, 23, 27, 32)], atol=8), red
        assert np.array_equal(fr.read_frames(path, order="reversed"), video[::-1])
    assert fr.read_frames(write_video(tmp_path / "short.mp4", 5)).shape[0] == 5  # distinct indices only


def test_zero_frame_count_container_is_counted(tmp_path, monkeypatch):
    """A container that reports 0 frames: counted by decoding, then the upstream rule."""
    path = write_video(tmp_path / "c.mp4", 37)
    import av

    real_open = av.open

    class NoCount:
        def __init__(self, c):
            self._c = c

        def __getattr__(self, name):
            return getattr(self._c, name)

        @property
        def streams(self):
            streams = self._c.streams
            return SimpleNamespace(video=[SimpleNamespace(frames=0)] if streams.video else [])

    monkeypatch.setattr(av, "open", lambda *a, **k: NoCount(real_open(*a, **k)))
    assert fr.frame_count(path) == (37, True)
    video = fr.read_frames(path)
    assert video.shape[0] == 8 and abs(int(video[1, 10, 40, 0]) - 24) <= 8


def test_corrupt_and_truncated_video_named(tmp_path):
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    with pytest.raises(ZooreproError, match="corrupt.mp4"):
        fr.read_frames(bad)
    good = write_video(tmp_path / "t.avi", 37)
    cut = tmp_path / "truncated.avi"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    with pytest.raises(ZooreproError, match="truncated.avi"):
        fr.read_frames(cut)
    with pytest.raises(ZooreproError, match="not found"):
        fr.read_frames(tmp_path / "missing.mp4")


# ------------------------------------------------------------------------------------------
# the GPU step


@pytest.fixture(scope="module")
def processors():
    from zoorepro.llava_video import make_mini_model as mm

    return {f: mm.build_processor(mm.build_tokenizer(f), f) for f in mm.FAMILIES}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from zoorepro.llava_video import make_mini_model as mm

    out = tmp_path_factory.mktemp("ckpt") / "LLaVA-NeXT-Video-7B-hf"
    mm.build_checkpoint(out, "vicuna", seed=0, verify=False)
    return out


def test_prompts_per_template(processors):
    from zoorepro.llava_video.llava_gpu import build_prompt

    q = "what? A.x B.y \n Among the two options A, B above, the one closest to the correct answer is: "
    assert build_prompt(processors["vicuna"], q) == f"USER: <video>\n{q} {SUFFIX} ASSISTANT:"
    # no "ASSISTANT:" in these templates: the suffix follows the whole template text (upstream)
    assert build_prompt(processors["mistral"], q) == f"[INST] <video>\n{q} [/INST]{SUFFIX} ASSISTANT:"
    assert build_prompt(processors["chatml"], q) == \
        f"<|im_start|>user\n<video>\n{q}<|im_end|>\n<|im_start|>assistant\n{SUFFIX} ASSISTANT:"
    # fault switch: no suffix
    assert build_prompt(processors["vicuna"], q, "none") == f"USER: <video>\n{q} ASSISTANT:"


def test_answer_cut_and_cleanup(processors):
    from zoorepro.llava_video import videobench as vb

    assert vb.cut_answer("USER: x ASSISTANT: C. D.") == " C. D."
    assert vb.cut_answer("0123456789abc") == "9abc"  # upstream's find() == -1 arithmetic: index 9
    assert processors["vicuna"].tokenizer.clean_up_tokenization(" C . is it ?") == " C. is it?"


def args_for(qa_root, video_root, out, **kw):
    base = {"Eval_QA_root": qa_root, "Eval_Video_root": video_root, "dataset_name": "sampling_data", "frames": 8,
            "frame_order": "upstream", "prompt_suffix": "document", "max_new_tokens": 2, "clean_up_spaces": True,
            "chat_conversation_output_folder": out}
    return SimpleNamespace(**{**base, **kw})


def test_output_format_sharding_and_faults(tmp_path, checkpoint):
    import torch

    from zoorepro.llava_video import llava_gpu as g
    from zoorepro.llava_video.make_mini_model import load_checkpoint

    qa_root, video_root, qa = write_sample(tmp_path / "S", 4)
    model, processor = load_checkpoint(checkpoint)
    items = g.load_questions(qa_root, "sampling_data", video_root)
    keys = list(items)
    args = args_for(qa_root, video_root, tmp_path / "out")
    whole, stats = g.answer_questions(model, processor, items, keys, args, "cpu", torch.float32, log=lambda m: None)
    assert list(whole) == keys
    for key, entry in whole.items():
        assert set(entry) == {"video_id", "question", "output_sequence", "time", "dataset"}
        assert isinstance(entry["output_sequence"], list) and len(entry["output_sequence"]) == 1
        assert entry["dataset"] == qa[key]["dataset"] and entry["time"] > 0
        assert stats[key]["new_tokens"] == 2 and 0 < stats[key]["ttft_s"] <= entry["time"]
    # two ranks: each its shard, merged back in file order, equal to one process's answers
    folder = tmp_path / "out"
    for rank in (1, 0):
        mine = g.shard(keys, rank, 2)
        res, st = g.answer_questions(model, processor, items, mine, args, "cpu", torch.float32, log=lambda m: None)
        g.write_part(g.part_path(folder, "sampling_data", rank, 2), rank, 2, mine, res, st, 0.1)
    merged, _, loads = g.merge_parts(folder, "sampling_data", 2, keys)
    assert list(merged) == keys and loads == [0.1, 0.1]
    assert {k: v["output_sequence"] for k, v in merged.items()} == {k: v["output_sequence"] for k, v in whole.items()}
    g.part_path(folder, "sampling_data", 1, 2).unlink()
    with pytest.raises(ZooreproError, match="rank 1"):
        g.merge_parts(folder, "sampling_data", 2, keys)
    # the fault switches change what the model sees
    seen = []
    real = g.prepare
    g.prepare = lambda proc, prompt, frames, *a: seen.append((prompt, frames.copy())) or real(proc, prompt, frames, *a)
    try:
        for order, suffix in (("upstream", "document"), ("reversed", "document"), ("upstream", "none")):
            g.answer_questions(model, processor, items, keys[:1], args_for(qa_root, video_root, folder, frame_order=order,
                               prompt_suffix=suffix), "cpu", torch.float32, log=lambda m: None)
    finally:
        g.prepare = real
    (p0, f0), (p1, f1), (p2, f2) = seen
    assert p0 == p1 and np.array_equal(f1, f0[::-1]) and not np.array_equal(f1, f0)
    assert SUFFIX in p0 and SUFFIX not in p2 and np.array_equal(f2, f0)
    # measurements
    ms = g.measurements("7B", "float32", whole, stats, 0.5, tmp_path / "x.json", "cpu", 1)
    assert [m.metric for m in ms] == ["7B load time", "7B seconds per question", "7B time to first token",
                                      "7B generated tokens/s"]
    assert all(m.precision == "float32" for m in ms)
    ratio = g.bench_ratio(model, processor, g.prepare_questions(processor, items, video_root, "cpu", torch.float32)[:2],
                          2, repeats=1)
    assert ratio["ratio"] > 0


def test_missing_video_named(tmp_path):
    from zoorepro.llava_video import llava_gpu as g

    qa_root, video_root, qa = write_sample(tmp_path / "S", 2)
    (video_root / qa["MSVD/0"]["vid_path"]).unlink()
    with pytest.raises(ZooreproError, match="MSVD/0.*v0.avi"):
        g.load_questions(qa_root, "sampling_data", video_root)


# ------------------------------------------------------------------------------------------
# runners


def test_transformers_runner():
    from zoorepro.runners import get_runner, runner_names
    from zoorepro.runners.transformers import TransformersRunner

    assert {"transformers", "mindie"} <= set(runner_names())
    cpu = TransformersRunner("cpu", {"hardware": "cpu"})
    cpu.check("llava_video")
    assert cpu.launch_command("m.x", ["--a"], 1)[1:] == ["-m", "m.x", "--a"]
    assert cpu.launch_command("m.x", [], 2)[1:6] == ["-m", "torch.distributed.run", "--standalone",
                                                     "--nproc_per_node", "2"]
    versions = cpu.versions()
    assert {"torch", "transformers", "av"} <= set(versions)
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ToolchainMissing, match="no CUDA GPU"):
            TransformersRunner("cuda", {"hardware": "cuda"}).check("llava_video")
    with pytest.raises(ToolchainMissing):
        TransformersRunner("npu", {"hardware": "npu"}).check("llava_video", probe=False)
    assert get_runner  # the factory knows both (registered)


def test_mindie_runner_refusals(tmp_path, monkeypatch):
    from zoorepro.runners.mindie import DOCUMENT_ENV, MindIERunner, environment

    monkeypatch.delenv("MINDIE_LLM_HOME", raising=False)
    runner = MindIERunner("npu", {"hardware": "npu"})
    with pytest.raises(ToolchainMissing) as exc:
        runner.check("llava_video")
    message = str(exc.value.for_table("llava_video", "results/mini"))
    assert "MINDIE_LLM_HOME" in message and "torch_npu" in message and "CANN" in message
    assert "results/mini/llava_video_cpu.csv" in message
    monkeypatch.setenv("MINDIE_LLM_HOME", str(tmp_path))
    with pytest.raises(ToolchainMissing, match="run_pa_videobench.sh"):
        runner.check("llava_video")
    # the stand-in tree, but torch_npu not importable
    monkeypatch.setenv("MINDIE_LLM_HOME", str(MINDIE))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(ToolchainMissing, match="torch_npu"):
        runner.check("llava_video")
    env = environment({"master_port": 20031})
    assert env["MASTER_PORT"] in ("20031", os.environ.get("MASTER_PORT")) and len(DOCUMENT_ENV) == 8
    assert all(env[k] == v for k, v in DOCUMENT_ENV.items())


def test_run_pa_videobench_standin_end_to_end(tmp_path, checkpoint):
    """The NPU step against the stand-in MindIE-LLM tree: the weights come through DVC-style
    symlinks, which MindIE refuses, so the step hands it a private real copy; the output is
    MindIE's format (a plain-string output_sequence, mode 0o600); the toolchain says stand-in."""
    qa_root, video_root, qa = write_sample(tmp_path / "S", 3)
    linked = tmp_path / "models" / "LLaVA-NeXT-Video-7B-hf"
    cache = tmp_path / "cache"
    linked.mkdir(parents=True)
    cache.mkdir()
    for f in checkpoint.iterdir():
        (cache / f.name).write_bytes(f.read_bytes())
        (linked / f.name).symlink_to(cache / f.name)
    out = tmp_path / "npu" / "7B" / "mindie" / "Chat_results"
    env = {**os.environ, "MINDIE_LLM_HOME": str(MINDIE), "ZOOREPRO_STANDIN_PYTHON": sys.executable,
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(MINDIE / "python")]),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "MASTER_PORT": "20030"}
    cmd = [sys.executable, "-m", "zoorepro.llava_video.run_pa_videobench", str(linked),
           str(video_root / "Eval_video" / "sampling_data"), str(qa_root), str(out), "1", "2048", "2",
           "--ckpt", "7B", "--measurements", str(tmp_path / "perf.json"), "--toolchain", str(tmp_path / "tc.json")]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "private real copy" in done.stdout and "a symbolic link" in done.stdout
    assert "ZOOREPRO STAND-IN" in done.stdout
    copy = tmp_path / "npu" / "7B" / "mindie" / "mindie_inputs" / "weights" / linked.name
    assert all(not p.is_symlink() and (p.stat().st_mode & 0o777) == 0o640 for p in copy.iterdir())
    assert str(copy) in done.stdout  # the copy was handed over
    result = out / "sampling_data_eval.json"
    assert (result.stat().st_mode & 0o777) == 0o600
    answers = json.loads(result.read_text())
    assert list(answers) == list(qa)
    for key, entry in answers.items():
        assert isinstance(entry["output_sequence"], str) and entry["question"] == qa[key]["question"]
        assert entry["dataset"] == qa[key]["dataset"]
    toolchain = json.loads((tmp_path / "tc.json").read_text())
    assert toolchain["standin"] is True and toolchain["mindie_llm_commit"] == "unknown"
    assert toolchain["environment"]["ATB_CONTEXT_WORKSPACE_SIZE"] == "0"
    perf = json.loads((tmp_path / "perf.json").read_text())
    assert [m["metric"] for m in perf] == ["7B seconds per question"] and "STAND-IN" in perf[0]["note"]


def test_standin_refuses_links_and_odd_paths(tmp_path, checkpoint):
    """The stand-in's file checks behave like MindIE's: a symlinked path, odd characters."""
    sys.path.insert(0, str(MINDIE / "examples" / "atb_models"))
    try:
        from atb_llm.utils import file_utils
    finally:
        sys.path.pop(0)
    link = tmp_path / "link.json"
    link.symlink_to(checkpoint / "config.json")
    with pytest.raises(ValueError, match="symbolic link"):
        file_utils.check_file_safety(str(link))
    odd = tmp_path / "a b.json"
    odd.write_text("{}")
    with pytest.raises(ValueError, match="characters"):
        file_utils.check_file_safety(str(odd))
    from zoorepro.llava_video.run_pa_videobench import refusal

    assert refusal(link) == "a symbolic link" and "characters" in refusal(odd)
    assert refusal(checkpoint / "config.json") is None


def test_standin_process_qs_matches_ours():
    """The stand-in's own process_qs (written independently) gives the same strings as videobench."""
    sys.path.insert(0, str(MINDIE / "examples" / "atb_models"))
    try:
        from examples.models.llava.llava_videobench.videobench_utils import (
            process_qs as theirs,
        )
    finally:
        sys.path.pop(0)
    from zoorepro.llava_video.videobench import process_qs as ours

    for n in range(1, 7):
        item = {"question": "Q?", "choices": {"ABCDEF"[i]: f"o{i}" for i in range(n)}, "vid_path": "v.mp4"}
        assert theirs(item, "/r") == ours(item, "/r")
