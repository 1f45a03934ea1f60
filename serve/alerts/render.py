"""How an alert reads: the EVE JSON record (EVE file, webhook) and the text (e-mail, syslog).

The EVE record has the shape of a Suricata ``event_type: alert`` event, so that SIEM pipelines
built for Suricata (the filebeat/Elastic Suricata module, Wazuh) ingest it unchanged.  What
Suricata has no field for (model, probability, aggregation) goes under the ``netsentry`` key,
which no Suricata event uses.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from serve.alerts.alert import Alert, Rule, Summary, eve_time

#: The key of our own fields in EVE records.
EXTRA_KEY = "netsentry"

_NO_PORTS = {1, 58}  # ICMP and ICMPv6: Suricata writes no ports for them


@functools.cache
def _rule_record(rule: Rule) -> dict[str, Any]:
    """The ``alert{}`` object of a rule's events, built once per rule (rules are few and frozen);
    shared by every record of the rule, so nothing may change it."""
    return {
        "action": rule.action,
        "gid": rule.gid,
        "signature_id": rule.signature_id,
        "rev": rule.rev,
        "signature": rule.signature,
        "category": rule.category,
        "severity": rule.severity,
    }


def eve_record(alert: Alert) -> dict[str, Any]:
    """``alert`` as a Suricata EVE alert event (a dict ready for ``json.dumps``)."""
    assert alert.first_seen is not None and alert.last_seen is not None
    start = eve_time(alert.flow_start)
    end = eve_time(alert.flow_end)
    # an aggregate of one flow (most of a flood's) is seen from its start to its end: no new text
    first = start if alert.first_seen == alert.flow_start else eve_time(alert.first_seen)
    last = end if alert.last_seen == alert.flow_end else eve_time(alert.last_seen)
    record: dict[str, Any] = {
        "timestamp": start,
        "flow_id": alert.flow_id,
        "event_type": "alert",
        "src_ip": alert.src_ip,
    }
    if alert.protocol not in _NO_PORTS:
        record["src_port"] = alert.src_port
    record["dest_ip"] = alert.dest_ip
    if alert.protocol not in _NO_PORTS:
        record["dest_port"] = alert.dest_port
    record["proto"] = alert.proto
    record["alert"] = _rule_record(alert.rule)
    record["flow"] = {
        "pkts_toserver": alert.pkts_toserver,
        "pkts_toclient": alert.pkts_toclient,
        "bytes_toserver": alert.bytes_toserver,
        "bytes_toclient": alert.bytes_toclient,
        "start": start,
        "end": end,
    }
    record[EXTRA_KEY] = {
        "group": alert.group,
        "probability": round(alert.probability, 6),
        "model": alert.model_name,
        "version": alert.model_version,
        "count": alert.count,
        "first_seen": first,
        "last_seen": last,
    }
    return record


def summary_record(summary: Summary, top: int = 10) -> dict[str, Any]:
    """``summary`` as an EVE-style event of our own type (``netsentry_summary``)."""
    return {
        "timestamp": eve_time(datetime.now(UTC)),
        "event_type": "netsentry_summary",
        EXTRA_KEY: {
            "alerts": summary.alerts,
            "count": summary.detections,
            "groups": dict(summary.groups.most_common()),
            "top_sources": dict(summary.sources.most_common(top)),
            "first_seen": eve_time(summary.first_seen) if summary.first_seen else None,
            "last_seen": eve_time(summary.last_seen) if summary.last_seen else None,
        },
    }


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f UTC") if moment else "-"


def headline(alert: Alert) -> str:
    """One line: group, endpoints, count (an e-mail subject, a syslog message start)."""
    flows = "1 flow" if alert.count == 1 else f"{alert.count} flows"
    return (f"{alert.group} from {alert.src_ip} to {alert.dest_ip} ({flows}, "
            f"p={alert.probability:.2f}, severity {alert.rule.severity})")


def body(alert: Alert) -> str:
    """The alert spelled out for a human (an e-mail body)."""
    rule = alert.rule
    lines = [
        headline(alert),
        "",
        f"Group:        {alert.group}",
        f"Signature:    {rule.signature} [{rule.gid}:{rule.signature_id}:{rule.rev}]",
        f"Category:     {rule.category} (severity {rule.severity})",
        f"Source:       {alert.src_ip}",
        f"Destination:  {alert.dest_ip}",
        f"Flows:        {alert.count}",
        f"First seen:   {_when(alert.first_seen)}",
        f"Last seen:    {_when(alert.last_seen)}",
        f"Probability:  {alert.probability:.4f} (highest of the flows)",
        f"Model:        {alert.model_name} version {alert.model_version}",
        "",
        f"First flow:   {alert.proto} {alert.src_ip}:{alert.src_port} -> {alert.dest_ip}:{alert.dest_port}, "
        f"{alert.pkts_toserver}/{alert.pkts_toclient} packets, "
        f"{alert.bytes_toserver}/{alert.bytes_toclient} bytes (to server/to client)",
        f"              flow_id {alert.flow_id}, {_when(alert.flow_start)} to {_when(alert.flow_end)}",
    ]
    return "\n".join(lines) + "\n"


def summary_headline(summary: Summary) -> str:
    """One line for a summary of held-back alerts."""
    groups = ", ".join(f"{g} {n}" for g, n in summary.groups.most_common(3))
    return (f"{summary.alerts} more alert(s) held back by the rate limit: "
            f"{summary.detections} flows ({groups})")


def summary_body(summary: Summary, top: int = 10) -> str:
    """A summary spelled out for a human."""
    lines = [
        summary_headline(summary),
        "",
        f"Alerts held back: {summary.alerts}",
        f"Flows:            {summary.detections}",
        f"First seen:       {_when(summary.first_seen)}",
        f"Last seen:        {_when(summary.last_seen)}",
        "",
        "Flows per group:",
        *(f"  {group}: {n}" for group, n in summary.groups.most_common()),
        f"Top sources (of {len(summary.sources)}):",
        *(f"  {src}: {n}" for src, n in summary.sources.most_common(top)),
    ]
    return "\n".join(lines) + "\n"
