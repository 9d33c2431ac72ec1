"""The one registry pattern used by every family (models, datasets, optimizers, schedules, activations).

As in torchvision and timm: `MODELS = Registry("model")`, then `@MODELS.register("lenet5", ...)` on a
builder. Duplicate names raise; unknown names raise a `ConfigError` listing the valid names and the
closest match; `names("resnet*")` filters with shell-style patterns.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from .errors import ConfigError, unknown_name_message

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> entry mapping. `make_entry(obj, name=..., **meta)` turns a decorated object into an entry
    (for instance a `ModelInfo`); without it the object itself is stored."""

    def __init__(self, kind: str, make_entry: Callable[..., T] | None = None) -> None:
        self.kind = kind
        self._make_entry = make_entry
        self._entries: dict[str, T] = {}
        self._providers: dict[str, Callable[[str], T]] = {}

    def register(self, name: str, **meta: Any) -> Callable[[Any], Any]:
        """Decorator: register `obj` under `name` and return `obj` unchanged."""

        def decorate(obj: Any) -> Any:
            entry = self._make_entry(obj, name=name, **meta) if self._make_entry else obj
            self.add(name, entry)
            return obj

        return decorate

    def add(self, name: str, entry: T) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._entries[name] = entry

    def add_provider(self, prefix: str, provide: Callable[[str], T]) -> None:
        """Entries made on demand for names starting with `prefix` ('tv:resnet18' -> provide('resnet18')),
        for families too large or too optional to register one by one (torchvision, timm)."""
        self._providers[prefix] = provide

    def get(self, name: str, origin: str = "") -> T:
        """The entry of `name`; `origin` (where the name came from) goes into the error message."""
        if name in self._entries:
            return self._entries[name]
        for prefix, provide in self._providers.items():
            if name.startswith(prefix):
                return provide(name[len(prefix):])
        choices = [*self._entries, *(f"{prefix}<name>" for prefix in self._providers)]
        raise ConfigError(unknown_name_message(self.kind, name, choices, origin))

    def providers(self) -> list[str]:
        return sorted(self._providers)

    def names(self, pattern: str = "*") -> list[str]:
        return sorted(n for n in self._entries if fnmatch.fnmatchcase(n, pattern))

    def __contains__(self, name: object) -> bool:
        return name in self._entries or (isinstance(name, str) and any(map(name.startswith, self._providers)))

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self)} entries)"
