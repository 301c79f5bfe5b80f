"""Duplicate keys in the project's YAML are refused everywhere it is read (last-wins would
silently change a claim, a parameter or a pinned checksum)."""
import shutil
import subprocess

import pytest
from conftest import VENV_BIN

from zoorepro import yamlutil
from zoorepro.claims import DEFAULT_CLAIMS_PATH, ClaimsError, load_claims
from zoorepro.config import PARAMS_PATH, ConfigError, load_params
from zoorepro.download.manifest import load_manifest
from zoorepro.errors import ZooreproError


def test_a_repeated_key_is_an_error_naming_it_and_both_lines():
    with pytest.raises(yamlutil.DuplicateKeyError, match=r"key 'value' appears twice .*lines 2 and 3"):
        yamlutil.load("id: x\nvalue: 1\nvalue: 0.5\n", "claims.yaml")
    assert yamlutil.load("a: &x {b: 1}\nc:\n  <<: *x\n  d: 2\n") == {"a": {"b": 1}, "c": {"b": 1, "d": 2}}


def test_a_claim_written_twice_is_refused(tmp_path):
    text = DEFAULT_CLAIMS_PATH.read_text()
    claim = "    value: 1\n    unit: fraction\n"
    assert claim in text
    bad = tmp_path / "claims.yaml"
    bad.write_text(text.replace(claim, "    value: 1\n    value: 0.5\n    unit: fraction\n", 1))
    with pytest.raises(ClaimsError, match="'value' appears twice"):
        load_claims(bad)


def test_params_with_a_block_listed_twice_are_refused(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text(PARAMS_PATH.read_text() + "\ntolerances:\n  throughput_relative: 0.5\n  accuracy_points: 50\n"
                   "  planted_points: 0.5\n")
    with pytest.raises(ConfigError, match="'tolerances' appears twice"):
        load_params(bad)


def test_a_manifest_entry_key_repeated_is_refused(tmp_path):
    bad = tmp_path / "m.yaml"
    bad.write_text("entries:\n  - name: a\n    url: https://example.invalid/a\n    sha256: " + "0" * 64 +
                   "\n    sha256: " + "1" * 64 + "\n")
    with pytest.raises(ZooreproError, match="'sha256' appears twice"):
        load_manifest(bad)


def test_snakemake_refuses_a_params_file_with_a_duplicate_key(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(PARAMS_PATH.parent, repo, ignore=shutil.ignore_patterns(".venv", "work", "data", "logs", ".git",
                                                                            ".snakemake", "results", "tests"))
    (repo / "params.yaml").write_text((repo / "params.yaml").read_text().replace(
        "scale: mini\n", "scale: mini\nscale: full\n", 1))
    proc = subprocess.run([str(VENV_BIN / "snakemake"), "-n", "--cores", "1"], cwd=repo, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "'scale' appears twice" in proc.stdout + proc.stderr
