"""Typed backend settings: each backend's params.yaml `targets.<t>` entry becomes a frozen
dataclass (`<backend>/config.py`), parsed and checked here, once, when the factory builds the
backend. A bad or unknown key is one ConfigError naming `targets.<t>.<key>`.

A setting is a dataclass field whose metadata is `setting(parse, env=..., hint=...)`: its parser
(value, key) -> typed value, an environment variable read when params.yaml leaves it unset, and
the field's default.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from ..errors import ConfigError

Parser = Callable[[Any, str], Any]


def setting(parse: Parser, *, env: str | None = None, hint: str | None = None) -> dict[str, Any]:
    """The metadata of a settings field (`field(default=..., metadata=setting(parse))`):
    `parse(value, key)` checks and converts the params.yaml value; `env` is read when the key is
    absent (or null); `hint` says what a required setting should be."""
    return {"parse": parse, "env": env, "hint": hint}


# -- parsers ---------------------------------------------------------------------------------------


def non_empty_str(what: str = "a non-empty string") -> Parser:
    def parse(value: Any, key: str) -> str:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{key} must be {what}, got {value!r}")
        return value
    return parse


def non_negative_int(value: Any, key: str) -> int:
    """A count or card index (JSON/YAML booleans are ints to Python: refused)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"{key} must be a non-negative integer, got {value!r}")
    return value


def str_tuple(*, non_empty: bool = False) -> Parser:
    """argv words: a list of strings (kept as a tuple)."""
    def parse(value: Any, key: str) -> tuple[str, ...]:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key} must be a list of strings, got {value!r}")
        if non_empty and not value:
            raise ConfigError(f"{key} must not be empty")
        return tuple(value)
    return parse


def optional_path(value: Any, key: str) -> Path | None:
    """A path string (`~` expanded)."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key} must be a path string, got {value!r}")
    return Path(value).expanduser()


# -- the base config -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class BackendConfig:
    """The keys every `targets.<t>` entry has: `backend` (which backend) and `hardware` (what the
    tables call the machine). `target` is the entry's name, not a setting."""

    target: str = dataclasses.field(metadata={"internal": True})
    backend: str = dataclasses.field(metadata=setting(non_empty_str()))
    hardware: str | None = dataclasses.field(default=None, metadata=setting(non_empty_str()))

    @classmethod
    def settings_keys(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls) if not f.metadata.get("internal")]

    @classmethod
    def from_settings(cls, target: str, settings: object) -> Self:
        """Parse `targets.<target>`: unknown keys refused, each value parsed by its field's parser,
        absent (or null) ones taken from the field's environment variable or default."""
        prefix = f"targets.{target}"
        if not isinstance(settings, Mapping):
            raise ConfigError(f"{prefix} must be a mapping of settings, got {settings!r}")
        known = cls.settings_keys()
        unknown = [str(k) for k in settings if k not in known]
        if unknown:
            raise ConfigError(f"{prefix}.{unknown[0]} is not a setting of the {settings.get('backend')} backend "
                              f"(its settings: {', '.join(known)})")
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.metadata.get("internal"):
                continue
            key = f"{prefix}.{f.name}"
            value = settings.get(f.name)
            if value is None and f.metadata.get("env"):
                value = os.environ.get(f.metadata["env"]) or None
            if value is None:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    hint = f.metadata.get("hint")
                    raise ConfigError(f"{key} is required" + (f": {hint}" if hint else ""))
                continue
            values[f.name] = f.metadata["parse"](value, key)
        return cls(target=target, **values)
