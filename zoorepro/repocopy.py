"""Copy the working tree into a scratch git repo, so a DAG run (tests, `make bench`) never
touches the checkout's data, work or results."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from zoorepro.config import REPO_ROOT

# Built by the pipeline, never copied: a copy starts cold.
SKIPPED_PREFIXES = ("results/", "data/", "work/")


def copy_repo(dest: Path, root: Path = REPO_ROOT) -> Path:
    """Copy `root`'s working tree (tracked files and untracked ones git does not ignore, minus
    results/, data/ and work/) into `dest`, made a git repo of its own with one commit; return
    `dest`."""
    dest = Path(dest)
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root,
                           check=True, capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = root / rel
        if not src.is_file() or rel.startswith(SKIPPED_PREFIXES):
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run(["git", "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-qm", "copy"], cwd=dest, check=True)
    return dest
