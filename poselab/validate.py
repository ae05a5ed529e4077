"""One validator for option mappings: unknown keys with "did you mean", values by type.

Used for training options (TrainConfig), augmentation (AugmentConfig) and config.yaml keys,
so `--set lr=abc`, `epochs: 2.5` in a preset and `dotsize: big` in config.yaml all stop with
one line naming the source and the key, before anything is written.

Types are written as in annotations: int, float, bool, str, `X | None`, list[float],
tuple[int, int], dict[str, Any], Any. An int is accepted for a float; a bool is never a
number; 2.0 is accepted for an int (YAML writes it so), 2.5 is not.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from poselab.errors import ConfigError


def did_you_mean(key: str, names: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest name, or ''."""
    near = difflib.get_close_matches(str(key), sorted(names), n=1, cutoff=0.6)
    return f" (did you mean '{near[0]}'?)" if near else ""


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is Any:
        return "any value"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if origin in (list, tuple):
        args = typing.get_args(tp)
        inner = _describe(args[0]) if args else "values"
        n = f"{len(args)} " if origin is tuple and Ellipsis not in args else ""
        return f"a list of {n}{inner.removeprefix('a ').removeprefix('an ')}s"
    if origin is dict or tp is dict:
        return "a mapping"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp)))


def coerce(value: Any, tp: Any) -> Any:
    """`value` as type `tp` (lists become tuples for tuple fields), or raise TypeError."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return coerce(value, arg)
            except TypeError:
                continue
        raise TypeError
    if tp is type(None):
        if value is None:
            return None
        raise TypeError
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise TypeError
    if tp is int:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise TypeError
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise TypeError
    if tp is str:
        if isinstance(value, str):
            return value
        raise TypeError
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise TypeError
        args = typing.get_args(tp)
        if origin is tuple and args and Ellipsis not in args:
            if len(value) != len(args):
                raise TypeError
            return tuple(coerce(v, a) for v, a in zip(value, args, strict=True))
        inner = args[0] if args else Any
        items = [coerce(v, inner) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise TypeError
        return dict(value)
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise TypeError
    return value


def check_value(value: Any, tp: Any, where: str) -> Any:
    """`coerce` with a one-line ConfigError: '<where> must be <type>, got <value>'."""
    try:
        return coerce(value, tp)
    except TypeError:
        raise ConfigError(f"{where} must be {_describe(tp)}, got {value!r}") from None


def check_options(cls: type, data: Mapping[str, Any], source: str, what: str = "option",
                  skip: Iterable[str] = ()) -> dict[str, Any]:
    """Validate a mapping of a dataclass's fields: known keys, values of the field's type.

    Args:
        cls: the dataclass (its annotations give the types).
        data: the mapping (from YAML or `--set`).
        source: where it came from (a file, "--set", a preset), named in errors.
        what: what a key is called in messages ("training option", "augmentation key").
        skip: fields checked by the caller instead (left as given).

    Returns:
        The mapping with values coerced (2.0 -> 2 for ints, lists -> tuples).

    Raises:
        ConfigError: an unknown key (with the nearest name) or a value of the wrong type.
    """
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    out = {}
    skip = set(skip)
    for key, value in data.items():
        if key not in names:
            raise ConfigError(f"{source}: unknown {what} '{key}'{did_you_mean(key, names)}")
        out[key] = value if key in skip else check_value(value, hints[key],
                                                          f"{source}: {what} '{key}'")
    return out
