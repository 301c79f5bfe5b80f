"""The entry point every step script shares."""
from __future__ import annotations

import sys
from typing import Callable, NoReturn

from .errors import ZooreproError


def run_step(main: Callable[[], int | None]) -> NoReturn:
    """Run a step's main(): a ZooreproError is the user's to act on, so it is printed as one line
    `error: ...` and the step exits 2 (no traceback); any other exception is a bug and keeps its
    traceback."""
    try:
        code = main()
    except ZooreproError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 2
    sys.exit(code or 0)


def run_step_then_exit(main: Callable[[], int | None]) -> NoReturn:
    """run_step(main), then leave without the interpreter's teardown once stdout and stderr are
    flushed (os._exit): for steps whose outputs are all written when main() returns, where the
    teardown is either slow (torch and transformers: 2-4 s a process on the 2-core machine) or can
    abort a finished run (a collective backend's destructors when the peer processes are gone)."""
    import os

    try:
        run_step(main)
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def hub_offline() -> None:
    """Nothing may be downloaded from a model hub: set before transformers (or anything built on
    huggingface_hub) is imported, since they read these once."""
    import os

    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
