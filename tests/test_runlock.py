"""Snakemake's locks kept safe (zoorepro/runlock.py): a second real run in the same folder is
stopped while the first lives (a dry run is not); after a killed run, the lock files Snakemake left
behind do not stop the next one."""
import subprocess
import sys

from conftest import VENV_BIN, copy_repo

TARGET = "work/src/actbert/SOURCES.json"


def snakemake(repo, *args):
    return subprocess.run([str(VENV_BIN / "snakemake"), "--cores", "1", *args], cwd=repo, capture_output=True,
                          text=True, timeout=600)


def test_a_second_run_in_the_same_folder_stops_while_the_first_holds_the_lock(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    # A live run: it holds the run lock, then Snakemake's lock on the target's output.
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from zoorepro import runlock; "
                               f"runlock.hold({str(repo)!r}); print('held', flush=True); time.sleep(120)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        locks = repo / ".snakemake" / "locks"
        locks.mkdir(parents=True)
        (locks / "0.output.lock").write_text(TARGET + "\n")
        proc = snakemake(repo, TARGET)
        assert proc.returncode != 0
        assert f"another Snakemake run of this workflow is active here (pid {holder.pid})" in proc.stderr
        assert "cannot be locked" in proc.stdout + proc.stderr
        assert (locks / "0.output.lock").exists()  # a live run's lock is never cleared
        assert snakemake(repo, "-n", TARGET).returncode == 0  # a dry run plans only: no lock needed
    finally:
        holder.kill()
        holder.wait()
    # the holder died without releasing anything: the kernel dropped its lock
    assert snakemake(repo, TARGET).returncode == 0


def test_lock_files_left_by_a_killed_snakemake_do_not_block_the_next_run(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    locks = repo / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.output.lock").write_text(TARGET + "\n")  # what a kill -9 leaves
    proc = snakemake(repo, TARGET)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "left by a Snakemake run that no longer exists" in proc.stderr
    assert not (locks / "0.output.lock").exists()


def test_unlock_works_as_documented_without_cores(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    proc = subprocess.run([str(VENV_BIN / "snakemake"), "--unlock"], cwd=repo, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Unlocked working directory" in proc.stdout + proc.stderr
