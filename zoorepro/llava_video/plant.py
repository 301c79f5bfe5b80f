"""The mini LLaVA-NeXT-Video eager reference and planting: run every tiny checkpoint on every mini
question, the way each side of the document prompts it, judge the answers with an independent
judge, and choose ANSWER.json so every planted accuracy is known and non-degenerate.

Why: the tiny checkpoints have random weights, so a mini table could not tell a right chain from a
wrong one unless the expected values are known by construction. This module is that construction,
written independently of the pipeline's steps (frames.py, llava_gpu.py, precision_test.py):

* frames: its own PyAV decode of the upstream rule, indices np.arange(0, n, n/8).astype(int);
* prompts: the GPU side as llava_gpu builds it (the checkpoint's chat template, then
  videobench.gpu_prompt); the NPU side as MindIE's llava_videobench builds it (videobench.npu_prompt,
  the vicuna form for every checkpoint);
* decoding: its own greedy loop over the model's forward with a KV cache, in float32, for
  max_new_tokens tokens or until end-of-sequence (not `generate`, so the pipeline's generate call is checked against it);
  the GPU answer is the whole sequence decoded with skip_special_tokens and cut after
  "ASSISTANT:"; the NPU answer is the generated tokens decoded with skip_special_tokens;
* judge (`parse_letter`): the corrected reading — upstream's parsing rules (drop '</s>' and
  '<|im_end|>', collapse double spaces; shorter than 5 characters: the first of A..F contained;
  else 'is X'; else ' X.') extended to F; unparseable counts wrong; accuracy over all questions.

Margins: the top-vs-second logit gap at the first generated token must be >= min_margin (default
0.4 logit; float16 runs of these checkpoints deviate from float32 by at most ~0.13 logit on the
letter logits, measured; bfloat16 by ~1.1, which is not covered) for every (checkpoint, side,
question), and every answer must parse to the first generated letter whether or not the NPU
string keeps its leading space; a question that fails is regenerated (new words, same video)
deterministically until it holds.

ANSWER.json (shared by all checkpoints) is chosen once: for a seeded subset of about
`target_accuracy` of the questions the answer is the 7B checkpoint's cpu-side letter, for the rest
a different valid letter (seeded); the other checkpoints then score what they score. Every planted
value must lie strictly between 0 and 100, else the choice is redrawn.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoorepro.errors import ZooreproError
from zoorepro.llava_video import videobench as vb

N_FRAMES = 8
SIDES = ("cpu", "npu")


# --------------------------------------------------------------------------------------------
# frames


def decode_frames(path: Path, n_frames: int = N_FRAMES) -> np.ndarray:
    """uint8 [n_frames, H, W, 3]: the frames at np.arange(0, n, n/n_frames).astype(int) of the
    video, n = the container's frame count (counted by decoding when it reports 0). A file PyAV
    cannot read, or one with fewer frames than it reports, is a ZooreproError naming it."""
    import av

    path = Path(path)
    if not path.is_file():
        raise ZooreproError(f"video not found: {path}")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ZooreproError(f"video {path} has no video stream")
            n = container.streams.video[0].frames
            if n <= 0:
                n = sum(1 for _ in container.decode(video=0))
                container.seek(0)
            if n <= 0:
                raise ZooreproError(f"video {path} has no frames")
            wanted = set(np.arange(0, n, n / n_frames).astype(int).tolist())
            frames = [f.to_ndarray(format="rgb24") for i, f in enumerate(container.decode(video=0)) if i in wanted]
    except av.error.FFmpegError as exc:
        raise ZooreproError(f"cannot decode video {path}: {exc}") from exc
    if len(frames) != len(wanted):
        raise ZooreproError(f"video {path}: decoded {len(frames)} of the {len(wanted)} sampled frames "
                            f"(truncated or corrupt file?)")
    return np.stack(frames)


# --------------------------------------------------------------------------------------------
# judge


def parse_letter(text: str) -> str | None:
    """The corrected reading of one answer string: upstream's rules, extended to F."""
    for junk in ("</s>", "<|im_end|>"):
        text = text.replace(junk, "")
    for _ in range(10):
        text = text.replace("  ", " ")
    letters = vb.LETTERS
    if len(text) < 5:
        return next((x for x in letters if x in text), None)
    for x in letters:
        if f"is {x}" in text:
            return x
    for x in letters:
        if f" {x}." in text:
            return x
    return None


def accuracy(letters: dict[str, str | None], answers: dict[str, str]) -> float:
    """Percent of `answers`' questions whose parsed letter equals the answer (unparsed: wrong)."""
    return 100.0 * sum(letters.get(k) == a for k, a in answers.items()) / len(answers)


# --------------------------------------------------------------------------------------------
# the eager reference


@dataclass
class Run:
    """One (checkpoint, side, question): the prompt, the decoded answer string, the parsed letter,
    the first generated token's letter and its top-vs-second logit margin."""

    prompt: str
    answer: str
    letter: str | None
    first: str
    margin: float


@dataclass
class Reference:
    """A loaded checkpoint and how to run it."""

    ckpt: str
    model: object
    processor: object
    letter_ids: dict[str, int] = field(default_factory=dict)

    def prompt(self, side: str, question: str) -> str:
        if side == "npu":
            return vb.npu_prompt(question)
        text = self.processor.apply_chat_template(vb.gpu_conversation(question), add_generation_prompt=True)
        return vb.gpu_prompt(text)

    def run(self, side: str, question: str, frames: np.ndarray, max_new_tokens: int) -> Run:
        import torch

        prompt = self.prompt(side, question)
        inputs = self.processor(text=prompt, videos=frames, return_tensors="pt")
        ids = inputs["input_ids"]
        mask = inputs["attention_mask"]
        generated: list[int] = []
        with torch.no_grad():
            out = self.model(**inputs, use_cache=True, logits_to_keep=1)
            logits = out.logits[0, -1].float()
            top2 = torch.topk(logits, 2)
            margin = float(top2.values[0] - top2.values[1])
            first_id = int(top2.indices[0])
            generated.append(first_id)
            past = out.past_key_values
            eos = self.processor.tokenizer.eos_token_id
            for _ in range(max_new_tokens - 1):
                if generated[-1] == eos:
                    break
                mask = torch.cat([mask, torch.ones((1, 1), dtype=mask.dtype)], dim=1)
                out = self.model(input_ids=torch.tensor([[generated[-1]]]), attention_mask=mask,
                                 past_key_values=past, use_cache=True)
                past = out.past_key_values
                generated.append(int(out.logits[0, -1].argmax()))
        tok = self.processor.tokenizer
        if side == "npu":
            answer = tok.decode(generated, skip_special_tokens=True)
        else:
            answer = vb.cut_answer(tok.decode(ids[0].tolist() + generated, skip_special_tokens=True))
        first = next((x for x, t in self.letter_ids.items() if t == first_id), "")
        return Run(prompt, answer, parse_letter(answer), first.strip(), margin)


def load_reference(ckpt: str, folder: Path) -> Reference:
    """A checkpoint from its folder, as the pipeline loads it (offline, float32)."""
    import torch

    from zoorepro.llava_video.make_mini_model import letter_token_ids, load_checkpoint

    torch.set_num_threads(1)
    model, processor = load_checkpoint(folder)
    return Reference(ckpt, model, processor, letter_token_ids(processor.tokenizer))


def sound(run: Run, min_margin: float) -> bool:
    """A run the planting can rely on: margin large enough, and the answer parses to the first
    generated letter with or without the leading space the NPU string may carry."""
    answer = run.answer
    return (run.margin >= min_margin and run.first != "" and run.letter == run.first
            and parse_letter(answer.strip()) == run.first and parse_letter(" " + answer.lstrip()) == run.first)


# --------------------------------------------------------------------------------------------
# planting


def choose_answers(questions: dict[str, dict], predicted: dict[str, str | None], seed: int,
                   target_accuracy: float, attempt: int) -> dict[str, str]:
    """{key: letter}: the 7B cpu prediction for a seeded share of the questions, another valid
    letter for the rest."""
    rng = np.random.default_rng([seed, 1000 + attempt])
    keys = sorted(questions)
    valid = {k: vb.LETTERS[:len(questions[k]["choices"])] for k in keys}
    can_hit = [k for k in keys if predicted.get(k) in valid[k]]
    n_hit = min(len(can_hit), int(round(target_accuracy * len(keys))))
    hits = set(rng.permutation(can_hit)[:n_hit].tolist()) if can_hit else set()
    answers = {}
    for k in keys:
        if k in hits:
            answers[k] = predicted[k]
        else:
            others = [x for x in valid[k] if x != predicted.get(k)] or list(valid[k])
            answers[k] = str(others[int(rng.integers(len(others)))])
    return answers


def planted_values(questions: dict[str, dict], letters: dict[tuple[str, str], dict[str, str | None]],
                   answers: dict[str, str], ckpts) -> dict[str, dict]:
    """Per checkpoint: cpu accuracy, npu accuracy (percent, over all questions) and the cpu
    side's Video-Bench score (per-subset accuracy -> videobench_score, percent)."""
    out = {}
    for ckpt in ckpts:
        cpu = letters[(ckpt, "cpu")]
        per_subset: dict[str, list[bool]] = {}
        for k, a in answers.items():
            per_subset.setdefault(questions[k]["dataset"], []).append(cpu.get(k) == a)
        acc = {s: 100.0 * sum(v) / len(v) for s, v in per_subset.items()}
        score = vb.videobench_score(acc)
        npu = letters[(ckpt, "npu")]
        cpu_acc, npu_acc = accuracy(cpu, answers), accuracy(npu, answers)
        same = sum(1 for k in answers if cpu.get(k) is not None and cpu.get(k) == npu.get(k))
        out[ckpt] = {"cpu accuracy": cpu_acc, "npu accuracy": npu_acc, "cpu final score": score["final"],
                     "per_subset_cpu": acc, "npu-cpu gap": abs(npu_acc - cpu_acc),
                     "npu-cpu same answer": 100.0 * same / len(answers)}
    return out


def degenerate(values: dict[str, dict]) -> list[str]:
    """The planted values that are 0 or 100 (or not finite)."""
    bad = []
    for ckpt, row in values.items():
        for name in ("cpu accuracy", "npu accuracy", "cpu final score"):
            v = row[name]
            if not (0.0 < v < 100.0):
                bad.append(f"{ckpt} {name} = {v}")
    return bad
