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
