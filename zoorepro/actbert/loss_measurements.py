"""Table rows from a pretraining loss curve (zoorepro.actbert.pretrain --loss-curve): the first
and last training loss and the number of steps, so a table shows that the HowTo100M pretraining
code path ran (rows with no claim: the document reports no pretraining number). Their batch size is
the run's global batch (per-process batch x processes, as the loss curve records the launch), their
precision amp (O1) for the AMP variant.

Usage: python -m zoorepro.actbert.loss_measurements --loss loss.json --out loss.measurements.json
"""
import argparse
import json
from pathlib import Path

from zoorepro.cli import run_step
from zoorepro.errors import ZooreproError
from zoorepro.measurements import Measurement, print_measurements, write_measurements


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--loss", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    curve = json.loads(args.loss.read_text())
    train = curve.get("train") or []
    if not train:
        raise ZooreproError(f"{args.loss} holds no training steps")
    launch = curve.get("launch")
    if not launch:
        raise ZooreproError(f"{args.loss} records no launch (processes, batch): written by an older pretrain step; "
                            "rerun the pretraining")
    how = (f"global batch {launch['global_batch_size']} = {launch['batch_size_per_process']} a process x "
           f"{launch['processes']} process(es) of {launch['launcher'] or 'one interpreter'}; "
           "the mean of the processes' losses on their shares")
    common = {"kind": "training", "unit": "loss", "precision": "amp O1" if launch.get("amp") else "fp32",
              "batch_size": launch["global_batch_size"], "raw": (str(args.loss),)}
    records = [Measurement("pretrain_loss_first", value=train[0]["loss"],
                           note=f"ActBertLoss at step {train[0]['step']} of epoch {train[0]['epoch']}; {how}", **common),
               Measurement("pretrain_loss_last", value=train[-1]["loss"],
                           note=f"ActBertLoss after {len(train)} logged steps; {how}", **common)]
    print_measurements(write_measurements(args.out, records))
    return 0


if __name__ == "__main__":
    run_step(main)
