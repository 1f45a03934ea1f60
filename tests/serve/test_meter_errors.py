"""When the flow meter refuses to run, the sensor reports the meter's own reason (bounded), not its last line.

Everything real: ``capture/flowmeter`` run by :class:`serve.meter.Meter` on a shared capture.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from serve.meter import Meter, MeterError, MeterSpec, meter_reason
from tests.serve.registered_model import METER

pytestmark = pytest.mark.skipif(not METER.is_file(), reason="capture/flowmeter not built (make meter)")


def _meter_error(pcaps: Path, **options: object) -> str:
    spec = MeterSpec(binary=METER, profile="clean", file=pcaps / "protocols" / "synscan.pcap", **options)
    with pytest.raises(MeterError) as err:
        list(Meter(spec).frames())
    return str(err.value)


@pytest.mark.parametrize(("option", "reason"), [
    ({"flow_timeout": -3}, "--flow-timeout needs a number > 0"),
    ({"activity_timeout": 0}, "--activity-timeout needs a number > 0"),
])
def test_a_refused_option_gives_the_meters_reason_not_its_help_hint(pcaps: Path, option: dict,
                                                                   reason: str) -> None:
    # the meter writes the reason, then "try 'flowmeter --help'": the sensor kept only the hint
    message = _meter_error(pcaps, **option)
    assert message == f"flow meter: {reason}"


def test_a_huge_meter_line_is_cut(pcaps: Path) -> None:
    # the meter echoes a bad BPF filter whole: 20 kB of it must not become the sensor's error line
    message = _meter_error(pcaps, bpf="tcp and ((( " + "x" * 20000)
    assert message.startswith("flow meter: bad filter 'tcp and ((( xxx")
    assert len(message) < 600 and "\n" not in message


def test_the_reason_is_the_meters_last_lines_bounded() -> None:
    lines = [f"flowmeter: warning {i}" for i in range(50)]
    lines += ["flowmeter: cannot go on", "try 'flowmeter --help'"]
    assert meter_reason(lines) == "warning 48; warning 49; cannot go on (and 48 earlier lines)"
    # only the latest lines are kept; the count of all of them still says what was left out
    assert meter_reason(lines[-20:], total=len(lines)) == meter_reason(lines)
    assert meter_reason([]) == ""


def test_the_meters_statistics_line_is_read_whole(pcaps: Path) -> None:
    # its JSON statistics line is longer than a kept message: cutting it would lose every counter
    spec = MeterSpec(binary=METER, profile="clean", file=pcaps / "protocols" / "synscan.pcap")
    meter = Meter(spec)
    rows = sum(len(frame) for frame in meter.frames())
    assert rows > 1000 and meter.stats()["flows_emitted"] == rows and meter.stats()["packets"] > rows
