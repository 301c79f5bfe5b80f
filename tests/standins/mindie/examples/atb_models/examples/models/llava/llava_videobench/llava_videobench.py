"""ZOOREPRO STAND-IN for MindIE-LLM's llava_videobench.py (the NPU Video-Bench chat), run by the
stand-in run_pa_videobench.sh. Not MindIE and no NPU: the checkpoint runs in transformers on the
CPU. What it keeps from the real script (../shared/upstream/llava_clipbert.md §1.3-1.4):

* arguments --model_path --image_or_video_path --Eval_QA_root --chat_conversation_output_folder
  --max_batch_size --max_input_length --max_output_length;
* dataset_name = the video folder's last component; its questions from select_data(Eval_QA_root);
* the prompt "USER: <video>\\n" + process_qs(...) + " Please respond ... ASSISTANT:" for every
  checkpoint (MindIE builds the vicuna form whatever the chat template);
* 8 frames at np.arange(0, n, n/8).astype(int) decoded with PyAV (own code, below);
* greedy decoding of at most max_output_length new tokens; the answer is the decoded new tokens;
* output {folder}/{dataset_name}_eval.json = {q_id: {video_id, question, output_sequence: "<str>",
  dataset}}, created with mode 0o600 through atb_llm.utils.file_utils;
* MindIE's file checks (atb_llm.utils.file_utils): symlinked or odd-character paths refused, on the
  weights folder and each file in it, the QA file, the video folder and each video.

Numerics: MindIE computes in float16 on the NPU. Here the weights are loaded as float16 (rounded
to fp16) and then computed in float32: CPU float16 generate is slow and partly unsupported.
Batching: one question at a time whatever --max_batch_size (the answers do not depend on it)."""
import argparse
import json
import os
import time

from atb_llm.utils import file_utils

SUFFIX = (" Please respond with only the corresponding options and do not provide any explanations or "
          "additional information. ASSISTANT:")


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--model_path", required=True)
    p.add_argument("--image_or_video_path", required=True)
    p.add_argument("--Eval_QA_root", required=True)
    p.add_argument("--chat_conversation_output_folder", default="./Chat_results")
    p.add_argument("--max_batch_size", type=int, default=1)
    p.add_argument("--max_input_length", type=int, default=2048)
    p.add_argument("--max_output_length", type=int, default=256)
    return p.parse_args()


def frames(path, k=8):
    import av
    import numpy as np

    with av.open(path) as c:
        total = c.streams.video[0].frames
        idx = np.arange(0, total, total / k).astype(int)
        keep = []
        for i, f in enumerate(c.decode(video=0)):
            if i > idx[-1]:
                break
            if i in idx:
                keep.append(f.to_ndarray(format="rgb24"))
    return np.stack(keep)


def main():
    args = parse()
    print("[W] ZOOREPRO STAND-IN: MindIE-LLM llava_videobench (transformers on CPU, fp16 weights computed in fp32)",
          flush=True)
    from examples.models.llava.llava_videobench.videobench_utils import (
        process_qs,
        select_data,
    )

    model_path = file_utils.standardize_path(args.model_path)
    for name in file_utils.safe_listdir(model_path):
        file_utils.check_file_safety(os.path.join(model_path, name), max_file_size=file_utils.MAX_VIDEO_SIZE)
    video_dir = file_utils.standardize_path(args.image_or_video_path)
    dataset_name = os.path.basename(os.path.normpath(video_dir))
    qa_path = select_data(args.Eval_QA_root)[dataset_name]
    with file_utils.safe_open(qa_path, "r", encoding="utf-8") as f:
        items = json.load(f)
    out_dir = file_utils.standardize_path(args.chat_conversation_output_folder)
    os.makedirs(out_dir, mode=0o750, exist_ok=True)

    os.environ["HF_HUB_OFFLINE"] = "1"
    import torch
    from transformers import (
        LlavaNextVideoForConditionalGeneration,
        LlavaNextVideoProcessor,
    )

    torch.set_num_threads(1)
    processor = LlavaNextVideoProcessor.from_pretrained(model_path, local_files_only=True)
    model = LlavaNextVideoForConditionalGeneration.from_pretrained(
        model_path, local_files_only=True, dtype=torch.float16).float().eval()
    results = {}
    start = time.time()
    for q_id, item in items.items():
        question, _ = process_qs(item, "")
        video = os.path.join(video_dir, os.path.basename(item["vid_path"]))
        file_utils.check_file_safety(video, max_file_size=file_utils.MAX_VIDEO_SIZE)
        prompt = "USER: <video>\n" + question + SUFFIX
        inputs = processor(text=prompt, videos=frames(video), return_tensors="pt")
        n_in = inputs["input_ids"].shape[-1]
        if n_in > args.max_input_length:
            raise ValueError(f"{q_id}: input length {n_in} exceeds max_input_length {args.max_input_length}")
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=args.max_output_length, do_sample=False)
        answer = processor.batch_decode(out[:, n_in:], skip_special_tokens=True)[0]
        results[q_id] = {"video_id": item["video_id"], "question": item["question"], "output_sequence": answer,
                         "dataset": item.get("dataset", dataset_name)}
        print(f"{q_id}: {answer!r}", flush=True)
    out_file = os.path.join(out_dir, f"{dataset_name}_eval.json")
    with file_utils.safe_open(out_file, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=4, ensure_ascii=False)
    print(f"{len(results)} answers in {time.time() - start:.2f} s -> {out_file}", flush=True)


if __name__ == "__main__":
    import sys

    main()
    # Leave without the interpreter's teardown of torch/transformers (2-4 s on the test machine):
    # everything is written and closed by now.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
