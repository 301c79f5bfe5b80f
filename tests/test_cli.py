"""`python -m zoorepro ...` run as a user runs it: a fresh interpreter, cwd the repo root, this
checkout's package first on PYTHONPATH. No Snakemake runs; every call takes about a second."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

OPTIONS = {
    "claims": ["--json", "--model", "--claims"],
    "audit": ["--results", "--out"],
    "params": ["--params"],
    "table": ["--model", "--target", "--scale", "--measurements", "--toolchain", "--out"],
    "tables": ["--scale"],
    "dvc-yaml": ["--path", "--check"],
}


def zoorepro(*args: str) -> subprocess.CompletedProcess:
    pythonpath = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "zoorepro", *args], cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=pythonpath), capture_output=True,
                          text=True, timeout=120, check=False)


def test_top_level_help_lists_every_command():
    done = zoorepro("--help")
    assert done.returncode == 0, done.stderr
    for command in OPTIONS:
        assert command in done.stdout


def test_no_command_is_a_usage_error():
    done = zoorepro()
    assert done.returncode == 2 and "usage:" in done.stderr


@pytest.mark.parametrize("command", sorted(OPTIONS))
def test_every_command_has_help_naming_its_options(command):
    done = zoorepro(command, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: python -m zoorepro {command}")
    for option in OPTIONS[command]:
        assert option in done.stdout, f"{command} --help does not name {option}"


def test_claims_json_is_the_registry():
    done = zoorepro("claims", "--json")
    assert done.returncode == 0, done.stderr
    claims = json.loads(done.stdout)
    assert isinstance(claims, list) and claims
    assert {"vilbert", "videobert", "actbert"} <= {c["model"] for c in claims}
    assert all({"id", "metric", "value", "unit"} <= c.keys() for c in claims)


def test_claims_model_selects_one_model():
    done = zoorepro("claims", "--model", "vilbert", "--json")
    assert done.returncode == 0, done.stderr
    claims = json.loads(done.stdout)
    assert claims and {c["model"] for c in claims} == {"vilbert"}
    table = zoorepro("claims", "--model", "vilbert")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split()[0] == "id" and len(rows) == len(claims)
    assert all(row.startswith("vilbert.") for row in rows)


def test_claims_unknown_model_exits_2_naming_the_known_ones():
    done = zoorepro("claims", "--model", "resnet")
    assert done.returncode == 2
    assert "unknown model 'resnet'" in done.stderr and "vilbert" in done.stderr
    assert done.stdout == ""


def test_unknown_option_is_a_usage_error():
    done = zoorepro("claims", "--jsn")
    assert done.returncode == 2 and "unrecognized arguments: --jsn" in done.stderr


def test_params_validates(tmp_path):
    done = zoorepro("params")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "params.yaml: valid"
    bad = tmp_path / "params.yaml"
    bad.write_text("scale: huge\n")
    refused = zoorepro("params", "--params", str(bad))
    assert refused.returncode == 2 and refused.stderr.startswith("error: ")


def test_tables_lists_the_mini_tables():
    done = zoorepro("tables", "--scale", "mini")
    assert done.returncode == 0, done.stderr
    tables = done.stdout.split()
    assert {"results/mini/vilbert_cpu.csv", "results/mini/videobert_cpu.csv",
            "results/mini/actbert_cpu.csv"} <= set(tables)
    assert all(t.startswith("results/mini/") and t.endswith(".csv") for t in tables)


def test_dvc_yaml_check(tmp_path):
    done = zoorepro("dvc-yaml", "--check")
    assert done.returncode == 0, done.stderr
    assert "dvc.yaml is up to date" in done.stdout
    stale = tmp_path / "dvc.yaml"
    stale.write_text("stages: {}\n")
    drifted = zoorepro("dvc-yaml", "--check", "--path", str(stale))
    assert drifted.returncode == 1 and "out of date" in drifted.stderr
    assert stale.read_text() == "stages: {}\n"  # --check never writes
