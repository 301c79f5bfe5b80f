"""The layout contract (docs/design.md): a model is one package, one rules file, a manifest and a
params block; nothing generic names a model; every step runs alone with --help."""
import json
import re
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT

from zoorepro import models
from zoorepro.runners import runner_names

# Registered models, and the two the next issues add (generic code must not know them either).
MODEL_WORDS = sorted({*models.model_names(), "llava", "clipbert"})
GENERIC = ["zoorepro/backends", "zoorepro/runners", "zoorepro/steps", "zoorepro/report.py", "zoorepro/audit.py",
           "zoorepro/dvcgen.py", "zoorepro/measurements.py", "zoorepro/models.py", "zoorepro/config.py",
           "zoorepro/verdicts.py", "zoorepro/provenance.py", "zoorepro/fsutil.py", "zoorepro/workflow.py",
           "zoorepro/download", "zoorepro/sources.py", "zoorepro/cli.py", "zoorepro/__main__.py", "rules/common.smk",
           "rules/data.smk", "rules/compare.smk", "rules/table.smk", "schemas/params.schema.yaml",
           "schemas/claims.schema.yaml", "zoorepro/claims.py", "zoorepro/planted.py", "zoorepro/tablecheck.py",
           "zoorepro/yamlutil.py", "zoorepro/lineage.py", "zoorepro/runlock.py", "zoorepro/readers.py", "zoorepro/jobenv.py",
           "zoorepro/video.py", "zoorepro/figures.py", "zoorepro/progress.py", "rules/report.smk",
           "zoorepro/peaks.py", "zoorepro/flops.py", "zoorepro/plausibility.py", "rules/peaks.smk"]


def generic_files():
    for rel in GENERIC:
        path = ROOT / rel
        yield from (sorted(p for p in path.rglob("*") if p.suffix in (".py", ".smk", ".yaml")) if path.is_dir()
                    else [path])


def test_the_registry_finds_the_three_built_models():
    assert set(models.model_names()) >= {"vilbert", "videobert", "actbert"}


@pytest.mark.parametrize("path", list(generic_files()), ids=lambda p: str(p.relative_to(ROOT)))
def test_generic_code_names_no_model(path):
    text = path.read_text().lower()
    hits = [w for w in MODEL_WORDS if re.search(rf"\b{w}", text)]
    assert not hits, f"{path.relative_to(ROOT)} names {hits}"


@pytest.mark.parametrize("model", models.model_names())
def test_a_model_is_one_package_one_rules_file_a_manifest_and_a_params_block(model):
    pipeline = models.pipeline(model)
    assert (ROOT / "zoorepro" / model / "params.schema.yaml").is_file()
    assert models.inputs(model, yaml.safe_load((ROOT / "params.yaml").read_text())).model == model
    assert (ROOT / "rules" / f"{model}.smk").is_file()
    assert f'include: "rules/{model}.smk"' in (ROOT / "Snakefile").read_text()
    assert (ROOT / "manifests" / f"{model}.yaml").is_file()
    assert model in yaml.safe_load((ROOT / "params.yaml").read_text())
    runners = pipeline.RUNNER.values() if isinstance(pipeline.RUNNER, dict) else [pipeline.RUNNER]
    assert pipeline.DOCUMENT.endswith(".txt") and all(r in (None, *runner_names()) for r in runners)
    assert callable(pipeline.dvc_stages) and isinstance(pipeline.CLAIM_METRICS, tuple)
    # its rules are its own: every rule in rules/<model>.smk is named for it
    rules = re.findall(r"^rule (\w+):", (ROOT / "rules" / f"{model}.smk").read_text(), flags=re.M)
    assert rules and all(r.startswith(f"{model}_") for r in rules), rules


def test_old_homes_are_gone():
    assert not (ROOT / "zoorepro" / "mini").exists()
    assert not (ROOT / "configs").exists()
    assert not any((ROOT / "scripts").glob("*/*.py")), "step scripts live in their model's package"
    assert not (ROOT / "scripts" / "_bootstrap.py").exists()
    for script in (ROOT / "scripts").glob("*.py"):
        assert "sys.path.insert" not in script.read_text(), script


def step_modules():
    """Every module a rule runs with `python -m` (read from the rules, so none is missed)."""
    found = set()
    for smk in [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))]:
        found |= set(re.findall(r"python -m ([\w.]+)", smk.read_text()))
    return sorted(found)


# Runs each module as `python -m` does (runpy, alter_sys) with --help, in one process so the
# heavy imports (torch, paddle, transformers) are paid once; prints {module: [exit code, stdout]}.
HELP_DRIVER = """
import contextlib, json, runpy, sys, tempfile
results = {}
for module in sys.argv[1:]:
    code = 0
    sys.argv = [module, "--help"]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                runpy.run_module(module, run_name="__main__", alter_sys=True)
            except SystemExit as exc:
                code = exc.code or 0
            except BaseException as exc:
                code = f"{type(exc).__name__}: {exc}"
        out.seek(0), err.seek(0)
        results[module] = [code, out.read(), err.read()[-2000:]]
print("RESULTS " + json.dumps(results))
"""


def test_every_step_the_rules_run_answers_help():
    modules = step_modules()
    assert {"zoorepro.steps.compare", "zoorepro.vilbert.preprocess", "zoorepro.actbert.test"} <= set(modules)
    proc = subprocess.run([sys.executable, "-c", HELP_DRIVER, *modules], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads(proc.stdout.split("RESULTS ", 1)[1])
    assert sorted(results) == modules
    for module, (code, out, err) in results.items():
        assert code == 0, f"{module} --help: {code}\n{err}"
        assert "usage:" in out.lower(), module


def launched_scripts():
    """Every script a rule hands to a launcher by path (paddle.distributed.launch takes a script,
    not a module), read from the rules."""
    found = set()
    for smk in [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))]:
        # in a shell string (a line that opens with a quote), not in a comment
        found |= set(re.findall(r'^\s*"[^"\n]*?\b(zoorepro/[\w/]+\.py)\b', smk.read_text(), re.MULTILINE))
    return sorted(found)


def test_every_script_the_rules_launch_answers_help_from_any_folder(tmp_path):
    """Run by path from elsewhere, a script imports this checkout's zoorepro, not another copy on
    the path (a decoy that fails on import stands for one: an installed checkout, PYTHONPATH)."""
    import os

    scripts = launched_scripts()
    assert "zoorepro/actbert/main.py" in scripts
    decoy = tmp_path / "decoy" / "zoorepro"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text('raise ImportError("the decoy zoorepro was imported")\n')
    env = dict(os.environ, PYTHONPATH=str(decoy.parent))
    for script in scripts:
        proc = subprocess.run([sys.executable, str(ROOT / script), "--help"], cwd=tmp_path, capture_output=True,
                              text=True, timeout=300, env=env)
        assert proc.returncode == 0 and "usage:" in proc.stdout.lower(), f"{script}: {proc.stderr[-2000:]}"
