"""Progress for long steps that keeps Snakemake logs readable.

`progress(...)` wraps an iterable or is used as a context manager with `.update(n)`, like tqdm:

    with progress(total=size, initial=offset, desc="val2014.zip", unit="B") as bar:
        for chunk in chunks:
            bar.update(len(chunk))

On a terminal it is a tqdm bar. Anywhere else (a rule's `log:` file, a pipe) it writes plain lines,
no carriage returns or ANSI codes: one when it starts (with `resumed at` when `initial` > 0), at
most one per `interval` seconds while it runs, e.g.

    featurize balanced_real_val: 12000/214354 samples (5.6 %), 40.2 samples/s, ETA 1:23:54

and one when it closes, with the count, the elapsed time and the mean rate. An update costs one
clock reading, so the plain form may sit in a timed loop's bookkeeping (not inside its timer).

Environment: ZOOREPRO_PROGRESS_INTERVAL (seconds between plain lines, default 30; 0 writes one per
update) and ZOOREPRO_PROGRESS=0 (no progress output at all).
"""
from __future__ import annotations

import contextlib
import datetime
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any, Protocol, Self

from zoorepro.errors import ConfigError

INTERVAL_ENV = "ZOOREPRO_PROGRESS_INTERVAL"
ENABLE_ENV = "ZOOREPRO_PROGRESS"
DEFAULT_INTERVAL_S = 30.0

_now = time.monotonic  # the clock of the plain lines (tests replace it)


class Progress(Protocol):
    """What both forms offer (a subset of tqdm's interface)."""

    n: float

    def __iter__(self) -> Iterator[Any]: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *exc: object) -> None: ...
    def update(self, n: float = 1) -> object: ...
    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None: ...
    def external_write_mode(self) -> contextlib.AbstractContextManager: ...
    def close(self) -> None: ...


def progress(iterable: Iterable | None = None, *, total: float | None = None, desc: str, unit: str = "it",
             unit_scale: bool = False, initial: float = 0, interval: float | None = None,
             file: IO[str] | None = None, disable: bool = False) -> Progress:
    """A progress report on `file` (default: sys.stderr): tqdm when it is a terminal, plain lines
    otherwise (see the module docstring). `total` defaults to len(iterable) where it has one;
    `unit="B"` shows bytes as KiB/MiB/GiB; `initial` is where a resumed task starts; `interval`
    (plain lines only) defaults to $ZOOREPRO_PROGRESS_INTERVAL, else 30 s. `disable` (e.g. every
    process but rank 0) and ZOOREPRO_PROGRESS=0 silence it; iterating and updating still work."""
    stream = file if file is not None else sys.stderr
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    disable = disable or os.environ.get(ENABLE_ENV, "1").strip() == "0"
    if not disable and _isatty(stream):
        from tqdm import tqdm

        in_bytes = unit == "B"
        return tqdm(iterable, desc=desc, total=total, unit="iB" if in_bytes else unit,
                    unit_scale=unit_scale or in_bytes, unit_divisor=1024 if in_bytes else 1000,
                    initial=initial, file=stream)
    return LineProgress(iterable, total=total, desc=desc, unit=unit, unit_scale=unit_scale, initial=initial,
                        interval=0.0 if disable else _interval(interval), file=stream, disable=disable)


class LineProgress:
    """The plain-line form: a start line, at most one line per `interval` seconds, a final line."""

    def __init__(self, iterable: Iterable | None, *, total: float | None, desc: str, unit: str,
                 unit_scale: bool, initial: float, interval: float, file: IO[str], disable: bool) -> None:
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.unit_scale, self.initial, self.interval, self.file = unit_scale, initial, interval, file
        self.disable, self.n, self.postfix, self.closed = disable, initial, "", False
        self.start = self.last = _now()
        if not disable:
            size = "total unknown" if total is None else self._amount(total)
            resumed = f", resumed at {self._amount(initial)}" if initial else ""
            self._write(f"{desc}: start, {size}{resumed}")

    def __iter__(self) -> Iterator[Any]:
        if self.iterable is None:
            raise TypeError("progress() was given no iterable to iterate over")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.close(stopped=exc_type is not None)

    def update(self, n: float = 1) -> None:
        """Count `n` more; write a line when `interval` seconds passed since the last one."""
        self.n += n
        if not self.disable:
            now = _now()
            if now - self.last >= self.interval:
                self.last = now
                self._write(self._running(now))

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        """Text appended to the following lines (e.g. the latest loss); never writes a line itself."""
        self.postfix = s

    def external_write_mode(self) -> contextlib.AbstractContextManager:
        """tqdm's way to print other lines beside a bar; plain lines need nothing."""
        return contextlib.nullcontext()

    def close(self, stopped: bool = False) -> None:
        """Write the final line (once): the count, the elapsed time and the mean rate."""
        if self.closed:
            return
        self.closed = True
        if self.disable:
            return
        elapsed = _now() - self.start
        done = self.n - self.initial
        count = self._amount(self.n) if self.total is None else self._fraction()
        this_run = f" ({self._amount(done)} this run)" if self.initial else ""
        line = f"{self.desc}: {'stopped at ' if stopped else ''}{count}{this_run} in {_elapsed(elapsed)}, " \
               f"{self._rate(done / elapsed if elapsed > 0 else 0.0)}"
        self._write(line + (f", {self.postfix}" if self.postfix else ""))

    # -- formatting

    def _running(self, now: float) -> str:
        elapsed = now - self.start
        rate = (self.n - self.initial) / elapsed if elapsed > 0 else 0.0
        parts = [self._amount(self.n) if self.total is None else self._fraction()]
        if self.total:
            parts[0] += f" ({100.0 * self.n / self.total:.1f} %)"
        parts.append(self._rate(rate))
        if self.total and rate > 0:
            parts.append(f"ETA {_clock(max(self.total - self.n, 0) / rate)}")
        if self.postfix:
            parts.append(self.postfix)
        return f"{self.desc}: " + ", ".join(parts)

    def _fraction(self) -> str:
        if self.unit == "B":
            return f"{_bytes(self.n)}/{_bytes(self.total or 0)}"
        return f"{self._number(self.n)}/{self._number(self.total or 0)} {self.unit}"

    def _amount(self, value: float) -> str:
        return _bytes(value) if self.unit == "B" else f"{self._number(value)} {self.unit}"

    def _number(self, value: float) -> str:
        if self.unit_scale and abs(value) >= 1000:
            for prefix in ("k", "M", "G", "T"):
                value /= 1000.0
                if abs(value) < 1000:
                    break
            return f"{value:.1f}{prefix}"
        return f"{value:g}" if isinstance(value, float) else str(value)

    def _rate(self, rate: float) -> str:
        if self.unit == "B":
            return f"{_bytes(rate)}/s"
        if self.unit_scale and rate >= 1000:
            return f"{self._number(rate)} {self.unit}/s"
        return f"{rate:.1f} {self.unit}/s" if rate >= 1 else f"{rate:.3g} {self.unit}/s"

    def _write(self, line: str) -> None:
        try:
            self.file.write(line + "\n")
            self.file.flush()
        except (OSError, ValueError):  # a closed or broken stream must not fail the step
            pass


def _bytes(value: float) -> str:
    """1536 -> '1.5 KiB' (binary units, as du -h and tqdm's unit_divisor=1024 count)."""
    if abs(value) < 1024:
        return f"{value:.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024.0
        if abs(value) < 1024:
            return f"{value:.1f} {unit}"
    return f"{value / 1024.0:.1f} TiB"


def _clock(seconds: float) -> str:
    """Seconds as H:MM:SS."""
    return str(datetime.timedelta(seconds=round(seconds)))


def _elapsed(seconds: float) -> str:
    """A duration: '4.2 s' under a minute, else H:MM:SS."""
    return f"{seconds:.1f} s" if seconds < 60 else _clock(seconds)


def _interval(interval: float | None) -> float:
    if interval is not None:
        return float(interval)
    raw = os.environ.get(INTERVAL_ENV, "").strip()
    if not raw:
        return DEFAULT_INTERVAL_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ConfigError(f"{INTERVAL_ENV}={raw!r}: expected a number of seconds >= 0")
    return value


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False
