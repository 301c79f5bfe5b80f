"""dvc.yaml is generated from params.yaml and must name only what the Snakefile builds."""
import copy
import shlex

import yaml
from conftest import ROOT, copy_repo, run

from zoorepro.config import load_params
from zoorepro.dvcgen import SNAKEMAKE, render_dvc_yaml


def test_committed_dvc_yaml_is_what_params_yaml_generates():
    assert (ROOT / "dvc.yaml").read_text() == render_dvc_yaml(), "dvc.yaml drifted: run `make dvc.yaml`"


def test_drift_check_fails_when_params_change(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    text = (repo / "params.yaml").read_text().replace("batch_sizes: [1, 4, 8, 16, 32, 64]", "batch_sizes: [1, 4]")
    (repo / "params.yaml").write_text(text)
    proc = run(["python", "-m", "zoorepro", "dvc-yaml", "--check"], cwd=repo, check=False)
    assert proc.returncode == 1 and "out of date" in proc.stderr


def test_every_stage_is_a_snakemake_call_on_snakefile_targets(tmp_path):
    """Each stage's Snakemake targets plan (dry run) in the Snakefile, and each stage's outs are
    among the files those targets produce. The full scale's stages here; the mini scale's run for
    real in the suite's cold `dvc repro` (conftest.mini_dag, tests/test_e2e_mini.py), which fails
    on a stage whose command does not build its outs."""
    repo = copy_repo(tmp_path / "repo")
    for scale in ("full",):
        params = copy.deepcopy(load_params())
        params["scale"] = scale
        stages = yaml.safe_load(render_dvc_yaml(params))["stages"]
        for name, stage in stages.items():
            assert stage["cmd"].startswith(SNAKEMAKE), name
            targets = shlex.split(stage["cmd"])[len(shlex.split(SNAKEMAKE)):]
            proc = run(["snakemake", "-n", "--cores", "1", "--forceall", *targets], cwd=repo, check=False)
            assert proc.returncode == 0, f"{name}: {proc.stderr[-2000:]}"
            planned = proc.stdout + proc.stderr
            for out in stage["outs"]:
                path = out if isinstance(out, str) else next(iter(out))
                assert path in planned, f"{name}: out {path} is not produced by its Snakemake targets"
