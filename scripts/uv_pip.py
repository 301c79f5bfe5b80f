"""`uv pip ARGS` for this interpreter's venv, with pip's own package sources (`make env`).

uv installs the same lock file with the same constraints as pip, in parallel and by linking from its
cache, but reads no pip configuration. So the index, extra indexes, find-links, certificate bundle
and timeout that pip is configured with (pip.conf files and PIP_* variables, as `pip config list`
shows them) are handed to uv here, and `--index-strategy unsafe-best-match` gives pip's choice: the
best version across all indexes. pip's own constraint files are not passed: `make env` names
envs/constraints.txt with `-c`, which replaces them for pip too.

Bytecode is not compiled at install (uv's default; pip compiles every module): the Makefile lets
Python cache the bytecode of what the steps import, on import, instead (see its PYTHONDONTWRITEBYTECODE
note).

Usage: python scripts/uv_pip.py install -r envs/requirements.lock -c envs/constraints.txt
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys

# pip option -> uv flag (each value of a space-separated list gets its own flag)
LISTS = {"extra-index-url": "--extra-index-url", "find-links": "--find-links"}


def pip_settings(listing: str) -> dict[str, str]:
    """`pip config list` lines (`global.find-links='/opt/wheels'`, `:env:.timeout='60'`) -> {key: value};
    a later line wins, as in pip (files, then environment)."""
    settings = {}
    for line in listing.splitlines():
        name, sep, value = line.partition("=")
        if not sep or "." not in name:
            continue
        key = name.rsplit(".", 1)[1]
        settings[key] = " ".join(shlex.split(value))
    return settings


def uv_arguments(settings: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """uv flags and environment variables for pip's settings."""
    flags, env = ["--index-strategy", "unsafe-best-match"], {}
    if settings.get("index-url"):
        flags += ["--index-url", settings["index-url"]]
    for key, flag in LISTS.items():
        for value in settings.get(key, "").split():
            flags += [flag, value]
    if settings.get("no-index", "").lower() in ("1", "true", "yes", "on"):
        flags.append("--no-index")
    if settings.get("cert"):
        env["SSL_CERT_FILE"] = settings["cert"]
    timeout = settings.get("timeout") or settings.get("default-timeout")
    if timeout:
        env["UV_HTTP_TIMEOUT"] = timeout
    return flags, env


def main(argv: list[str]) -> int:
    from uv import find_uv_bin

    listing = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                             check=True).stdout
    flags, env = uv_arguments(pip_settings(listing))
    command = uv_command(find_uv_bin(), argv, sys.executable, flags)
    return subprocess.run(command, env={**os.environ, **env}, check=False).returncode


def uv_command(uv: str, argv: list[str], python: str, flags: list[str]) -> list[str]:
    """`uv pip <argv>` for `python` with pip's source flags."""
    return [uv, "pip", *argv[:1], "--python", python, *flags, *argv[1:]]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
