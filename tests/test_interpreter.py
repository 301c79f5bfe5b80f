"""Every rule runs the project's interpreter: `.venv/bin/snakemake` started without the venv on
PATH still runs each step with the venv's python (not a bare `python` from PATH, which here would
be missing or lack the project's packages)."""
import subprocess

from conftest import VENV_BIN, copy_repo


def test_rules_run_the_workflows_own_python_without_the_venv_on_path(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # /usr/bin/python is absent or bare
    proc = subprocess.run([str(VENV_BIN / "snakemake"), "--cores", "1", "work/src/actbert/SOURCES.json"],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (repo / "work/src/actbert/SOURCES.json").is_file()
