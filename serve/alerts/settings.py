"""Read the ``alerts`` config (``conf/serve/alerts/default.yaml``) into typed, checked settings.

Every mistake a user can make in that file or on the command line becomes one
:class:`AlertConfigError` line naming the key, raised when the :class:`AlertManager` is built
(not later, on a worker thread, when the first alert is due).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from serve.alerts.alert import Rule

#: The key of the fallback entry in ``thresholds`` and ``rules``.
DEFAULT_KEY = "default"

#: The rule of groups without one when the config has no ``rules.default`` either.
_FALLBACK_RULE = Rule(1000000, "NETSENTRY ML {group}", "Misc Attack", 2)


class AlertConfigError(ValueError):
    """A bad value in the alerts config, as one line for the user."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a failing sink is retried before an alert counts as failed."""

    attempts: int = 4          # tries per alert, the first included
    backoff_s: float = 1.0     # wait after the first failure; doubles after each
    max_backoff_s: float = 30.0


@dataclass(frozen=True)
class RateLimit:
    """At most ``max`` alerts per ``per_s`` seconds; the rest are folded into one summary."""

    max: int
    per_s: float


@dataclass(frozen=True)
class SinkSettings:
    """One enabled sink: its name, transport kind, transport options and delivery policy."""

    name: str
    kind: str
    options: Mapping[str, Any]
    queue_size: int
    retry: RetryPolicy
    rate_limit: RateLimit | None


@dataclass(frozen=True)
class AlertSettings:
    """The whole alerts config."""

    thresholds: dict[str, float]
    default_threshold: float
    rules: dict[str, Rule]
    default_rule: Rule
    window_s: float
    max_open: int
    sinks: list[SinkSettings] = field(default_factory=list)

    def threshold(self, group: str) -> float:
        """The probability a detection of ``group`` needs to raise an alert."""
        return self.thresholds.get(group, self.default_threshold)

    def rule(self, group: str) -> Rule:
        """The signature fields of ``group``'s alerts (a group without its own rule gets the default)."""
        return self.rules.get(group) or _named(self.default_rule, group)


def _named(rule: Rule, group: str) -> Rule:
    return Rule(
        signature_id=rule.signature_id,
        signature=rule.signature.format(group=group),
        category=rule.category,
        severity=rule.severity,
        rev=rule.rev,
        gid=rule.gid,
        action=rule.action,
    )


def _mapping(value: Any, key: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise AlertConfigError(f"alerts config: {key} must be a mapping, not {value!r}")
    return value


def _number(value: Any, key: str, low: float, high: float = float("inf"), kind: type = float) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise AlertConfigError(f"alerts config: {key} must be a number, not {value!r}") from None
    if isinstance(value, bool) or not low <= number <= high:
        raise AlertConfigError(f"alerts config: {key} must be between {low} and {high}, not {value!r}")
    return number


def _thresholds(cfg: Mapping[str, Any]) -> tuple[dict[str, float], float]:
    raw = _mapping(cfg.get("thresholds"), "thresholds")
    # null: the group never raises an alert (e.g. the novelty guard's UNKNOWN on a site that wants none)
    values = {
        str(k): float("inf") if v is None else _number(v, f"thresholds.{k}", 0.0, 1.0) for k, v in raw.items()
    }
    default = values.pop(DEFAULT_KEY, 0.5)
    return values, default


def _rule(raw: Any, key: str) -> Rule:
    entry = _mapping(raw, key)
    if "sid" not in entry:
        raise AlertConfigError(f"alerts config: {key}.sid is missing")
    return Rule(
        signature_id=_number(entry["sid"], f"{key}.sid", 1, 2**32 - 1, int),
        signature=str(entry.get("signature", _FALLBACK_RULE.signature)),
        category=str(entry.get("category", "Misc Attack")),
        severity=_number(entry.get("severity", 2), f"{key}.severity", 1, 255, int),
        rev=_number(entry.get("rev", 1), f"{key}.rev", 1, 2**32 - 1, int),
        gid=_number(entry.get("gid", 1), f"{key}.gid", 1, 2**32 - 1, int),
    )


def _rules(cfg: Mapping[str, Any]) -> tuple[dict[str, Rule], Rule]:
    raw = _mapping(cfg.get("rules"), "rules")
    rules = {str(k): _rule(v, f"rules.{k}") for k, v in raw.items()}
    default = rules.pop(DEFAULT_KEY, _FALLBACK_RULE)
    rules = {group: _named(rule, group) for group, rule in rules.items()}
    return rules, default


def _retry(raw: Any, key: str, base: RetryPolicy) -> RetryPolicy:
    entry = _mapping(raw, key)
    return RetryPolicy(
        attempts=_number(entry.get("attempts", base.attempts), f"{key}.attempts", 1, 1000, int),
        backoff_s=_number(entry.get("backoff_s", base.backoff_s), f"{key}.backoff_s", 0.0),
        max_backoff_s=_number(entry.get("max_backoff_s", base.max_backoff_s), f"{key}.max_backoff_s", 0.0),
    )


def _rate_limit(raw: Any, key: str) -> RateLimit | None:
    if raw is None:
        return None
    entry = _mapping(raw, key)
    return RateLimit(
        max=_number(entry.get("max"), f"{key}.max", 1, 10**9, int),
        per_s=_number(entry.get("per_s", 60), f"{key}.per_s", 0.001),
    )


def _sinks(cfg: Mapping[str, Any], kinds: set[str]) -> list[SinkSettings]:
    queue_size = _number(cfg.get("queue_size", 1000), "queue_size", 1, 10**7, int)
    retry = _retry(cfg.get("retry"), "retry", RetryPolicy())
    sinks = []
    for name, raw in _mapping(cfg.get("sinks"), "sinks").items():
        key = f"sinks.{name}"
        entry = _mapping(raw, key)
        if not entry.get("enabled", False):
            continue
        kind = str(entry.get("type", name))  # `type` lets one config have two webhooks, say
        if kind not in kinds:
            raise AlertConfigError(
                f"alerts config: {key} has unknown type {kind!r} (known: {', '.join(sorted(kinds))})"
            )
        sinks.append(
            SinkSettings(
                name=str(name),
                kind=kind,
                options=entry,
                queue_size=_number(entry.get("queue_size", queue_size), f"{key}.queue_size", 1, 10**7, int),
                retry=_retry(entry.get("retry"), f"{key}.retry", retry),
                rate_limit=_rate_limit(entry.get("rate_limit"), f"{key}.rate_limit"),
            )
        )
    return sinks


def parse_settings(cfg: Mapping[str, Any], sink_kinds: set[str]) -> AlertSettings:
    """Check ``cfg`` (the ``serve.alerts`` mapping) and return its settings.

    ``sink_kinds`` are the sink types that exist; an enabled sink of another type is an error.
    """
    cfg = _mapping(cfg, "alerts")
    thresholds, default_threshold = _thresholds(cfg)
    rules, default_rule = _rules(cfg)
    aggregation = _mapping(cfg.get("aggregation"), "aggregation")
    return AlertSettings(
        thresholds=thresholds,
        default_threshold=default_threshold,
        rules=rules,
        default_rule=default_rule,
        window_s=_number(aggregation.get("window_s", 60), "aggregation.window_s", 0.0),
        max_open=_number(aggregation.get("max_open", 10000), "aggregation.max_open", 1, 10**8, int),
        sinks=_sinks(cfg, sink_kinds),
    )
