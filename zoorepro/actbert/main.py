"""The training script paddle.distributed.launch starts in each process, named as the document
names it: `python -m paddle.distributed.launch --gpus=... --log_dir=log_actbert main.py --validate
-c actbert.yaml`. The launcher takes a script path (it runs a `*.py` as `python -u script`), not a
module, so this file exists; it runs zoorepro.actbert.pretrain (same options, see its --help).

Usage: python -m paddle.distributed.launch --nproc_per_node=2 --log_dir=DIR zoorepro/actbert/main.py \
           --validate -c zoorepro/actbert/configs/mini_pretrain.yaml --device cpu --work-dir DIR ...
       python zoorepro/actbert/main.py --help
"""
import sys
from pathlib import Path

# Run as a script, Python puts this folder first on sys.path, where test.py, inputs.py, metrics.py
# ... would shadow top-level modules of those names; the checkout this file belongs to goes there
# instead, so `zoorepro` is this checkout's package (not another copy installed in the venv).
HERE = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0] or ".").resolve() == HERE:
    sys.path[0] = str(HERE.parents[1])

import os  # noqa: E402

from zoorepro.actbert.pretrain import main  # noqa: E402
from zoorepro.cli import run_step, run_step_then_exit  # noqa: E402


def run_launched() -> None:
    """run_step(main); in a process of a multi-process launch, leave without the interpreter's
    teardown once everything is written and flushed: the collective backend's destructors can
    abort (SIGABRT) a process whose peers are already gone, failing a run that finished."""
    if int(os.environ.get("PADDLE_TRAINERS_NUM", "1")) <= 1:
        run_step(main)
    run_step_then_exit(main)


if __name__ == "__main__":
    run_launched()
