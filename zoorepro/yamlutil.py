"""YAML the project reads as data (params.yaml, claims, manifests, planted claims): safe loading
that refuses a mapping with a repeated key.

PyYAML keeps the last of two equal keys without a word, so a claim written `value: 1` and later
`value: 0.5`, or a params block listed twice, would silently change a verdict. Every loader of the
project's own YAML goes through `load` here; a duplicate is an error naming the key and both lines.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import ZooreproError


class DuplicateKeyError(ZooreproError):
    """A YAML mapping repeats a key."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader whose mappings refuse repeated keys (merge keys `<<` keep their meaning)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: SafeLoader reports it below
                continue
            if first is not None:
                raise DuplicateKeyError(
                    f"{self.name}: key {key!r} appears twice in one mapping (lines {first.start_mark.line + 1} "
                    f"and {key_node.start_mark.line + 1}); YAML would silently keep the last")
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def load(text: str, source: str = "<string>") -> Any:
    """Parse YAML safely, refusing duplicate keys; `source` names the text in messages."""
    loader = _UniqueKeyLoader(text)
    loader.name = source
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def load_file(path: Path | str) -> Any:
    return load(Path(path).read_text(encoding="utf-8"), str(path))
