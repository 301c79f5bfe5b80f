"""zoorepro.progress: plain lines where the stream is not a terminal (logs), tqdm where it is."""
from __future__ import annotations

import io
import os
import pty
import select

import pytest

from zoorepro import progress as progress_module
from zoorepro.errors import ConfigError
from zoorepro.progress import LineProgress, progress


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(progress_module, "_now", fake)
    monkeypatch.delenv(progress_module.INTERVAL_ENV, raising=False)
    monkeypatch.delenv(progress_module.ENABLE_ENV, raising=False)
    return fake


def lines(stream: io.StringIO) -> list[str]:
    text = stream.getvalue()
    assert "\r" not in text and "\x1b" not in text  # nothing a log file would show as garbage
    return text.splitlines()


def test_plain_lines_start_each_interval_and_final(clock):
    out = io.StringIO()
    with progress(total=40, desc="featurize", unit="images", interval=0, file=out) as bar:
        assert isinstance(bar, LineProgress)
        for _ in range(2):
            clock.t += 1.0
            bar.update(5)
    assert lines(out) == [
        "featurize: start, 40 images",
        "featurize: 5/40 images (12.5 %), 5.0 images/s, ETA 0:00:07",
        "featurize: 10/40 images (25.0 %), 5.0 images/s, ETA 0:00:06",
        "featurize: 10/40 images in 2.0 s, 5.0 images/s",
    ]


def test_interval_limits_the_lines(clock):
    out = io.StringIO()
    bar = progress(total=100, desc="loop", interval=30, file=out)
    for _ in range(10):  # one update every 10 s: a line at 30, 60 and 90 s
        clock.t += 10.0
        bar.update()
    bar.close()
    bar.close()  # closing twice writes the final line once
    got = lines(out)
    assert len(got) == 5 and got[0] == "loop: start, 100 it"
    assert [line.split(",")[0] for line in got[1:4]] == ["loop: 3/100 it (3.0 %)", "loop: 6/100 it (6.0 %)",
                                                         "loop: 9/100 it (9.0 %)"]
    assert got[-1] == "loop: 10/100 it in 0:01:40, 0.1 it/s"


def test_environment_sets_the_default_interval_and_switches_output_off(clock, monkeypatch):
    monkeypatch.setenv(progress_module.INTERVAL_ENV, "0")
    out = io.StringIO()
    with progress(total=3, desc="steps", file=out) as bar:
        bar.update()
    assert len(lines(out)) == 3  # start, one per update, final
    monkeypatch.setenv(progress_module.INTERVAL_ENV, "soon")
    with pytest.raises(ConfigError, match=progress_module.INTERVAL_ENV):
        progress(total=3, desc="steps", file=io.StringIO())
    monkeypatch.setenv(progress_module.ENABLE_ENV, "0")
    silent = io.StringIO()
    assert list(progress([1, 2], desc="quiet", file=silent)) == [1, 2]
    assert silent.getvalue() == ""


def test_bytes_with_a_resume_offset(clock):
    out = io.StringIO()
    mib = 1 << 20
    with progress(total=4 * mib, initial=mib, desc="download w.bin", unit="B", interval=0, file=out) as bar:
        clock.t += 2.0
        bar.update(2 * mib)
        clock.t += 1.0
        bar.update(mib)
    assert lines(out) == [
        "download w.bin: start, 4.0 MiB, resumed at 1.0 MiB",
        "download w.bin: 3.0 MiB/4.0 MiB (75.0 %), 1.0 MiB/s, ETA 0:00:01",
        "download w.bin: 4.0 MiB/4.0 MiB (100.0 %), 1.0 MiB/s, ETA 0:00:00",
        "download w.bin: 4.0 MiB/4.0 MiB (3.0 MiB this run) in 3.0 s, 1.0 MiB/s",
    ]


def test_unknown_total_has_no_percent_or_eta_and_a_failure_says_stopped(clock):
    out = io.StringIO()
    with pytest.raises(KeyError), progress(desc="stream", unit="B", interval=0, file=out) as bar:
        clock.t += 1.0
        bar.update(1536)
        raise KeyError("boom")
    assert lines(out) == ["stream: start, total unknown", "stream: 1.5 KiB, 1.5 KiB/s",
                          "stream: stopped at 1.5 KiB in 1.0 s, 1.5 KiB/s"]


def test_iterating_takes_the_length_and_the_postfix_reaches_the_lines(clock):
    out = io.StringIO()
    bar = progress(range(3), desc="finetune", unit="steps", interval=0, file=out)
    for step in bar:
        clock.t += 0.5
        bar.set_postfix_str(f"loss {1.0 / (step + 1):.2f}")
    got = lines(out)
    assert got[0] == "finetune: start, 3 steps"
    assert got[1] == "finetune: 1/3 steps (33.3 %), 2.0 steps/s, ETA 0:00:01, loss 1.00"
    assert got[-1] == "finetune: 3/3 steps in 1.5 s, 2.0 steps/s, loss 0.33"


def test_disabled_counts_but_writes_nothing(clock):
    out = io.StringIO()
    with progress(total=2, desc="rank 1", interval=0, file=out, disable=True) as bar:
        with bar.external_write_mode():
            pass
        bar.update(2)
    assert bar.n == 2 and out.getvalue() == ""


def test_a_terminal_gets_a_tqdm_bar(clock):
    from tqdm import tqdm

    master, slave = pty.openpty()
    with os.fdopen(slave, "w") as terminal:
        bar = progress(range(3), desc="sample frames", unit="videos", file=terminal)
        assert isinstance(bar, tqdm)
        assert list(bar) == [0, 1, 2]
        terminal.flush()
        seen = b""
        while select.select([master], [], [], 0.5)[0]:
            chunk = os.read(master, 4096)
            if not chunk:
                break
            seen += chunk
    os.close(master)
    text = seen.decode("utf-8", "replace")
    assert "\r" in text and "sample frames" in text and "3/3" in text and "|" in text
