#!/usr/bin/env python
"""The document's preprocess step: featurize VQA v2 balanced_real_val with the archive's reader and
write one .npy per model input and sample, once, in ascending question_id order
(see zoorepro/vilbert/preprocess.py for what differs from the document and why).

Usage: python scripts/vilbert/preprocess.py --archive_file data/mini/vilbert/vilbert-vqa-mini.tar.gz
           --save_dir work/mini/vilbert/preprocessed --data_dir data/mini/vilbert
           [--src work/src/vilbert] [--pad_len 32] [--box_num 100] [--question_subset N]
           [--tokenizer_dir DIR] [--image_dir DIR] [--cuda_device -1]
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from zoorepro.cli import run_step  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive_file", type=Path, required=True)
    parser.add_argument("--save_dir", type=Path, required=True)
    parser.add_argument("--data_dir", type=Path, required=True,
                        help="folder with val2014/, the two VQA v2 JSONs, torch_home/ and the tokenizer")
    parser.add_argument("--src", type=Path, default=Path("work/src/vilbert"))
    parser.add_argument("--pad_len", type=int, default=-1, help="pad/truncate sequences to this (-1: as read)")
    parser.add_argument("--box_num", type=int, default=-1, help="pad/truncate boxes to this (-1: as read)")
    parser.add_argument("--question_subset", type=int, default=None,
                        help="only the first N questions by ascending question_id")
    parser.add_argument("--tokenizer_dir", type=Path, default=None,
                        help="default: <data_dir>/<tokenizer model_name of the archive's reader>; also the "
                             "local copy of a Hugging Face model the archive's model is built from")
    parser.add_argument("--image_dir", type=Path, default=None,
                        help="folder searched (recursively) for COCO_val2014_*.jpg; default: <data_dir>/val2014")
    parser.add_argument("--cuda_device", type=int, default=-1, help="GPU for featurization (-1: CPU)")
    args = parser.parse_args()
    # Set before allennlp and transformers are imported (they read these once): nothing may be
    # downloaded, and allennlp's answer-count cache stays out of $HOME and dies with this run.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    start = time.perf_counter()
    from zoorepro.vilbert.preprocess import preprocess

    args.save_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".allennlp-cache-", dir=args.save_dir.parent) as cache_root:
        os.environ["ALLENNLP_CACHE_ROOT"] = cache_root
        index = preprocess(args.archive_file, args.save_dir, args.data_dir, args.src, pad_len=args.pad_len,
                           box_num=args.box_num, question_subset=args.question_subset,
                           tokenizer_dir=args.tokenizer_dir, image_dir=args.image_dir,
                           cuda_device=args.cuda_device)
    print(f"wrote {len(index['question_ids'])} samples to {args.save_dir} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    run_step(main)
