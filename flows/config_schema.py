"""Typed, range-checked config schemas: dataclasses whose fields carry their limits.

A schema is a tree of dataclasses.  Each field's type says what a value may be (``int``,
``float``, ``str``, ``bool``, ``list[T]``, ``dict[str, T]``, ``Any``, an optional or a union of
these, or a nested dataclass) and its metadata adds the limits, written with :func:`setting`
and the helpers below: a numeric range, a set of choices, non-empty, an exact list length, or a
``check`` function for a rule of its own.  :func:`validate` walks a plain config (the dict
Hydra/OmegaConf composed) against a schema and raises :class:`ConfigError` with ONE line naming
the key, the value and what is allowed; keys the schema does not know are refused, unless the
dataclass sets ``__extra__ = True``.

Both the pipeline (``pipeline/config.py``) and the sensor (``serve/config.py``) describe their
config with it.  No dependency on Hydra, MLflow or DVC.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Callable
from dataclasses import field
from typing import Any, Union


class ConfigError(ValueError):
    """A config value breaks its schema (the message is one line)."""


def value_range(
    lo: float | None = None, hi: float | None = None, lo_open: bool = False, hi_open: bool = False
) -> dict[str, Any]:
    """Field metadata: ``lo <= value <= hi`` (``<`` on an open side; ``None``: unbounded)."""
    return {"lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open}


def choice(*options: Any) -> dict[str, Any]:
    """Field metadata: the value is one of ``options``."""
    return {"choices": options}


def setting(default: Any = dataclasses.MISSING, **meta: Any) -> Any:
    """A schema field with ``default`` (a list default is copied per instance) and its limits.

    ``meta`` keys: those of :func:`value_range` and :func:`choice`, ``nonempty=True``,
    ``length=N`` (a list of exactly N items) and ``check=f`` (``f(value)`` returns ``None`` when
    the value is fine, else what is wrong with it, as text that follows ``key=value``).
    """
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


#: Metadata of a whole number >= 1.
POSITIVE = value_range(1)


def octal_mode(value: Any) -> int:
    """A file mode: an octal string (``"0640"``, ``"640"``, ``"0o640"``) or an int (YAML reads an
    unquoted ``0640`` as octal already), 0..0o777.  Raises ``ValueError`` for anything else."""
    if isinstance(value, str) and re.fullmatch(r"(0o|0)?[0-7]{1,3}", value.strip().lower()):
        return int(value.strip().lower().removeprefix("0o"), 8)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0o777:
        return value
    raise ValueError(f"{value!r} is not a file mode: an octal string such as '0640' or a number 0..0o777")


def octal_mode_problem(value: Any) -> str | None:
    """A ``check`` for :func:`setting`: what is wrong with ``value`` as a file mode, or ``None``."""
    try:
        octal_mode(value)
    except ValueError:
        return "is not a file mode: an octal string such as '0640' (quoted in YAML) or a number 0..0o777"
    return None


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
_PLURALS = {int: "integers", float: "numbers", str: "strings", bool: "true/false values"}


def _type_name(tp: Any) -> str:
    return _TYPE_NAMES.get(tp, getattr(tp, "__name__", str(tp)))


def _is_scalar(value: Any, tp: Any) -> bool:
    if tp is Any:
        return True
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, tp)


def _check_value(key: str, value: Any, tp: Any, meta: dict[str, Any]) -> None:
    """Check one value against a field type (and its metadata); raise ConfigError naming ``key``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return
        options = [a for a in args if a is not type(None)]
        if len(options) > 1:  # a union of scalars (``int | str``): the first type the value is
            if not any(_is_scalar(value, a) for a in options):
                raise ConfigError(f"{key}={value!r} must be {' or '.join(_type_name(a) for a in options)}")
            _check_limits(key, value, meta)
            return
        tp = options[0]
        origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(
                f"{key} must be a mapping of {[f.name for f in dataclasses.fields(tp)]}, got {value!r}"
            )
        check_section(key, value, tp)  # type: ignore[arg-type]
        return
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}={value!r} must be a list")
        if meta.get("nonempty") and not value:
            raise ConfigError(f"{key} must not be empty")
        if "length" in meta and len(value) != meta["length"]:
            raise ConfigError(f"{key}={value!r} must be a list of {meta['length']} items")
        item_meta = {k: v for k, v in meta.items() if k not in ("nonempty", "length")}
        for i, item in enumerate(value):
            _check_value(f"{key}[{i}]", item, args[0], item_meta)
        return
    if origin is dict:
        _check_mapping(key, value, args[1], meta)
        return
    if not _is_scalar(value, tp):
        raise ConfigError(f"{key}={value!r} must be {_type_name(tp)}")
    _check_limits(key, value, meta)


def _check_mapping(key: str, value: Any, value_type: Any, meta: dict[str, Any]) -> None:
    what = "a mapping" if value_type is Any else f"a mapping of strings to {_PLURALS[value_type]}"
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and _is_scalar(v, value_type) for k, v in value.items()
    ):
        raise ConfigError(f"{key} must be {what}" + ("" if isinstance(value, dict) else f", got {value!r}"))
    if meta.get("nonempty") and not value:
        raise ConfigError(f"{key} must not be empty")


def _check_limits(key: str, value: Any, meta: dict[str, Any]) -> None:
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(f"{key}={value!r} is not one of {list(meta['choices'])}")
    if meta.get("nonempty") and not value:
        raise ConfigError(f"{key} must not be empty")
    if (meta.get("lo") is not None or meta.get("hi") is not None) and isinstance(value, (int, float)):
        _check_range(key, value, meta)
    problem: Callable[[Any], str | None] | None = meta.get("check")
    if problem is not None and (reason := problem(value)) is not None:
        raise ConfigError(f"{key}={value!r} {reason}")


def _check_range(key: str, value: float, meta: dict[str, Any]) -> None:
    lo, hi = meta.get("lo"), meta.get("hi")
    too_low = lo is not None and (value <= lo if meta.get("lo_open") else value < lo)
    too_high = hi is not None and (value >= hi if meta.get("hi_open") else value > hi)
    if value != value or too_low or too_high:  # value != value: NaN
        left = "" if lo is None else f"{_bound(lo)} {'<' if meta.get('lo_open') else '<='} "
        right = "" if hi is None else f" {'<' if meta.get('hi_open') else '<='} {_bound(hi)}"
        raise ConfigError(f"{key}={value!r} is out of range: must be {left}{key.rsplit('.', 1)[-1]}{right}")


def _bound(limit: float) -> str:
    return "infinity" if limit == math.inf else str(limit)


def check_section(prefix: str, values: dict[str, Any], schema: type) -> None:
    """Check the mapping ``values`` (found at key ``prefix``, ``""`` for the root) against ``schema``."""
    hints = typing.get_type_hints(schema)
    fields = {f.name: f for f in dataclasses.fields(schema)}
    if not getattr(schema, "__extra__", False):
        unknown = sorted(set(values) - set(fields), key=str)
        if unknown:
            raise ConfigError(
                f"{prefix}{'.' if prefix else ''}{unknown[0]} is not a known key; "
                f"{prefix or 'the config'} has {sorted(fields)}"
            )
    for name, f in fields.items():
        key = f"{prefix}.{name}" if prefix else name
        if name not in values:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{key} is missing")
            continue
        _check_value(key, values[name], hints[name], dict(f.metadata))


def validate(values: dict[str, Any], schema: type) -> dict[str, Any]:
    """Check a whole config (plain dict) against the dataclass ``schema``; return it unchanged."""
    if not isinstance(values, dict):
        raise ConfigError(f"the config must be a mapping, got {values!r}")
    check_section("", values, schema)
    return values
