"""A real one-node SLURM cluster on this machine, for tests, `make bench` and `make slurm-demo`:
Debian's slurm-wlm (slurmctld, slurmd, client) and munge, started as root without systemd.

    python -m zoorepro.slurm_cluster install            # apt-get install slurmctld slurmd slurm-client munge
    python -m zoorepro.slurm_cluster start [--state D]  # munged, slurmctld, slurmd; PIDs in D/pids.json
    python -m zoorepro.slurm_cluster status [--state D]
    python -m zoorepro.slurm_cluster stop [--state D]   # cancels its jobs, stops exactly those PIDs

The configuration is written to /etc/slurm/slurm.conf (the default path: the Snakemake SLURM
plugin's job step drops every SLURM_* variable, SLURM_CONF included, before its nested srun) with a
marker line, and removed again on stop; a slurm.conf without the marker (a real cluster's) is never
touched. proctrack/linuxproc and task/none keep cgroups out of it; no accounting store, so Snakemake
must poll with `--slurm-status-command squeue` (profiles/slurm does). The node is the host as
`slurmd -C` reports it (real CPUs and memory). Partitions: every partition params.yaml `cluster:`
names, all on this one node, the default partition first.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

CONF = Path("/etc/slurm/slurm.conf")
MARKER = "# written by zoorepro.slurm_cluster"
PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
BINARIES = {"slurmctld": "/usr/sbin/slurmctld", "slurmd": "/usr/sbin/slurmd", "munged": "/usr/sbin/munged",
            "sbatch": "/usr/bin/sbatch", "squeue": "/usr/bin/squeue", "scancel": "/usr/bin/scancel"}
DEFAULT_STATE = Path("/var/tmp/zoorepro-slurm")


class ClusterUnavailable(RuntimeError):
    """This machine cannot run the cluster (not root, no packages and no apt-get, ...): the reason."""


def missing_binaries() -> list[str]:
    return [name for name, path in BINARIES.items() if not Path(path).exists()]


def unavailable_reason() -> str | None:
    """Why a cluster cannot be started here, or None."""
    if os.geteuid() != 0:
        return "not root: munged, slurmctld and slurmd are started as root (no systemd)"
    if missing_binaries() and not shutil.which("apt-get"):
        return f"SLURM/munge not installed ({', '.join(missing_binaries())} missing) and no apt-get"
    if CONF.exists() and MARKER not in CONF.read_text(errors="replace"):
        return f"{CONF} exists and is not ours (a real cluster's configuration): not touched"
    return None


def install(quiet: bool = True) -> None:
    """apt-get install the Debian packages when a binary is missing (as root); raises
    ClusterUnavailable with apt's output when that fails."""
    if not missing_binaries():
        return
    reason = unavailable_reason()
    if reason:
        raise ClusterUnavailable(reason)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-q", *PACKAGES]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode:  # a stale package list: update once and retry
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, text=True, check=False)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode or missing_binaries():
        raise ClusterUnavailable(f"apt-get install {' '.join(PACKAGES)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    if not quiet:
        print(f"slurm_cluster: installed {' '.join(PACKAGES)}", file=sys.stderr)


def node_line() -> dict:
    """The host as `slurmd -C` sees it: NodeName, CPUs, ..., RealMemory (MB)."""
    out = subprocess.run([BINARIES["slurmd"], "-C"], capture_output=True, text=True, check=True).stdout
    first = out.splitlines()[0]
    return dict(field.split("=", 1) for field in first.split())


def partitions_from_params(params: dict) -> list[str]:
    """Every partition params `cluster:` names, the default partition first."""
    cluster = params["cluster"]
    names = [cluster["partitions"]["default"], *cluster["partitions"].values(),
             *(chip["partition"] for chip in cluster["chips"].values())]
    return list(dict.fromkeys(names))


def slurm_conf(state: Path, node: dict, partitions: list[str]) -> str:
    name = node["NodeName"]
    hw = " ".join(f"{key}={node[key]}" for key in ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket",
                                                    "ThreadsPerCore", "RealMemory") if key in node)
    lines = [
        MARKER + " (one-node test cluster; removed by `python -m zoorepro.slurm_cluster stop`)",
        "ClusterName=zoorepro",
        f"SlurmctldHost={name}(127.0.0.1)",
        "SlurmUser=root", "SlurmdUser=root",
        "AuthType=auth/munge", "CredType=cred/munge", "MpiDefault=none",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none", "JobCompType=jobcomp/none",
        # builtin: a job starts as soon as the CPUs it asks for are free (no backfill cycle to wait for)
        "SchedulerType=sched/builtin", "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core_Memory",
        "ReturnToService=2", "KillWait=5", "MinJobAge=300",
        f"StateSaveLocation={state}/ctld", f"SlurmdSpoolDir={state}/spool",
        f"SlurmctldPidFile={state}/slurmctld.pid", f"SlurmdPidFile={state}/slurmd.pid",
        f"SlurmctldLogFile={state}/slurmctld.log", f"SlurmdLogFile={state}/slurmd.log",
        f"NodeName={name} NodeAddr=127.0.0.1 {hw} State=UNKNOWN",
    ]
    for i, part in enumerate(partitions):
        lines.append(f"PartitionName={part} Nodes={name} Default={'YES' if i == 0 else 'NO'} "
                     "MaxTime=INFINITE State=UP")
    return "\n".join(lines) + "\n"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _munge_works() -> bool:
    if not shutil.which("munge"):
        return False
    proc = subprocess.run("munge -n | unmunge", shell=True, capture_output=True, check=False)
    return proc.returncode == 0


def _running(binary: str) -> list[int]:
    """PIDs whose executable is `binary` (to refuse a second daemon; never used to stop one)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "exe") == binary:
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def start(state: Path = DEFAULT_STATE, partitions: list[str] | None = None, timeout: float = 60) -> dict:
    """Install if needed, write slurm.conf, start munged (unless one already answers), slurmctld
    and slurmd in the foreground as this process's children in their own sessions; wait until the
    node is idle. Returns {daemon: pid} for the daemons started here (also in state/pids.json)."""
    reason = unavailable_reason()
    if reason:
        raise ClusterUnavailable(reason)
    install()
    for daemon in ("slurmctld", "slurmd"):
        if _running(BINARIES[daemon]):
            raise ClusterUnavailable(f"a {daemon} is already running (pid {_running(BINARIES[daemon])}); "
                                     "not starting a second one")
    from .config import load_params
    partitions = partitions or partitions_from_params(load_params())
    state = Path(state).resolve()
    if (state / "pids.json").exists():
        stop(state)
    for sub in ("ctld", "spool"):
        shutil.rmtree(state / sub, ignore_errors=True)
        (state / sub).mkdir(parents=True)
    CONF.parent.mkdir(parents=True, exist_ok=True)
    CONF.write_text(slurm_conf(state, node_line(), partitions))
    pids: dict[str, int] = {}

    def launch(name: str, cmd: list[str], **kw) -> None:
        with open(state / f"{name}.out", "w") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, **kw)
        pids[name] = proc.pid
        (state / "pids.json").write_text(json.dumps(pids))

    try:
        if not _munge_works():
            Path("/run/munge").mkdir(parents=True, exist_ok=True)
            shutil.chown("/run/munge", "munge", "munge")
            launch("munged", [BINARIES["munged"], "--foreground"], user="munge", group="munge", extra_groups=[])
            _wait(_munge_works, timeout, "munged to answer (munge -n | unmunge)", state)
        launch("slurmctld", [BINARIES["slurmctld"], "-D"])
        launch("slurmd", [BINARIES["slurmd"], "-D"])
        _wait(lambda: _node_state() in {"idle", "mixed", "alloc", "allocated"}, timeout, "the node to be idle", state)
    except BaseException:
        stop(state)
        raise
    return pids


def _node_state() -> str:
    proc = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], capture_output=True, text=True, check=False)
    return proc.stdout.split()[0].rstrip("*~#!%$@^-") if proc.returncode == 0 and proc.stdout.split() else ""


def _wait(ready, timeout: float, what: str, state: Path) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}"
                             for p in sorted(state.glob("*.out")) + sorted(state.glob("*.log")))
            raise ClusterUnavailable(f"timed out after {timeout:.0f} s waiting for {what}\n{logs}")
        time.sleep(0.3)


def cancel_all() -> None:
    """scancel every job of this (test) cluster and wait until the queue is empty."""
    ids = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, check=False).stdout.split()
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True, check=False)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and subprocess.run(
                ["squeue", "-h", "-o", "%i"], capture_output=True, text=True, check=False).stdout.split():
            time.sleep(0.5)


def stop(state: Path = DEFAULT_STATE) -> list[int]:
    """Cancel the cluster's jobs, then SIGTERM (after 15 s SIGKILL) exactly the PIDs start()
    recorded, each only while it still runs the daemon it was started as; remove slurm.conf.
    Returns the PIDs stopped."""
    state = Path(state).resolve()
    record = state / "pids.json"
    if not record.exists():
        return []
    pids = json.loads(record.read_text())
    if pids.get("slurmctld"):
        cancel_all()
    stopped = []
    for name in ("slurmd", "slurmctld", "munged"):  # the reverse of the start order
        pid = pids.get(name)
        if pid and Path(BINARIES[name]).name in _cmdline(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 15
            while Path(BINARIES[name]).name in _cmdline(pid) and _state_of(pid) != "Z":
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    deadline = time.monotonic() + 5
                time.sleep(0.1)
            try:
                os.waitpid(pid, os.WNOHANG)  # reap it when it is our child
            except ChildProcessError:
                pass
            stopped.append(pid)
    record.unlink()
    if CONF.exists() and MARKER in CONF.read_text(errors="replace"):
        CONF.unlink()
    return stopped


def _state_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def status(state: Path = DEFAULT_STATE) -> dict:
    state = Path(state).resolve()
    pids = json.loads((state / "pids.json").read_text()) if (state / "pids.json").exists() else {}
    return {"pids": {name: pid for name, pid in pids.items() if Path(BINARIES[name]).name in _cmdline(pid)},
            "node": _node_state() if pids else "", "conf": str(CONF) if CONF.exists() else None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=["install", "start", "stop", "status"])
    ap.add_argument("--state", type=Path, default=DEFAULT_STATE,
                    help=f"state, spool, logs and pids.json of the daemons (default {DEFAULT_STATE})")
    args = ap.parse_args(argv)
    try:
        if args.action == "install":
            install(quiet=False)
        elif args.action == "start":
            pids = start(args.state)
            print(f"slurm_cluster: started {', '.join(f'{k} {v}' for k, v in pids.items())}; "
                  f"node {_node_state()}; stop with: python -m zoorepro.slurm_cluster stop --state {args.state}")
        elif args.action == "stop":
            print(f"slurm_cluster: stopped {stop(args.state) or 'nothing (no pids.json)'}")
        else:
            print(json.dumps(status(args.state)))
    except ClusterUnavailable as exc:
        print(f"slurm_cluster: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
