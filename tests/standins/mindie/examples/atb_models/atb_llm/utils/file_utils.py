"""ZOOREPRO STAND-IN for atb_llm.utils.file_utils: the path and file checks MindIE-LLM applies
before it reads a file or writes one (../shared/upstream/llava_clipbert.md §1.3), written from those
facts, not from MindIE's code:

* a path handed over must not itself be a symbolic link (checked on the path as given, then the
  path is resolved with realpath) and, resolved, may hold only [0-9a-zA-Z_./-];
* a file read must exist, be a regular file, belong to the user (or the user's group), not be
  writable by others (skipped with MINDIE_CHECK_INPUTFILES_PERMISSION=0) and be at most a size cap
  (100 MiB by default, videos 512 MiB);
* files it writes are created with mode 0o600.
Messages are the stand-in's own (ValueError, as MindIE raises)."""
from __future__ import annotations

import os
import re
import stat

MAX_PATH_LENGTH = 4096
MAX_FILE_SIZE = 100 * 1024 * 1024
MAX_VIDEO_SIZE = 512 * 1024 * 1024
_BAD_CHARS = re.compile(r"[^0-9a-zA-Z_./-]")


def check_path_is_link(path: str) -> None:
    if os.path.islink(os.path.normpath(path)):
        raise ValueError(f"The path should not be a symbolic link file: {path}")


def standardize_path(path: str, max_path_length: int = MAX_PATH_LENGTH, check_link: bool = True) -> str:
    if not path or len(path) > max_path_length:
        raise ValueError(f"The length of path should be between 1 and {max_path_length}: {path!r}")
    if check_link:
        check_path_is_link(path)
    real = os.path.realpath(path)
    if _BAD_CHARS.search(real):
        raise ValueError(f"The path contains characters outside [0-9a-zA-Z_./-]: {real!r}")
    return real


def check_owner(path: str) -> None:
    st = os.stat(path)
    if st.st_uid != os.geteuid() and st.st_gid not in os.getgroups() and os.geteuid() != 0:
        raise ValueError(f"The path is not owned by the current user or its group: {path}")


def check_other_write(path: str) -> None:
    if os.environ.get("MINDIE_CHECK_INPUTFILES_PERMISSION", "1") == "0":
        return
    if os.stat(path).st_mode & stat.S_IWOTH:
        raise ValueError(f"The path is writable by others: {path}")


def check_file_safety(path: str, mode: str = "r", is_check_file_size: bool = True,
                      max_file_size: int = MAX_FILE_SIZE) -> str:
    real = standardize_path(path)
    if "r" in mode or os.path.exists(real):
        if not os.path.isfile(real):
            raise ValueError(f"The file does not exist or is not a regular file: {path}")
        check_owner(real)
        check_other_write(real)
        if is_check_file_size and os.path.getsize(real) > max_file_size:
            raise ValueError(f"The file is larger than {max_file_size} bytes: {path}")
    return real


def safe_open(path: str, mode: str = "r", encoding: str | None = None, permission: int = 0o600,
              max_file_size: int = MAX_FILE_SIZE, **kwargs):
    real = check_file_safety(path, mode, max_file_size=max_file_size)
    if "r" in mode:
        return open(real, mode, encoding=encoding, **kwargs)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    fd = os.open(real, flags, permission)
    os.chmod(real, permission)
    return os.fdopen(fd, mode, encoding=encoding, **kwargs)


def safe_listdir(path: str) -> list[str]:
    return sorted(os.listdir(standardize_path(path)))
