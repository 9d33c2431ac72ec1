"""YAML, bounded: every YAML text cnnlab reads (config files, study files, search spaces, a run's
config.yaml, the values of `key=value` overrides) goes through `read_yaml` or `load_yaml`.

PyYAML's safe loader is safe from code, not from size. A 1 KB "billion laughs" file (ten aliases of ten
aliases of ..., https://en.wikipedia.org/wiki/Billion_laughs_attack) names 10^9 values: PyYAML shares them
in memory, but every later step that walks the value (coercion, config.yaml, a message) writes them out;
one such config grew to 23.5 GB before the OS killed it. And a 50 MB file takes minutes to parse. So the
file's size is bounded before it is read, and while its nodes are composed, before any value is built from
them, the nodes (an alias counted as the whole part it repeats), the aliases and the nesting depth are
counted against io.LIMITS. The same pass refuses a mapping that repeats a key: PyYAML keeps the last one
silently (`epochs: 1` ... `epochs: 500` trained 500 epochs).

The events come from libyaml (PyYAML's C parser, 3x faster than its Python one, which is the fallback);
the composer is PyYAML's own Python one, extended, so that the counting happens node by node.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import yaml
from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from ..errors import ConfigError
from ..io import LIMITS

try:
    from yaml._yaml import CParser
except ImportError:  # pragma: no cover  PyYAML built without libyaml
    CParser = None

MERGE_TAG = "tag:yaml.org,2002:merge"  # `<<: *base`: YAML's way to reuse a mapping and override its keys
INT_TAG = "tag:yaml.org,2002:int"


class InvalidYaml(ConfigError):
    """Text that is not YAML (a syntax error), as opposed to YAML over a limit or with a repeated key."""


@dataclass(frozen=True)
class YamlDocument:
    data: Any  # the plain value (None for an empty document)
    node: Node | None  # the composed root, for the line of each key

    def key_lines(self, depth: int = 2) -> dict[tuple[str, ...], int]:
        """(key, subkey, ...) -> the 1-based line of that key, for mappings up to `depth` levels down."""
        return _key_lines(self.node, (), depth)


def read_yaml(path: str | Path, what: str) -> YamlDocument:
    """The YAML file at `path` (`what`: 'config file', 'study file', ...), its size bounded before it is read."""
    path, limit = Path(path), LIMITS.yaml_bytes
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            blob = handle.read(limit + 1) if size <= limit else b""
    except FileNotFoundError:
        raise ConfigError(f"{what} '{path}' does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} '{path}': {exc.strerror}") from None
    if size > limit or len(blob) > limit:  # (a pipe or a device says size 0)
        shown = f"{size / 2**20:.1f} MiB" if size > limit else "more"
        raise ConfigError(f"{path}: a {what} of {shown} is over the limit of {limit >> 20} MiB for one YAML file "
                          "(io.LIMITS.yaml_bytes); check the path. Many runs are written as grid:/zip: lists, "
                          "not one by one")
    return load_yaml(blob, str(path))


def load_yaml(text: str | bytes, where: str, numbered: bool = True) -> YamlDocument:
    """Parse one YAML document within io.LIMITS; `where` names it in messages (with ':line' if `numbered`)."""
    loader = BoundedLoader(text, where, numbered) if CParser is not None else PythonBoundedLoader(text, where, numbered)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        place = f"{where}:{mark.line + 1}" if mark is not None and numbered else where
        raise InvalidYaml(f"{place}: invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    finally:
        loader.dispose()
    return YamlDocument(data, node)


def _construct_int(loader: SafeConstructor, node: ScalarNode) -> int:
    try:
        return cast(int, SafeConstructor.construct_yaml_int(loader, node))  # PyYAML is untyped
    except ValueError:  # Python's own bound: an integer of over 4,300 digits is not converted (CVE-2020-10735)
        raise ConstructorError(None, None, f"an integer of {len(node.value):,} digits", node.start_mark) from None


class _Bounds(Composer):
    """PyYAML's composer, counting nodes, aliases and depth against io.LIMITS and refusing repeated keys."""

    yaml_constructors = {**SafeConstructor.yaml_constructors, INT_TAG: _construct_int}

    def __init__(self, where: str, numbered: bool) -> None:
        Composer.__init__(self)
        self.where, self.numbered = where, numbered
        self.nodes = self.aliases = self.depth = 0
        self.sizes: dict[int, int] = {}  # id(node) -> its node count, aliases written out

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            self.aliases += 1
            self._bound(self.aliases, LIMITS.yaml_aliases, "aliases (*name)", "yaml_aliases", event)
            target = self.anchors.get(event.anchor)
            if target is not None:  # (an undefined alias is PyYAML's own error)
                if id(target) not in self.sizes:
                    raise ConfigError(f"{self._place(event)}: alias *{event.anchor} repeats the part that contains "
                                      "it, a value without end; write the value out")
                self.nodes += self.sizes[id(target)]
                self._bound(self.nodes, LIMITS.yaml_nodes, "values with its aliases written out", "yaml_nodes", event)
            return Composer.compose_node(self, parent, index)
        self.depth += 1
        self._bound(self.depth, LIMITS.yaml_depth, "levels of nesting", "yaml_depth", event)
        before = self.nodes
        node = Composer.compose_node(self, parent, index)
        self.depth -= 1
        self.nodes += 1
        self._bound(self.nodes, LIMITS.yaml_nodes, "values with its aliases written out", "yaml_nodes", event)
        self.sizes[id(node)] = self.nodes - before
        return node

    def compose_mapping_node(self, anchor: str | None) -> MappingNode:
        node = Composer.compose_mapping_node(self, anchor)
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == MERGE_TAG:
                continue
            key, line = self._key(key_node), key_node.start_mark.line + 1
            if key in seen:
                at = f" (first at line {seen[key]})" if self.numbered else ""
                raise ConfigError(f"{self._place(key_node)}: key '{key_node.value}' appears twice in one mapping{at}; "
                                  "YAML would keep only the last silently: remove one")
            seen[key] = line
        return node

    def _key(self, node: ScalarNode) -> Any:
        """The key as the dict will hold it (`1`, `1.0` and `true` are one key to Python)."""
        construct: Callable[..., Any] | None = self.yaml_constructors.get(node.tag)
        try:
            return construct(self, node) if construct is not None else (node.tag, node.value)
        except (yaml.YAMLError, ValueError, TypeError):
            return (node.tag, node.value)

    def _bound(self, count: int, limit: int, what: str, name: str, event: Any) -> None:
        if count > limit:
            fix = "nest the values less deeply" if name == "yaml_depth" else "a guard against alias bombs (an " \
                "*alias repeats its &anchor's whole value); write the values out, or split the file"
            raise ConfigError(f"{self._place(event)}: more than {limit:,} {what}, the limit for one YAML file "
                              f"(io.LIMITS.{name}): {fix}")

    def _place(self, event: Any) -> str:
        return f"{self.where}:{event.start_mark.line + 1}" if self.numbered else self.where


if CParser is not None:
    class BoundedLoader(_Bounds, CParser, SafeConstructor, Resolver):  # _Bounds first: its composer, not libyaml's
        def __init__(self, text: str | bytes, where: str, numbered: bool = True) -> None:
            CParser.__init__(self, text)
            _Bounds.__init__(self, where, numbered)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)


class PythonBoundedLoader(_Bounds, Reader, Scanner, Parser, SafeConstructor, Resolver):
    """The same without libyaml (and in the tests, to check both)."""

    def __init__(self, text: str | bytes, where: str, numbered: bool = True) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        _Bounds.__init__(self, where, numbered)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)


def _key_lines(node: Node | None, prefix: tuple[str, ...], depth: int) -> dict[tuple[str, ...], int]:
    lines: dict[tuple[str, ...], int] = {}
    if isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            keys = (*prefix, str(key_node.value))
            lines[keys] = key_node.start_mark.line + 1
            if len(keys) < depth:
                lines.update(_key_lines(value_node, keys, depth))
    return lines
