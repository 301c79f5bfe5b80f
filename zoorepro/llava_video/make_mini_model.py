"""A tiny random-weight LLaVA-NeXT-Video checkpoint in the real Hugging Face layout, built offline,
one per chat-template family of the document's five checkpoints; and `load_checkpoint`, the
pre-flight every step that loads a checkpoint folder runs first.

Why: the mini chain must load its checkpoints exactly as the full chain loads the llava-hf
snapshots (`from_pretrained(dir, local_files_only=True)` for LlavaNextVideoForConditionalGeneration
and LlavaNextVideoProcessor, HF_HUB_OFFLINE=1), with the chat template of each family, since the
template decides the GPU prompt (videobench.gpu_prompt):

* vicuna (7B, 7B-DPO): `USER: <video>\\n{text} ASSISTANT:`
* mistral (7B-32K):     `[INST] <video>\\n{text} [/INST]`
* chatml (34B, 34B-DPO): `<|im_start|>user\\n<video>\\n{text}<|im_end|>\\n<|im_start|>assistant\\n`

Model (../shared/upstream/next_stage.md §A2): CLIP vision tower hidden 32, 2 layers, 2 heads, image
56, patch 14 (4x4 patches, pooled 2x2 -> 4 tokens a frame, 32 `<video>` tokens for 8 frames);
Llama text model hidden 32, 2 layers, 2 heads. Tokenizer: a BPE trained here with `tokenizers` on
the templates, the prompt strings and the mini question words (WORDS), with byte fallback (256
`<0xNN>` tokens), wrapped in transformers.LlamaTokenizer; `<video>` and `<image>` (and for chatml
`<|im_start|>`, `<|im_end|>`) are special tokens.

How greedy decoding is made to answer with letters (the planting, zoorepro/llava_video/plant.py):
random weights would emit arbitrary tokens, which no judge parses. After the seeded random init:

* three residual dimensions are reserved: DIM_LETTER (= FLAG for the letter tokens " A".." F",
  "A".."F", 0 for every other token), DIM_DOT (= FLAG for ".", else 0) and DIM_ONE (= ONE for every
  token). Every layer's attention output (o_proj) and MLP output (down_proj) rows for these
  dimensions are zeroed, so at any position they carry exactly the current token's embedding
  values through to the final norm;
* lm_head is zero except: the rows of " A".." F" read DIM_LETTER and DIM_DOT with -LETTER_GATE,
  DIM_ONE with +LETTER_BIAS (scaled by its mean normalised value) and the 29 free dimensions with a
  seeded random direction per letter, made orthogonal to the mean free state of a calibration
  set (12 seeded random questions and videos: what every context shares cannot pick the letter)
  and scaled so the letter's logit varies with std LETTER_SPREAD across contexts; the row of "."
  reads DIM_LETTER with +DOT_GATE; the row of "</s>" reads DIM_DOT with +DOT_GATE. Every other
  token's logit is exactly 0.
* So after the prompt (which always ends with "ASSISTANT:") a letter wins, and WHICH letter is
  decided by the free dimensions, i.e. by the attention over the video tokens and the words: it
  depends on the frames, their order and the prompt (tested by the generator's fault runs).
  After the letter "." wins, after "." the end-of-sequence token. Greedy decoding therefore
  answers " C." and stops, for any max_new_tokens >= 2 (" C" for 1): parseable by upstream's
  judging (a string shorter than 5 characters: the letter it contains) and by a corrected reading,
  with or without the leading space.
* to let the context, not the last token's own embedding, decide the letter, the attention value
  and output projections are scaled up (ATTN_GAIN).

The same seed gives the same bytes in every file (tested): weights come from torch's seeded
generator, the BPE trainer is deterministic on the fixed corpus, and transformers writes sorted,
timestamp-free JSON.

Usage: python -m zoorepro.llava_video.make_mini_model --out DIR --family vicuna --seed 0
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from zoorepro.cli import run_step
from zoorepro.errors import ZooreproError

FAMILIES = ("vicuna", "mistral", "chatml")
CHECKPOINT_FAMILY = {"7B": "vicuna", "7B-DPO": "vicuna", "7B-32K": "mistral", "34B": "chatml", "34B-DPO": "chatml"}
CHECKPOINTS = ("7B", "7B-32K", "7B-DPO", "34B", "34B-DPO")


def folder_name(ckpt: str) -> str:
    """The llava-hf snapshot's folder name of a checkpoint id."""
    return f"LLaVA-NeXT-Video-{ckpt}-hf"


# The chat templates, as Jinja over the conversation format of the GPU script: a message's
# content is a list of {"type": "text", "text": ...} and {"type": "video"}; videos are rendered
# before the text whatever their order in the list.
_VIDEOS = "{% for c in message['content'] %}{% if c['type'] == 'video' %}{{ '<video>\\n' }}{% endif %}{% endfor %}"
_TEXTS = "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}"
CHAT_TEMPLATES = {
    "vicuna": ("{% for message in messages %}{{ message['role'].upper() + ': ' }}" + _VIDEOS
               + "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] + ' ' }}{% endif %}"
               "{% endfor %}{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"),
    "mistral": ("{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' }}" + _VIDEOS + _TEXTS
                + "{{ ' [/INST]' }}{% else %}{{ ' ' }}" + _TEXTS + "{{ '</s>' }}{% endif %}{% endfor %}"),
    "chatml": ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' }}" + _VIDEOS + _TEXTS
               + "{{ '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
               "{% endif %}"),
}
FAMILY_SPECIAL = {"vicuna": (), "mistral": (), "chatml": ("<|im_start|>", "<|im_end|>")}

# Words the mini questions and options are made of (make_mini_data draws from these), so the BPE
# covers them with few tokens.
WORDS = ("what", "is", "the", "man", "woman", "person", "doing", "in", "video", "color", "of", "car", "ball",
         "dog", "cat", "red", "blue", "green", "yellow", "white", "black", "running", "walking", "cooking",
         "driving", "jumping", "playing", "how", "many", "people", "are", "there", "where", "does", "it",
         "happen", "kitchen", "street", "park", "road", "field", "room", "one", "two", "three", "four", "five",
         "left", "right", "turn", "stop", "go", "straight", "object", "moving", "scene", "why", "who", "a",
         "on", "at", "with", "and", "after", "before", "first", "last", "shows", "music", "song", "game")
SIZE = 56  # vision image size (pixels); frames are resized and center-cropped to it
PATCH = 14
HIDDEN = 32
DIM_LETTER, DIM_ONE, DIM_DOT = 0, 1, 2
FREE = 3  # dimensions FREE.. decide the letter
FLAG, ONE = 1.0, 1.0
LETTER_GATE, DOT_GATE, LETTER_BIAS, LETTER_SPREAD = 400.0, 400.0, 20.0, 10.0
CALIBRATION = 12
ATTN_GAIN = 12.0
ANSWER_LETTERS = "ABCDEF"


def corpus() -> list[str]:
    """The BPE's training text: templates' fixed parts, the prompt strings, the words."""
    from zoorepro.llava_video import videobench as vb

    lines = ["USER: ASSISTANT:", "[INST] [/INST]", "user assistant", vb.PROMPT_SUFFIX, vb.PROMPT_SUFFIX,
             "Choices: A. B. C. D. E. F.", " ".join(f"{x}." for x in ANSWER_LETTERS)]
    for n, word in ((2, "two"), (3, "three"), (4, "four"), (5, "five"), (6, "six")):
        lines.append(f"Among the {word} options {', '.join(ANSWER_LETTERS[:n])} above, the one closest to the "
                     "correct answer is:")
    lines += [" ".join(WORDS)] * 3 + [f"{w}?" for w in WORDS[:20]]
    return lines


def build_tokenizer(family: str, special_at: int | None = None):
    """transformers.LlamaTokenizer over a BPE trained here (byte fallback, Metaspace), with the
    special tokens of the family; checks that the letter tokens exist. `special_at`: pad the vocabulary
    with unused placeholder tokens (never produced by a merge, so text tokenizes the same) so that
    `<video>` gets this id and `<image>` the next, as in the real tokenizers (shape scale)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AddedToken, LlamaTokenizer

    bytes_ = [f"<0x{i:02X}>" for i in range(256)]
    bpe = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    bpe.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bpe.decoder = decoders.Metaspace()
    alphabet = sorted(set("".join(corpus())) | set("▁") | set("?.,:;!'\"-_/()[]<>|\n0123456789"))
    trainer = trainers.BpeTrainer(vocab_size=700, min_frequency=1, show_progress=False,
                                  special_tokens=["<unk>", "<s>", "</s>", *bytes_], initial_alphabet=alphabet,
                                  limit_alphabet=len(alphabet) + 10)
    bpe.train_from_iterator(corpus(), trainer=trainer)
    state = json.loads(bpe.to_str())
    vocab, merges = state["model"]["vocab"], state["model"]["merges"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges]
    for letter in ANSWER_LETTERS:  # " X" and "X" must be single tokens (the letter rows of lm_head)
        for token in (f"▁{letter}", letter):
            if token not in vocab:
                vocab[token] = len(vocab)
        if (("▁", letter) not in merges):
            merges.append(("▁", letter))
    for token in (".", "▁"):
        if token not in vocab:
            vocab[token] = len(vocab)
    if special_at is not None:
        if special_at < len(vocab):
            raise ZooreproError(f"cannot place <video> at id {special_at}: the vocabulary has {len(vocab)} tokens")
        vocab.update({f"<unused_{i}>": i for i in range(len(vocab), special_at)})
    tok = LlamaTokenizer(vocab=vocab, merges=merges, pad_token="<unk>", add_prefix_space=True)
    special = ["<video>", "<image>", *FAMILY_SPECIAL[family]]
    tok.add_special_tokens({"additional_special_tokens": [AddedToken(t, normalized=False, special=True)
                                                          for t in special]})
    return tok


def letter_token_ids(tok) -> dict[str, int]:
    """{" A": id, ...} for the answer letters (the tokens the shaped lm_head favours)."""
    ids = {}
    for letter in ANSWER_LETTERS:
        token_id = tok.convert_tokens_to_ids(f"▁{letter}")
        if token_id == tok.unk_token_id:
            raise ZooreproError(f"the mini tokenizer has no token for ' {letter}'")
        ids[f" {letter}"] = token_id
    return ids


def build_processor(tok, family: str):
    """LlavaNextVideoProcessor with 56-px video/image processors, the family's chat template,
    patch size and feature strategy set (so `<video>` expands to 4 tokens a frame)."""
    from transformers import (
        LlavaNextImageProcessor,
        LlavaNextVideoProcessor,
        LlavaNextVideoVideoProcessor,
    )

    size, crop = {"shortest_edge": SIZE}, {"height": SIZE, "width": SIZE}
    video = LlavaNextVideoVideoProcessor(size=size, crop_size=crop)
    image = LlavaNextImageProcessor(size=size, crop_size=crop,
                                    image_grid_pinpoints=[[SIZE, 2 * SIZE], [2 * SIZE, SIZE], [2 * SIZE, 2 * SIZE]])
    return LlavaNextVideoProcessor(video_processor=video, image_processor=image, tokenizer=tok,
                                   chat_template=CHAT_TEMPLATES[family], patch_size=PATCH,
                                   vision_feature_select_strategy="default")


def build_model(tok, processor, seed: int):
    """The tiny LlavaNextVideoForConditionalGeneration, seeded init, then shaped (module docstring)."""
    import torch
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaNextVideoConfig,
        LlavaNextVideoForConditionalGeneration,
    )

    vision = CLIPVisionConfig(hidden_size=HIDDEN, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=SIZE, patch_size=PATCH, projection_dim=HIDDEN)
    text = LlamaConfig(vocab_size=len(tok), hidden_size=HIDDEN, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=1024,
                       bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    config = LlavaNextVideoConfig(
        vision_config=vision, text_config=text, image_token_index=tok.convert_tokens_to_ids("<image>"),
        video_token_index=tok.convert_tokens_to_ids("<video>"), vision_feature_select_strategy="default",
        vision_feature_layer=-2, image_grid_pinpoints=[[SIZE, 2 * SIZE], [2 * SIZE, SIZE], [2 * SIZE, 2 * SIZE]],
        image_seq_length=(SIZE // PATCH) ** 2, video_seq_length=(SIZE // PATCH) ** 2 // 4,
        tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = LlavaNextVideoForConditionalGeneration(config).eval()
    shape(model, tok, processor, seed)
    return model


def shape(model, tok, processor, seed: int) -> None:
    """Make letters the greedy answer, chosen by the context (module docstring)."""
    import torch

    gen = torch.Generator().manual_seed(seed + 1)
    lm = model.model.language_model
    letters = letter_token_ids(tok)
    plain_letters = [tok.convert_tokens_to_ids(x) for x in ANSWER_LETTERS]
    dot = tok.convert_tokens_to_ids(".")
    with torch.no_grad():
        emb = lm.embed_tokens.weight
        emb[:, DIM_LETTER] = 0.0
        emb[list(letters.values()) + plain_letters, DIM_LETTER] = FLAG
        emb[:, DIM_ONE] = ONE
        emb[:, DIM_DOT] = 0.0
        emb[dot, DIM_DOT] = FLAG
        for layer in lm.layers:
            layer.self_attn.v_proj.weight.mul_(ATTN_GAIN)
            layer.self_attn.o_proj.weight.mul_(ATTN_GAIN)
            for out in (layer.self_attn.o_proj.weight, layer.mlp.down_proj.weight):
                out[[DIM_LETTER, DIM_ONE, DIM_DOT], :] = 0.0
        normed = calibration_states(model, processor, seed)  # [n, HIDDEN], what lm_head reads
        free = normed[:, FREE:]
        mean = free.mean(0)
        direction = mean / mean.norm()
        head = model.lm_head.weight
        head.zero_()
        for token_id in letters.values():
            u = torch.randn(HIDDEN - FREE, generator=gen)
            u = u - (u @ direction) * direction  # blind to what every context shares
            spread = (free @ u).std()
            head[token_id, FREE:] = LETTER_SPREAD * u / spread
            head[token_id, DIM_ONE] = LETTER_BIAS / normed[:, DIM_ONE].mean()
            head[token_id, DIM_LETTER] = -LETTER_GATE
            head[token_id, DIM_DOT] = -LETTER_GATE
        head[dot, DIM_LETTER] = DOT_GATE
        head[tok.eos_token_id, DIM_DOT] = DOT_GATE


def calibration_states(model, processor, seed: int, n: int = CALIBRATION):
    """The final-norm outputs at the last prompt position for `n` seeded random questions (NPU
    prompt form: every prompt of both sides ends with " ASSISTANT:") on seeded random frames."""
    import numpy as np
    import torch

    from zoorepro.llava_video import videobench as vb

    rng = np.random.default_rng(seed + 7)
    captured = []
    hook = model.model.language_model.norm.register_forward_hook(
        lambda _m, _i, out: captured.append(out[0, -1].detach().clone()))
    try:
        for _ in range(n):
            k = int(rng.integers(2, 7))
            item = {"question": " ".join(rng.choice(WORDS, 6)) + "?", "vid_path": "x",
                    "choices": {L: " ".join(rng.choice(WORDS, 2)) for L in ANSWER_LETTERS[:k]}}
            frames = rng.integers(0, 256, (8, SIZE, SIZE, 3), dtype=np.uint8)
            inputs = processor(text=vb.npu_prompt(vb.process_qs(item, "")[0]), videos=frames, return_tensors="pt")
            with torch.no_grad():
                model(**inputs, logits_to_keep=1)
    finally:
        hook.remove()
    return torch.stack(captured)


def build_checkpoint(out_dir: Path, family: str, seed: int, verify: bool = True) -> Path:
    """Build and save the tiny checkpoint of `family` into `out_dir` (written in a temporary
    sibling and swapped into place), then reload it offline as the steps will."""
    from zoorepro.cli import hub_offline
    from zoorepro.fsutil import building_dir

    if family not in FAMILIES:
        raise ZooreproError(f"unknown chat-template family {family!r} (known: {', '.join(FAMILIES)})")
    hub_offline()
    tok = build_tokenizer(family)
    processor = build_processor(tok, family)
    model = build_model(tok, processor, seed)
    out_dir = Path(out_dir)
    with building_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        if verify:
            load_checkpoint(tmp)
    return out_dir


# --------------------------------------------------------------------------------------------
# the pre-flight


def check_checkpoint_files(path: Path) -> None:
    """A checkpoint folder must hold config.json, weights, a processor config (processor_config.json
    or preprocessor_config.json) and tokenizer files; a missing one is a ZooreproError naming it
    (transformers would otherwise fail deep inside, e.g. with a RecursionError for a folder
    without a video-processor config)."""
    path = Path(path)
    if not path.is_dir():
        raise ZooreproError(f"checkpoint folder not found: {path}")
    missing = []
    if not (path / "config.json").is_file():
        missing.append("config.json")
    if not any(path.glob("*.safetensors")) and not any(path.glob("*.bin")):
        missing.append("weights (*.safetensors)")
    if not ((path / "processor_config.json").is_file() or (path / "preprocessor_config.json").is_file()):
        missing.append("processor config (processor_config.json or preprocessor_config.json)")
    if not ((path / "tokenizer.json").is_file() or (path / "tokenizer.model").is_file()):
        missing.append("tokenizer (tokenizer.json or tokenizer.model)")
    if not (path / "tokenizer_config.json").is_file():
        missing.append("tokenizer_config.json")
    if missing:
        raise ZooreproError(f"checkpoint folder {path} is missing: {'; '.join(missing)}")


def load_checkpoint(path: Path, dtype=None, load_model: bool = True):
    """(model or None, processor) from a checkpoint folder, offline (HF_HUB_OFFLINE=1,
    local_files_only), after check_checkpoint_files. `dtype`: a torch dtype (float32 when None:
    the document's stack loaded fp32; transformers 5 would otherwise take the checkpoint's).
    Any loading failure is a ZooreproError naming the folder."""
    from zoorepro.cli import hub_offline

    check_checkpoint_files(path)
    hub_offline()
    import torch
    from transformers import (
        LlavaNextVideoForConditionalGeneration,
        LlavaNextVideoProcessor,
    )

    try:
        processor = LlavaNextVideoProcessor.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, TypeError, KeyError, RecursionError) as exc:
        raise ZooreproError(f"cannot load the processor of {path}: {type(exc).__name__}: {exc}") from exc
    model = None
    if load_model:
        try:
            model = LlavaNextVideoForConditionalGeneration.from_pretrained(
                str(path), local_files_only=True, dtype=dtype or torch.float32).eval()
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise ZooreproError(f"cannot load the model of {path}: {type(exc).__name__}: {exc}") from exc
    return model, processor


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--family", choices=FAMILIES, default="vicuna")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    build_checkpoint(args.out, args.family, args.seed)
    print(f"wrote {args.family} checkpoint (seed {args.seed}) to {args.out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    run_step(main)
