"""The shared schema mechanism (flows/config_schema.py): every refusal is one line naming the key."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

from flows.config_schema import (
    ConfigError,
    choice,
    octal_mode,
    octal_mode_problem,
    setting,
    validate,
    value_range,
)


@dataclass(kw_only=True)
class Inner:
    wait: list[float] = setting([1, 2], length=2, **value_range(0, math.inf, lo_open=True, hi_open=True))
    mode: int | str = setting("0640", check=octal_mode_problem)


@dataclass(kw_only=True)
class Open:
    name: str = setting(nonempty=True)
    __extra__: ClassVar[bool] = True


@dataclass(kw_only=True)
class Root:
    inner: Inner = field(default_factory=Inner)
    anything: dict[str, Any] | None = setting(None)
    labels: dict[str, str] | None = setting(None)
    kind: str = setting("a", **choice("a", "b"))
    open: Open | None = setting(None)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"inner": {"wait": [1]}}, "inner.wait=[1] must be a list of 2 items"),
        ({"inner": {"wait": [1, math.inf]}},
         "inner.wait[1]=inf is out of range: must be 0 < wait[1] < infinity"),
        ({"inner": {"wait": [1, "x"]}}, "inner.wait[1]='x' must be a number"),
        ({"inner": {"wait": [0, 1]}}, "inner.wait[0]=0 is out of range"),
        ({"inner": {"mode": "0999"}}, "inner.mode='0999' is not a file mode"),
        ({"inner": {"mode": 0o1777}}, "inner.mode=1023 is not a file mode"),
        ({"inner": {"mode": 1.5}}, "inner.mode=1.5 must be an integer or a string"),
        ({"inner": {"nope": 1}}, "inner.nope is not a known key; inner has ['mode', 'wait']"),
        ({"inner": 3}, "inner must be a mapping of ['wait', 'mode'], got 3"),
        ({"anything": [1]}, "anything must be a mapping, got [1]"),
        ({"labels": {"a": 1}}, "labels must be a mapping of strings to strings"),
        ({"kind": "c"}, "kind='c' is not one of ['a', 'b']"),
        ({"open": {}}, "open.name is missing"),
        ({"open": {"name": ""}}, "open.name must not be empty"),
    ],
)
def test_a_value_breaking_the_schema_is_one_line_naming_the_key(config: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        validate(config, Root)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_good_values_pass_unchanged() -> None:
    config = {"inner": {"wait": [0.5, 30], "mode": 0o600}, "anything": {"x": [1, {"y": 2}]},
              "labels": {"a": "b"}, "kind": "b", "open": {"name": "n", "extra": 1}}
    assert validate(config, Root) is config


@pytest.mark.parametrize(("text", "mode"),
                         [("0640", 0o640), ("640", 0o640), ("0o600", 0o600), (0o644, 0o644)])
def test_octal_mode(text: Any, mode: int) -> None:
    assert octal_mode(text) == mode
