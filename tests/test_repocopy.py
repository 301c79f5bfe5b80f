"""zoorepro.repocopy.copy_repo on a tiny git repo, and `make bench`'s script importing it from the
package (no tests/ or scripts/_bootstrap on its path)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from zoorepro.repocopy import copy_repo

REPO = Path(__file__).resolve().parents[1]


def _git(*args: str, cwd: Path) -> str:
    cmd = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args]
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout


def test_copy_repo_takes_the_working_tree_but_no_built_outputs(tmp_path):
    src = tmp_path / "src"
    for rel, text in {"a.txt": "tracked", "pkg/b.py": "tracked", ".gitignore": "ignored.txt\n",
                      "results/t.csv": "built", "data/d.bin": "built", "work/w.onnx": "built"}.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text)
    _git("init", "-q", cwd=src)
    _git("add", "-A", cwd=src)
    _git("commit", "-qm", "init", cwd=src)
    (src / "a.txt").write_text("edited, not committed")
    (src / "new.txt").write_text("untracked")
    (src / "ignored.txt").write_text("ignored")

    dest = copy_repo(tmp_path / "copy", src)

    assert dest == tmp_path / "copy"
    assert (dest / "a.txt").read_text() == "edited, not committed"
    assert (dest / "new.txt").read_text() == "untracked"
    assert (dest / "pkg/b.py").is_file()
    for absent in ("ignored.txt", "results", "data", "work"):
        assert not (dest / absent).exists(), absent
    assert _git("status", "--porcelain", cwd=dest) == ""  # a clean repo of its own
    assert len(_git("log", "--oneline", cwd=dest).splitlines()) == 1


def test_bench_script_imports_without_bootstrap():
    pythonpath = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "bench.py"), "--help"], cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=pythonpath), capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "--repeats" in done.stdout
    assert "_bootstrap" not in (REPO / "scripts" / "bench.py").read_text()


def test_atomic_writes_get_the_mode_a_plain_write_would_have(tmp_path):
    import os
    import stat

    from zoorepro.fsutil import atomic_write_text, building_dir

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.json", "{}")
        with building_dir(tmp_path / "d") as tmp:
            (tmp / "x").write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755


def test_a_killed_builders_temporary_folder_is_removed_by_the_next_build(tmp_path):
    from zoorepro.fsutil import building_dir

    orphan = tmp_path / ".preprocessed.tmp-abc123"  # what kill -9 during a build leaves
    (orphan / "labels").mkdir(parents=True)
    with building_dir(tmp_path / "preprocessed") as tmp:
        (tmp / "0.npy").write_text("x")
    assert not orphan.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preprocessed"]
