"""What the audit prints for people and for programs: the summary first (status line, failures and
invalid tables with their reasons, then per-table counts), colours only on a terminal, where the
full report and the JSON are; `--format json` parses and says the same. Runs on the committed mini
tables (results/mini/), copied, so nothing in the checkout changes."""
from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def audit(results: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    options = {"capture_output": True, **kw}
    return subprocess.run([sys.executable, "-m", "zoorepro", "audit", "--results", str(results),
                           "--out", str(results / "audit.md"), *args], cwd=REPO, text=True,
                          timeout=120, check=False, **options)


def committed(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    shutil.copytree(REPO / "results" / "mini", results / "mini", ignore=shutil.ignore_patterns("report"))
    return results


def test_the_first_lines_are_the_status_and_the_counts_then_where_the_rest_is(tmp_path):
    results = committed(tmp_path)
    proc = audit(results)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("zoorepro audit: OK — ") and "REPRODUCED" in lines[0]
    assert "Failures:" not in proc.stdout and "\x1b[" not in proc.stdout
    tables = [line for line in lines if line.startswith("- results/mini/")]
    assert len(tables) == len(list((results / "mini").glob("*.csv")))
    assert all(": planted " in t and "; documents " in t for t in tables)
    assert lines[-2] == f"Full report (every claim, one row each): {results / 'audit.md'}"
    assert lines[-1] == "Machine-readable: python -m zoorepro audit --format json"
    assert (results / "audit.md").read_text().startswith("# zoorepro audit")


def test_an_invalid_table_is_listed_first_with_its_reason(tmp_path):
    results = committed(tmp_path)
    table = sorted((results / "mini").glob("*.csv"))[0]
    table.write_text(table.read_text().replace("REPRODUCED", "BETTER", 1))
    proc = audit(results)
    assert proc.returncode == 1
    head, _, rest = proc.stdout.partition("\n\nFailures:\n")
    assert head.startswith("zoorepro audit: FAILED") and "1 invalid" in head
    first = rest.splitlines()[0]
    assert first.startswith(f"- INVALID results/mini/{table.name} (not counted): ") and "sha256" in first
    assert rest.index(table.name) < rest.index("Per table:")


def test_json_parses_and_holds_every_table_and_claim(tmp_path):
    results = committed(tmp_path)
    proc = audit(results, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["ok"] is True and data["failed"] == []
    assert {t["table"] for t in data["tables"]} == {f"results/mini/{p.name}" for p in (results / "mini").glob("*.csv")}
    assert all(t["valid"] and t["planted"]["REPRODUCED"] >= 1 for t in data["tables"])
    assert sum(data["counts"].values()) == len(data["claims"])
    planted = [c for c in data["claims"] if c["id"].split(".")[1] == "mini"]
    assert planted and all(c["verdict"] == "REPRODUCED" and c["evidence"] for c in planted)


def test_colours_on_a_terminal_only(tmp_path):
    results = committed(tmp_path)
    main, secondary = pty.openpty()
    try:
        env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
        proc = audit(results, stdout=secondary, env=env, capture_output=False,
                     stderr=subprocess.PIPE)
        os.close(secondary)
        out = b""
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the terminal's other end is closed: all read
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(main)
    assert proc.returncode == 0
    assert b"\x1b[32mOK\x1b[0m" in out and b"REPRODUCED\x1b[0m" in out
    assert "\x1b[" in audit(results, "--color", "always").stdout
