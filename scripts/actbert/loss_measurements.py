#!/usr/bin/env python
"""Table rows from a pretraining loss curve (scripts/actbert/pretrain.py --loss-curve): the first
and last training loss and the number of steps, so a table shows that the HowTo100M pretraining
code path ran (rows with no claim: the document reports no pretraining number)."""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from zoorepro.cli import run_step  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--loss", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    from zoorepro.errors import ZooreproError
    from zoorepro.fsutil import atomic_write_text

    train = json.loads(args.loss.read_text()).get("train") or []
    if not train:
        raise ZooreproError(f"{args.loss} holds no training steps")
    common = {"kind": "training", "batch_size": None, "unit": "loss", "precision": "fp32", "raw": [str(args.loss)]}
    records = [{**common, "metric": "pretrain_loss_first", "value": train[0]["loss"],
                "note": f"ActBertLoss at step {train[0]['step']} of epoch {train[0]['epoch']}"},
               {**common, "metric": "pretrain_loss_last", "value": train[-1]["loss"],
                "note": f"ActBertLoss after {len(train)} logged steps"}]
    atomic_write_text(args.out, json.dumps(records, indent=2) + "\n")
    print(json.dumps(records))
    return 0


if __name__ == "__main__":
    run_step(main)
