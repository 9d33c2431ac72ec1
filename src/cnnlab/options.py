"""Typed options: coerce raw YAML/CLI values to the annotated type of a builder or dataclass field.

Builders are keyword-only functions (`def convnet(*, num_classes: int, filters: tuple[int, ...] = ...)`);
their signature *is* the schema of their config section. `options_from_signature` reads it once, and
`coerce` turns `"0.1"`, `"[64,128]"` or `"true"` into the annotated type, raising a `ConfigError` that
names the key, its origin and the expected type.
"""

from __future__ import annotations

import decimal
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Union

from .errors import ConfigError


@dataclass(frozen=True)
class OptionSpec:
    """One option of a builder: its name, default and annotation (`inspect.Parameter.empty` if required)."""

    name: str
    default: Any
    annotation: Any

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty


def options_from_signature(fn: Callable[..., Any], skip: tuple[str, ...] = ()) -> dict[str, OptionSpec]:
    """The keyword options of `fn` (minus `skip`), with their resolved type hints."""
    hints = typing.get_type_hints(fn)
    specs = {}
    for param in inspect.signature(fn).parameters.values():
        if param.name in skip or param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
            continue
        specs[param.name] = OptionSpec(param.name, param.default, hints.get(param.name, Any))
    return specs


def type_name(annotation: Any) -> str:
    """A readable name for an annotation: 'int', 'list of int', 'one of relu, tanh', 'float or null'."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join("null" if a is type(None) else type_name(a) for a in args)
    if origin in (list, tuple):
        return f"list of {type_name(args[0])}" if args else "list"
    return getattr(annotation, "__name__", str(annotation))


def coerce(value: Any, annotation: Any, key: str, origin: str = "") -> Any:
    """Convert `value` to `annotation` or raise a ConfigError naming `key` (and where it came from)."""
    try:
        return _coerce(value, annotation)
    except (TypeError, ValueError) as exc:
        where = f" ({origin})" if origin else ""
        detail = f": {exc}" if str(exc) else ""
        raise ConfigError(
            f"{key}{where} must be {type_name(annotation)}, got {value!r}{detail}"
        ) from None


def _coerce(value: Any, annotation: Any) -> Any:
    if annotation is Any or annotation is inspect.Parameter.empty:
        return value
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return _coerce_literal(value, args)
    if origin in (Union, types.UnionType):
        return _coerce_union(value, args)
    if origin in (list, tuple):
        return _coerce_sequence(value, origin, args)
    if origin in (dict, Mapping) or annotation is dict:
        if not isinstance(value, Mapping):
            raise TypeError("")
        return dict(value)
    if annotation is bool:
        return _coerce_bool(value)
    if annotation is int:
        return _coerce_int(value)
    if annotation is float:
        if isinstance(value, bool):
            raise TypeError("")
        return float(value)
    if annotation is str:
        if isinstance(value, (dict, list)):
            raise TypeError("")
        return str(value)
    return value


def _coerce_literal(value: Any, choices: tuple[Any, ...]) -> Any:
    for choice in choices:
        if value == choice or (isinstance(value, str) and str(choice) == value):
            return choice
    raise ValueError("")


def _coerce_union(value: Any, members: tuple[Any, ...]) -> Any:
    if value is None or (isinstance(value, str) and value.lower() in ("null", "none", "~")):
        if type(None) in members:
            return None
    for member in members:
        if member is type(None):
            continue
        try:
            return _coerce(value, member)
        except (TypeError, ValueError):
            continue
    raise ValueError("")


def _coerce_sequence(value: Any, origin: Any, args: tuple[Any, ...]) -> Any:
    if isinstance(value, str) and "," in value:
        value = [part.strip() for part in value.strip("[]()").split(",") if part.strip()]  # filters=64,128,256
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        value = [value]  # a scalar where a list is expected: a list of one, as `filters=64` reads
    items = list(value)
    if origin is tuple and args and args[-1] is not Ellipsis:
        if len(items) != len(args):
            raise ValueError(f"expected {len(args)} values")
        return tuple(_coerce(v, a) for v, a in zip(items, args))
    item_type = args[0] if args else Any
    out = [_coerce(v, item_type) for v in items]
    return tuple(out) if origin is tuple else out


def _coerce_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "yes", "on", "1"):
        return True
    if isinstance(value, str) and value.lower() in ("false", "no", "off", "0"):
        return False
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError("")


def _coerce_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("")
        return int(value)
    if isinstance(value, str):
        return _int_text(value)
    return int(value)


def _int_text(text: str) -> int:
    """'12', and '1e12' (YAML 1.1 reads it as text) as the whole number it is, so that a number in either
    spelling meets the same bounds. Exactly, through Decimal: float would round 1e23."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = decimal.Decimal(text.strip())
    except decimal.InvalidOperation:
        raise ValueError("") from None
    # (an exponent beyond 10^30 would make int() build a number of that many digits)
    if not number.is_finite() or number.adjusted() > 30 or number != number.to_integral_value():
        raise ValueError("")
    return int(number)
