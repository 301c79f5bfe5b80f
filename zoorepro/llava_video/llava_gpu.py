"""The document's GPU inference step (MindIE-LLM llava_videobench `llava_gpu.py`, started by
`run_pa_videobench_gpu.sh` through torchrun), with transformers' LlavaNextVideo classes, on `cuda`
or (mini) `cpu`.

Usage (one process; `python -m torch.distributed.run --standalone --nproc_per_node N -m ...` for N,
see zoorepro/runners/transformers.py):
    python -m zoorepro.llava_video.llava_gpu --model_path DIR --dataset_name sampling_data \\
        --Eval_QA_root S/Video-Bench --Eval_Video_root S/VideoBench \\
        --chat_conversation_output_folder OUT [--ckpt 7B] [--dtype float32] [--device cpu|cuda] \\
        [--max_new_tokens 60] [--frames 8] [--measurements FILE] [--toolchain FILE --target T]

Faithful to upstream (../shared/upstream/llava_clipbert.md §1.3):
* the argument names; the questions of `{Eval_QA_root}/Eval_QA/{dataset_name}_QA_new.json`
  (`sampling_data` -> `sampling_datasets_QA_new.json`), in file order;
* the model and processor loaded offline (`from_pretrained(path, local_files_only=True)`,
  HF_HUB_OFFLINE=1), after the checkpoint pre-flight (make_mini_model.load_checkpoint);
* 8 frames by `np.arange(0, n, n/8).astype(int)`, PyAV (frames.py);
* the prompt: process_qs's question in the conversation [text, video] -> apply_chat_template(
  add_generation_prompt=True) -> everything before the first "ASSISTANT:" + the suffix +
  " ASSISTANT:" (videobench.gpu_prompt). For the mistral ([INST] ... [/INST]) and ChatML templates
  there is no "ASSISTANT:" to split at, so, as upstream, the suffix and " ASSISTANT:" follow the
  whole template text;
* greedy `generate(**inputs, max_new_tokens=60)` (do_sample=False; the hub generation configs
  set no sampling), `batch_decode(skip_special_tokens=True)`, the answer = the text after the first
  "ASSISTANT:" (videobench.cut_answer; upstream's str.find arithmetic slices from index 9 when
  there is none). The decoded text holds the prompt, which always ends with the "ASSISTANT:" this
  step appended, so every template's answer is the generated text: the fallback is reached only if
  decoding loses that marker (logged when it happens);
* the output `{folder}/{dataset_name}_eval.json`: {key: {video_id, question (process_qs's: the
  question and its choices text), output_sequence: [answer], time (seconds, the question end to
  end), dataset}}.

Changed, and why:
* `--dtype` is explicit and recorded (float32 default = the document's transformers 4.4x stack;
  transformers 5 would load the checkpoint's own dtype);
* `--clean-up-spaces` (default on): transformers 5 ignores `clean_up_tokenization_spaces=True` for
  BPE tokenizers (all five checkpoints'); v4, the document's stack, applied it to the decoded text
  (" ." -> "." ...). The same replacements (the tokenizer's `clean_up_tokenization`) are applied
  here to the decoded text before the cut, so the answer strings match the document's stack;
* questions are sharded over torchrun's processes (rank r answers question i when i % world ==
  r) and rank 0 merges the parts after a barrier; upstream made every process answer every
  question and write the same file;
* a question without `dataset` (a plain subset file rather than the sample) gets dataset_name
  (upstream raised KeyError); a missing video or a corrupt one is an error naming it;
* outputs are written atomically and a stale output is removed first, so nothing partial looks
  complete.

Fault-injection switches (for the injected-fault test, not for reproduction): `--frame-order
reversed` feeds the 8 frames in reverse order; `--prompt-suffix none` drops the suffix (the
prompt then ends "... ASSISTANT:" as the template's own generation prompt).

Measurements (`--measurements`, metric names prefixed by the checkpoint id `--ckpt`, precision =
the dtype, raw = the eval JSON):
* `{ckpt} load time` (s): the pre-flight, processor and model from_pretrained and the move to the
  device (imports not included);
* `{ckpt} seconds per question` (s): mean end-to-end time per question (video decode, prompt,
  processor, generate, decode, cut) — the JSON's `time`;
* `{ckpt} time to first token` (ms): mean time from the start of a question (video decode
  included) to the first generated token, taken inside the one real generate call by a streamer
  whose second `put` is that token (generate syncs the device there): no extra generation;
* `{ckpt} generated tokens/s`: generated tokens over the time spent in generate (prefill included).

With `--peak FILE` (shape scale: the real sizes, random weights), also the prefill and the decode
apart, inside the one generate call (the streamer's second `put` ends the prefill: vision tower,
projector, language model over the prompt, first token):
* `{ckpt} prefill seconds per question` (s), `{ckpt} prefill tokens/s` (prompt tokens, video tokens
  included, over prefill time), `{ckpt} decode tokens/s` (the tokens after the first over the rest of
  generate), and `{ckpt} prefill % of peak`, `{ckpt} decode % of peak`: FLOPs (count_flops:
  FlopCounterMode on the meta device at each question's prompt length and frames; a decode token at
  the middle of its answer's context) x rate over the target's peak (the `peak` rule's file).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

_STARTED = time.perf_counter()  # process start-up (imports) is reported beside the load time

from zoorepro.cli import hub_offline, run_step_then_exit
from zoorepro.errors import ConfigError, ToolchainMissing, ZooreproError
from zoorepro.progress import progress

DTYPES = ("float32", "float16", "bfloat16")
SUFFIXES = ("document", "none")
PART_DIR = ".{dataset}_eval.parts"
BARRIER_TIMEOUT_S = 6 * 3600


def parse_args(argv=None) -> argparse.Namespace:
    from zoorepro.llava_video.frames import DEFAULT_FRAMES, ORDERS

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_path", required=True, type=Path, help="checkpoint folder (HF save_pretrained layout)")
    p.add_argument("--dataset_name", default="sampling_data",
                   help="the QA file: sampling_data -> Eval_QA/sampling_datasets_QA_new.json, else "
                        "Eval_QA/<name>_QA_new.json")
    p.add_argument("--Eval_QA_root", required=True, type=Path)
    p.add_argument("--Eval_Video_root", required=True, type=Path)
    p.add_argument("--chat_conversation_output_folder", default=Path("./Chat_results"), type=Path)
    p.add_argument("--ckpt", help="checkpoint id for metric names (default: from the folder name "
                                  "LLaVA-NeXT-Video-<id>-hf)")
    p.add_argument("--dtype", choices=DTYPES, default="float32",
                   help="weights and activations (float32: the document's transformers 4.4x default)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--max_new_tokens", type=int, default=60)
    p.add_argument("--frames", type=int, default=DEFAULT_FRAMES)
    p.add_argument("--cpu-threads", dest="cpu_threads", type=int, default=1,
                   help="torch intra-op threads on cpu (default 1: the mini model gains nothing from more, and "
                        "on a busy 2-core machine OpenMP's spinning made generate 25x slower)")
    p.add_argument("--clean-up-spaces", dest="clean_up_spaces", action=argparse.BooleanOptionalAction,
                   default=True, help="apply transformers 4.x's clean_up_tokenization to the decoded text "
                                      "(v5 ignores the flag for BPE tokenizers)")
    p.add_argument("--frame-order", dest="frame_order", choices=ORDERS, default="upstream",
                   help="FAULT INJECTION: reversed feeds the frames in reverse order")
    p.add_argument("--prompt-suffix", dest="prompt_suffix", choices=SUFFIXES, default="document",
                   help="FAULT INJECTION: none drops the document's 'Please respond ...' suffix")
    p.add_argument("--measurements", type=Path, help="write the perf measurements here (rank 0)")
    p.add_argument("--toolchain", type=Path, help="write the runner's versions here (rank 0; needs --target)")
    p.add_argument("--target", help="the params.yaml target (for --toolchain)")
    p.add_argument("--peak", type=Path, help="the target's peak (python -m zoorepro.peaks --json): adds prefill "
                                             "and decode rows with FLOPs and % of peak (shape scale)")
    args = p.parse_args(argv)
    if args.max_new_tokens < 1 or args.frames < 1 or args.cpu_threads < 1:
        p.error("--max_new_tokens, --frames and --cpu-threads must be at least 1")
    if args.toolchain and not args.target:
        p.error("--toolchain needs --target")
    return args


# ------------------------------------------------------------------------------------------
# pieces shared with the bench and the tests


def ckpt_id(model_path: Path, given: str | None = None) -> str:
    """`--ckpt`, else the id in a llava-hf folder name (LLaVA-NeXT-Video-7B-DPO-hf -> 7B-DPO),
    else the folder's name."""
    if given:
        return given
    name = Path(model_path).name
    prefix, suffix = "LLaVA-NeXT-Video-", "-hf"
    return name[len(prefix):-len(suffix)] if name.startswith(prefix) and name.endswith(suffix) else name


def qa_file(eval_qa_root: Path, dataset_name: str) -> Path:
    """Upstream's select_data: `sampling_data` is the sampled file, any other name a subset's."""
    from zoorepro.llava_video import videobench as vb

    if dataset_name == vb.SAMPLING_DATA:
        return Path(eval_qa_root) / vb.EVAL_QA_DIR / vb.SAMPLED_QA
    return vb.qa_path(eval_qa_root, dataset_name)


def load_questions(eval_qa_root: Path, dataset_name: str, eval_video_root: Path) -> dict[str, dict]:
    """{key: item} in file order, validated, every video present (a missing one is named)."""
    from zoorepro.llava_video import videobench as vb

    items = vb.load_qa_file(qa_file(eval_qa_root, dataset_name), dataset_name)
    missing = [(key, Path(eval_video_root) / item["vid_path"]) for key, item in items.items()
               if not (Path(eval_video_root) / item["vid_path"]).is_file()]
    if missing:
        key, path = missing[0]
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ZooreproError(f"question {key}: video not found: {path}{more}")
    return items


def build_prompt(processor, question: str, suffix: str = "document") -> str:
    """The GPU prompt for `question` with this processor's chat template (module docstring)."""
    from zoorepro.llava_video import videobench as vb

    text = processor.apply_chat_template(vb.gpu_conversation(question), add_generation_prompt=True)
    if suffix == "document":
        return vb.gpu_prompt(text)
    if suffix == "none":  # fault injection: the template's text up to "ASSISTANT:", then the marker
        return text.split(vb.ASSISTANT)[0] + vb.ASSISTANT
    raise ConfigError(f"unknown prompt suffix {suffix!r} (known: {', '.join(SUFFIXES)})")


def shard(keys: list[str], rank: int, world: int) -> list[str]:
    """The questions process `rank` of `world` answers: every world-th from rank."""
    return [k for i, k in enumerate(keys) if i % world == rank]


class FirstToken:
    """A generate() streamer that only takes the time: generate puts the prompt first, then each
    new token (after the device has produced it), so the second put is the first token."""

    def __init__(self) -> None:
        self.puts = 0
        self.first: float | None = None

    def put(self, value) -> None:
        self.puts += 1
        if self.puts == 2:
            self.first = time.perf_counter()

    def end(self) -> None:
        pass


def torch_dtype(name: str):
    import torch

    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


def prepare(processor, prompt: str, frames, device: str, dtype):
    """The processor's tensors for one question, on `device`, floats in the model's dtype."""
    import torch

    inputs = processor(text=prompt, videos=frames, return_tensors="pt").to(device)
    return inputs.to(dtype) if dtype != torch.float32 else inputs


def sync(device: str) -> None:
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def generate_answer(model, processor, inputs, max_new_tokens: int, clean_up: bool, device: str) -> dict:
    """One question's generate + decode + cut, timed: {answer, decoded, new_tokens, generate_s,
    first_token_at (perf_counter), marker_found}."""
    import torch

    from zoorepro.llava_video import videobench as vb

    streamer = FirstToken()
    start = time.perf_counter()
    with torch.inference_mode():
        output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, streamer=streamer)
    sync(device)
    generate_s = time.perf_counter() - start
    decoded = processor.batch_decode(output, skip_special_tokens=True, clean_up_tokenization_spaces=False)[0]
    if clean_up:
        decoded = processor.tokenizer.clean_up_tokenization(decoded)
    return {"answer": vb.cut_answer(decoded), "decoded": decoded, "marker_found": vb.ASSISTANT in decoded,
            "new_tokens": int(output.shape[-1] - inputs["input_ids"].shape[-1]), "generate_s": generate_s,
            "prompt_tokens": int(inputs["input_ids"].shape[-1]), "generate_at": start,
            "first_token_at": streamer.first if streamer.first is not None else time.perf_counter()}


def answer_questions(model, processor, items: dict[str, dict], keys: list[str], args, device: str,
                     dtype, log=print, report: bool = True) -> tuple[dict, dict]:
    """The per-question loop: (results {key: document entry}, stats {key: timings}); `report`:
    show progress (rank 0 only)."""
    from zoorepro.llava_video import videobench as vb
    from zoorepro.llava_video.frames import read_frames

    results, stats = {}, {}
    bar = progress(total=len(keys), desc=f"answer {args.dataset_name}", unit="questions", disable=not report)
    for n, key in enumerate(keys, 1):
        item = items[key]
        start = time.perf_counter()
        question, video_path = vb.process_qs(item, str(args.Eval_Video_root))
        frames = read_frames(video_path, args.frames, args.frame_order)
        prompt = build_prompt(processor, question, args.prompt_suffix)
        inputs = prepare(processor, prompt, frames, device, dtype)
        out = generate_answer(model, processor, inputs, args.max_new_tokens, args.clean_up_spaces, device)
        elapsed = time.perf_counter() - start
        results[key] = {"video_id": item["video_id"], "question": question, "output_sequence": [out["answer"]],
                        "time": elapsed, "dataset": item.get("dataset", args.dataset_name)}
        stats[key] = {"ttft_s": out["first_token_at"] - start, "new_tokens": out["new_tokens"],
                      "generate_s": out["generate_s"], "prefill_s": out["first_token_at"] - out["generate_at"],
                      "prompt_tokens": out["prompt_tokens"], "frames": int(frames.shape[0])}
        with bar.external_write_mode():  # a terminal's bar steps aside for the line
            if not out["marker_found"]:
                log(f"warning: {key}: no {vb.ASSISTANT!r} in the decoded text; the answer is sliced from index 9 "
                    "as upstream's str.find arithmetic does")
            log(f"[{n}/{len(keys)}] {key}: {out['answer']!r} ({elapsed:.3f} s)")
        bar.update()
    bar.close()
    return results, stats


# ------------------------------------------------------------------------------------------
# the bench helper (scripts/bench.py)


def bench_ratio(model, processor, prepared: list, max_new_tokens: int, device: str = "cpu",
                repeats: int = 3, clean_up: bool = True) -> dict:
    """This step's per-question generation (generate_answer: streamer hook, timing, device sync,
    decode, clean-up, cut) against a bare `model.generate(**inputs, max_new_tokens, do_sample=False)`
    over the same model and the same preprocessed inputs (`prepared`: processor outputs on the
    device). Each question is timed both ways back to back (bare, then ours), `repeats` times after
    one warm-up pass, and each question's fastest time of each way counts: on a shared machine a
    burst of load then hits one question's pair, not one whole loop. Returns {bare_s, ours_s
    (sums over the questions), ratio = bare_s / ours_s (1.0 = no overhead; goal >= 0.97),
    questions, repeats}. Video decode and the processor are outside both: they are the same work
    for any implementation."""
    import torch

    def bare(inputs) -> float:
        start = time.perf_counter()
        with torch.inference_mode():
            model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        sync(device)
        return time.perf_counter() - start

    def ours(inputs) -> float:
        start = time.perf_counter()
        generate_answer(model, processor, inputs, max_new_tokens, clean_up, device)
        return time.perf_counter() - start

    for inputs in prepared:  # warm-up
        bare(inputs), ours(inputs)
    best_bare = [float("inf")] * len(prepared)
    best_ours = [float("inf")] * len(prepared)
    for _ in range(repeats):
        for i, inputs in enumerate(prepared):
            best_bare[i] = min(best_bare[i], bare(inputs))
            best_ours[i] = min(best_ours[i], ours(inputs))
    bare_s, ours_s = sum(best_bare), sum(best_ours)
    return {"bare_s": bare_s, "ours_s": ours_s, "ratio": bare_s / ours_s, "questions": len(prepared),
            "repeats": repeats}


def prepare_questions(processor, items: dict[str, dict], eval_video_root: Path, device: str, dtype,
                      frames: int = 8) -> list:
    """The processor inputs of `items` (document prompt, upstream frames), for bench_ratio."""
    from zoorepro.llava_video import videobench as vb
    from zoorepro.llava_video.frames import read_frames

    out = []
    for item in items.values():
        question, video_path = vb.process_qs(item, str(eval_video_root))
        out.append(prepare(processor, build_prompt(processor, question), read_frames(video_path, frames),
                           device, dtype))
    return out


# ------------------------------------------------------------------------------------------
# processes, parts and the merge


def part_path(folder: Path, dataset: str, rank: int, world: int) -> Path:
    return Path(folder) / PART_DIR.format(dataset=dataset) / f"rank{rank}-of-{world}.json"


def write_part(path: Path, rank: int, world: int, keys: list[str], results: dict, stats: dict,
               load_s: float) -> None:
    from zoorepro.fsutil import atomic_write_text

    atomic_write_text(path, json.dumps({"rank": rank, "world": world, "keys": keys, "results": results,
                                        "stats": stats, "load_s": load_s}) + "\n")


def merge_parts(folder: Path, dataset: str, world: int, keys: list[str]) -> tuple[dict, dict, list[float]]:
    """Rank 0's merge: every rank's part, each holding exactly its shard; (results in the QA
    file's order, stats, load times). A missing or foreign part is an error."""
    results, stats, loads = {}, {}, []
    for rank in range(world):
        path = part_path(folder, dataset, rank, world)
        try:
            part = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ZooreproError(f"rank {rank}'s answers {path} are missing or unreadable: {exc}") from None
        expected = shard(keys, rank, world)
        if part.get("world") != world or part.get("rank") != rank or part.get("keys") != expected \
                or sorted(part.get("results", {})) != sorted(expected):
            raise ZooreproError(f"{path} does not hold rank {rank} of {world}'s {len(expected)} answers")
        results.update(part["results"])
        stats.update(part["stats"])
        loads.append(float(part["load_s"]))
    return {k: results[k] for k in keys}, stats, loads


def measurements(ckpt: str, dtype: str, results: dict, stats: dict, load_s: float, raw: Path, device: str,
                 world: int, startup_s: float | None = None, flops_token: float | None = None,
                 gpu_name: str | None = None) -> list:
    from zoorepro.measurements import Measurement

    n = len(results)
    per_q = sum(r["time"] for r in results.values()) / n
    ttft = 1000.0 * sum(s["ttft_s"] for s in stats.values()) / n
    tokens = sum(s["new_tokens"] for s in stats.values())
    gen_s = sum(s["generate_s"] for s in stats.values())
    where = f"transformers on {device}, {world} process(es), {n} questions"
    return [
        Measurement(f"{ckpt} load time", "latency", load_s, "s", precision=dtype, raw=(str(raw),),
                    note=f"{where}; pre-flight + processor + model from_pretrained + move to the device, the "
                         "slowest process; process start-up (imports) not included"
                         + (f": {startup_s:.1f} s on rank 0" if startup_s is not None else "")),
        Measurement(f"{ckpt} seconds per question", "latency", per_q, "s", batch_size=1, precision=dtype,
                    raw=(str(raw),), note=f"{where}; mean end-to-end time per question (video decode, prompt, "
                                          "processor, generate, decode)"),
        Measurement(f"{ckpt} time to first token", "latency", ttft, "ms", batch_size=1, precision=dtype,
                    raw=(str(raw),), note=f"{where}; mean from the question's start (video decode included) "
                                          "to the first generated token, taken by a streamer in the one "
                                          "generate call"),
        Measurement(f"{ckpt} generated tokens/s", "throughput", tokens / gen_s if gen_s else 0.0, "tokens/s",
                    batch_size=1, precision=dtype, raw=(str(raw),),
                    note=f"{where}; {tokens} generated tokens over the time spent in generate (prefill included)"),
    ] + peak_rows(ckpt, dtype, raw, where, tokens / gen_s if gen_s else 0.0, flops_token, gpu_name)


def peak_rows(ckpt: str, dtype: str, raw: Path, where: str, tokens_per_s: float, flops_token: float | None,
              gpu_name: str | None) -> list:
    """On a GPU listed in zoorepro/peaks.yaml: generated tokens/s × FLOPs a token over the GPU's peak
    (zoorepro/llava_video/compute.py says how both are counted). Prefill is inside the timed span,
    so this understates the decode's own share of peak."""
    from zoorepro.peaks import gpu_peak
    from zoorepro.measurements import Measurement

    if not gpu_name or not flops_token:
        return []
    peak = gpu_peak(gpu_name, dtype)
    if peak is None:
        print(f"% of peak: {gpu_name} is not in zoorepro/peaks.yaml: no row", flush=True)
        return []
    flops, source = peak
    return [Measurement(f"{ckpt} % of peak", "throughput", 100.0 * tokens_per_s * flops_token / flops, "percent",
                        batch_size=1, precision=dtype, raw=(str(raw),),
                        note=(f"{where}; {flops_token / 1e9:.2f} GFLOP a generated token (2 x the LM's matmul "
                              f"parameters) x generated tokens/s over {flops / 1e12:.1f} TFLOP/s ({gpu_name}, "
                              f"{dtype}; {source})"))]


def shape_rows(ckpt: str, dtype: str, stats: dict, raw: Path, where: str, config, peak_file: Path) -> list:
    """Prefill and decode apart, with FLOPs counted at each question's shapes and % of the target's
    peak (module docstring)."""
    from zoorepro.llava_video import count_flops as cf
    from zoorepro.measurements import Measurement
    from zoorepro.peaks import read_peak

    peak = read_peak(peak_file)
    model = cf.meta_model(config)
    prefill_s = decode_s = prompt = decode_tokens = prefill_flops = decode_flops = 0.0
    for s in stats.values():
        counted = cf.count(model, s["frames"], s["prompt_tokens"], s["prompt_tokens"] + s["new_tokens"] // 2)
        prefill_s += s["prefill_s"]
        prompt += s["prompt_tokens"]
        prefill_flops += counted["prefill"]
        steps = s["new_tokens"] - 1  # the first token comes out of the prefill
        if steps > 0:
            decode_s += s["generate_s"] - s["prefill_s"]
            decode_tokens += steps
            decode_flops += steps * counted["per_token"]
    n = len(stats)
    rows = [
        Measurement(f"{ckpt} prefill seconds per question", "latency", prefill_s / n, "s", batch_size=1,
                    precision=dtype, raw=(str(raw),),
                    note=f"{where}; mean time from generate's start to its first token (vision tower, projector, "
                         f"the language model over {prompt / n:.0f} prompt tokens, the first token)"),
        Measurement(f"{ckpt} prefill tokens/s", "throughput", prompt / prefill_s, "tokens/s", batch_size=1,
                    precision=dtype, raw=(str(raw),),
                    note=f"{where}; prompt tokens (video tokens included) over prefill time; "
                         f"{prefill_flops / n / 1e12:.2f} TFLOP a prefill ({cf.METHOD})"),
    ]
    if decode_tokens:
        rows.append(Measurement(f"{ckpt} decode tokens/s", "throughput", decode_tokens / decode_s, "tokens/s",
                                batch_size=1, precision=dtype, raw=(str(raw),),
                                note=f"{where}; {decode_tokens:.0f} tokens after each answer's first over the rest "
                                     f"of generate; {decode_flops / decode_tokens / 1e9:.2f} GFLOP a token"))
    if peak is None:
        print(f"% of peak: no peak known for this target ({peak_file}): no row", flush=True)
        return rows
    rows.append(Measurement(f"{ckpt} prefill % of peak", "throughput", peak.percent(prefill_flops / prefill_s),
                            "percent", batch_size=1, precision=dtype, raw=(str(raw),),
                            note=f"{prefill_flops / n / 1e12:.3f} TFLOP a prefill x prefills/s over {peak.describe()}"))
    if decode_tokens:
        rows.append(Measurement(f"{ckpt} decode % of peak", "throughput", peak.percent(decode_flops / decode_s),
                                "percent", batch_size=1, precision=dtype, raw=(str(raw),),
                                note=f"{decode_flops / decode_tokens / 1e9:.2f} GFLOP a token x decode tokens/s over "
                                     f"{peak.describe()}"))
    return rows


def main(argv=None) -> int:
    hub_offline()
    args = parse_args(argv)
    from zoorepro.fsutil import atomic_write_text
    from zoorepro.runners.transformers import check_device, dist_env

    rank, world, local_rank = dist_env()
    device = args.device if args.device == "cpu" else f"cuda:{local_rank}"
    try:
        check_device(args.device)
    except ToolchainMissing as exc:
        raise exc.for_table("llava_video", "results[/mini]") from None
    folder = args.chat_conversation_output_folder
    final = folder / f"{args.dataset_name}_eval.json"
    ckpt = ckpt_id(args.model_path, args.ckpt)
    if rank == 0:  # a stale complete-looking output from an earlier run must not survive a failure
        for stale in (final, args.measurements):
            if stale is not None:
                Path(stale).unlink(missing_ok=True)
    items = load_questions(args.Eval_QA_root, args.dataset_name, args.Eval_Video_root)
    keys = list(items)
    mine = shard(keys, rank, world)

    import torch
    from transformers import (  # noqa: F401
        LlavaNextVideoForConditionalGeneration,
        LlavaNextVideoProcessor,
    )

    from zoorepro.llava_video.make_mini_model import load_checkpoint

    if args.device == "cpu":
        torch.set_num_threads(args.cpu_threads)

    if world > 1:
        import datetime

        import torch.distributed as dist

        dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=BARRIER_TIMEOUT_S))
    dtype = torch_dtype(args.dtype)
    start = time.perf_counter()
    startup_s = start - _STARTED
    model, processor = load_checkpoint(args.model_path, dtype=dtype)
    model.to(device)
    sync(device)
    load_s = time.perf_counter() - start
    print(f"rank {rank}/{world}: start-up {startup_s:.2f} s; {args.model_path} ({ckpt}) loaded in {load_s:.2f} s "
          f"as {args.dtype} on {device}; {len(mine)} of {len(keys)} questions; frame order {args.frame_order}, "
          f"prompt suffix {args.prompt_suffix}", flush=True)
    results, stats = answer_questions(model, processor, items, mine, args, device, dtype,
                                      log=lambda m: print(f"rank {rank}: {m}", flush=True), report=rank == 0)
    write_part(part_path(folder, args.dataset_name, rank, world), rank, world, mine, results, stats, load_s)
    if world > 1:
        torch.distributed.barrier()
    if rank == 0:
        merged, all_stats, loads = merge_parts(folder, args.dataset_name, world, keys)
        atomic_write_text(final, json.dumps(merged, indent=2, ensure_ascii=False) + "\n")
        # Lineage: the answers were made from these weights, this sampled QA file and these videos.
        from zoorepro import lineage

        lineage.record(final, [args.model_path, qa_file(args.Eval_QA_root, args.dataset_name), Path(args.Eval_Video_root) / "Eval_video" / args.dataset_name])
        import shutil

        shutil.rmtree(part_path(folder, args.dataset_name, 0, world).parent, ignore_errors=True)
        if args.toolchain:
            from zoorepro.runners.toolchain import write_toolchain

            write_toolchain(args.toolchain, "llava_video", args.target,
                            {"dtype": args.dtype, "processes": world, "frame_order": args.frame_order,
                             "prompt_suffix": args.prompt_suffix, "clean_up_spaces": args.clean_up_spaces})
        if args.measurements:
            from zoorepro.measurements import print_measurements, write_measurements

            on_gpu = args.device == "cuda"
            if on_gpu:
                from zoorepro.llava_video.compute import flops_per_token
            rows = measurements(
                ckpt, args.dtype, merged, all_stats, max(loads), final, args.device, world, startup_s,
                flops_token=flops_per_token(model) if on_gpu else None,
                gpu_name=torch.cuda.get_device_name(device) if on_gpu else None)
            if args.peak:
                rows += shape_rows(ckpt, args.dtype, all_stats, final,
                                   f"transformers on {args.device}, {world} process(es), {len(merged)} questions",
                                   model.config, args.peak)
            print_measurements(write_measurements(args.measurements, rows))
        print(f"wrote {len(merged)} answers to {final}", flush=True)
    if world > 1:
        torch.distributed.barrier()  # no process leaves while rank 0 merges
        torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    # Leave without the interpreter's teardown once written and flushed: tearing down torch and
    # transformers took 2-4 s a process on the 2-core machine (measured), a large share of a mini run.
    run_step_then_exit(main)
