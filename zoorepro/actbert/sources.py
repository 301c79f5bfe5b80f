"""The patched PaddleVideo (ppvideo 2.3.1) source tree that every ActBERT step imports.

Why: the document runs PaddleVideo's own `main.py` from a git checkout. The ppvideo wheel ships the
same ActBERT code (../shared/upstream/videobert_actbert.md C.7) but not as importable as the
document uses it, and it does not run on this stack. So the installed package is copied into
`work/src/actbert/ppvideo/` and `patches/ppvideo/*.patch` are applied there (zoorepro/sources.py;
why each, patches/README.md); site-packages stays untouched. No `paddle.fluid` alias module is
installed: patch 01 moves the only two fluid users to paddle.base.

The steps run the document's command, `python main.py ...`, in-process through `run_main`, so they
can time around it and read what it saved; `override_args` and `check_local_vocab` turn the step's options into main.py's `-o` and refuse, before the run, what
would fail in it or download.
"""
from __future__ import annotations

import logging
import runpy
import sys
from pathlib import Path

from zoorepro import sources
from zoorepro.errors import ZooreproError

# import name -> distribution name
PACKAGES = {"ppvideo": "ppvideo"}
# PaddleVideo's main.py imports `paddlevideo` as a top-level package (it sits beside main.py in a
# checkout); both names must come from the patched tree.
MODULES = ["ppvideo", "paddlevideo"]
PATCH_GLOB = "ppvideo"


def prepare_sources(dest: Path, patches_dir: Path) -> dict:
    """Copy the installed ppvideo into `dest/ppvideo`, apply `patches_dir/ppvideo/*.patch`, write
    `dest/SOURCES.json`, all atomically. Returns the manifest."""
    return sources.prepare_sources(dest, [Path(patches_dir) / PATCH_GLOB], PACKAGES)


def activate(dest: Path) -> Path:
    """Put `dest/ppvideo` (so `import paddlevideo` and `main.py` resolve as in a PaddleVideo
    checkout) and `dest` (so `import ppvideo` is the patched copy) first on sys.path. Must run
    before anything imports paddlevideo. Returns the path of PaddleVideo's main.py."""
    dest = Path(dest)
    sources.activate(dest, MODULES, [dest / "ppvideo", dest], "python -m zoorepro.steps.sources --model actbert")
    return dest.resolve() / "ppvideo" / "main.py"


def parse_overrides(items: list[str]) -> dict[str, str]:
    """A step's own `-o KEY=VALUE` options as a dict, in order (later keys win)."""
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ZooreproError(f"-o {item!r}: expected KEY=VALUE")
        pairs[key] = value
    return pairs


def override_args(overrides: dict[str, str]) -> list[str]:
    """main.py's `-o KEY=VALUE` arguments. PaddleVideo splits an option at '=' (exactly one allowed)
    and eval()s the value, so a value with '=' is refused and paths must be passed absolute (an
    absolute path never evaluates to anything; `data/x` could)."""
    args: list[str] = []
    for key, value in overrides.items():
        if "=" in key or "=" in value:
            raise ZooreproError(f"-o {key}={value}: PaddleVideo's -o allows no '=' in a key or value")
        args += ["-o", f"{key}={value}"]
    return args


def check_local_vocab(config: Path, key: str, bert_model: str | None) -> None:
    """Refuse a run whose tokenizer would be downloaded. MSRVTTDataset and ActBertDataset call
    paddlenlp's BertTokenizer.from_pretrained(bert_model): a local folder holding vocab.txt is read
    offline, anything else (the default "bert-base-uncased") is fetched at run time."""
    if bert_model is None or not (Path(bert_model) / "vocab.txt").is_file():
        shown = "unset (the datasets' default 'bert-base-uncased')" if bert_model is None else repr(bert_model)
        raise ZooreproError(f"{config}: {key} is {shown}, not a folder holding vocab.txt: paddlenlp would "
                            "download the vocabulary at run time; pass the local folder")


def run_main(main_py: Path, args: list[str], log_file: Path) -> None:
    """Run PaddleVideo's main.py in this process exactly as `python main.py *args` would (its own
    argument parsing, seeding and task), with the "paddlevideo" logger also writing to `log_file`
    (patch 10 keeps it from writing ./.log.txt). In-process, so the caller can time around it."""
    handler = logging.FileHandler(log_file, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("[%(asctime)s] %(message)s", datefmt="%m/%d %H:%M:%S"))
    logger = logging.getLogger("paddlevideo")
    logger.addHandler(handler)
    saved_argv = sys.argv
    sys.argv = [str(main_py), *args]
    try:
        runpy.run_path(str(main_py), run_name="__main__")
    finally:
        sys.argv = saved_argv
        logger.removeHandler(handler)
        handler.close()
