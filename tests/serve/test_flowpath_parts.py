"""The flow path's small parts: micro-batching, the meter's statistics lines, config, verdict log."""

from __future__ import annotations

import signal

import numpy as np
import pandas as pd
import pytest

from serve.batcher import Batcher
from serve.config import ConfigError, load_config
from serve.meter import MeterSpec, describe_exit, parse_stats_line
from serve.metrics import FlowRate
from serve.verdict import VERDICT_COLUMNS
from serve.verdict_log import VerdictLog


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def frame(n: int, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame({"Flow ID": [f"f{i}" for i in range(start, start + n)]})


def test_batch_due_by_wait_at_light_load() -> None:
    clock = Clock()
    b = Batcher(max_rows=100, max_wait=0.05, clock=clock)
    assert b.wait_time() is None and not b.due() and b.take() is None
    b.add(frame(3))
    assert b.wait_time() == pytest.approx(0.05) and not b.due()
    clock.now += 0.02
    b.add(frame(2, 3))  # the wait counts from the oldest waiting row
    assert b.wait_time() == pytest.approx(0.03)
    clock.now += 0.03
    assert b.due()
    batch = b.take()
    assert batch["Flow ID"].tolist() == [f"f{i}" for i in range(5)] and len(b) == 0 and b.wait_time() is None


def test_batch_due_by_size_at_heavy_load() -> None:
    b = Batcher(max_rows=10, max_wait=60, clock=Clock())
    b.add(frame(6))
    assert not b.due()
    b.add(frame(0))  # empty frames change nothing
    b.add(frame(6, 6))
    assert b.due() and b.wait_time() == 0 and len(b.take()) == 10  # max_rows, the rest waits
    assert len(b) == 2 and len(b.take()) == 2


def test_batch_due_when_nothing_more_waits_upstream() -> None:
    strict, eager = Batcher(100, 0.05, clock=Clock()), Batcher(100, 0.05, clock=Clock(), when_idle=True)
    for b in (strict, eager):
        b.add(frame(2))
    assert not strict.due(upstream_idle=True)
    assert eager.due(upstream_idle=True) and not eager.due(upstream_idle=False)


def test_batcher_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Batcher(0, 0.05)


def test_stats_lines_from_both_meter_versions() -> None:
    old = 'flowmeter: {"packets": 94, "parsed": 94, "flows_emitted": 9, "kernel_drops": 0}'
    new = '{"packets": 5, "flows_emitted": 2, "final": false}'
    assert parse_stats_line(old)["flows_emitted"] == 9
    assert parse_stats_line(new) == {"packets": 5, "flows_emitted": 2, "final": False}
    assert parse_stats_line("flowmeter: cannot capture on eth9: No such device") is None
    assert parse_stats_line('{"not": "stats"}') is None


def test_exit_descriptions() -> None:
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_exit(3) == "exit status 3"


def test_meter_command_follows_the_model_profile(tmp_path) -> None:
    spec = MeterSpec(tmp_path / "flowmeter", "engelen", iface="eth0", bpf="tcp", flow_timeout=30)
    cmd = spec.command()
    assert cmd[cmd.index("--profile") + 1] == "engelen" and cmd[cmd.index("-i") + 1] == "eth0"
    assert cmd[cmd.index("-f") + 1] == "tcp" and cmd[cmd.index("--flow-timeout") + 1] == "30"
    assert spec.live and not MeterSpec(tmp_path / "m", "clean", file=tmp_path / "x.pcap").live


def test_config_composes_serve_and_alerts_with_overrides() -> None:
    cfg = load_config(["serve.batch.max_wait_ms=7", "serve.alerts.thresholds.default=0.9"])
    assert cfg["serve"]["batch"]["max_wait_ms"] == 7
    assert cfg["serve"]["alerts"]["thresholds"]["default"] == 0.9
    assert cfg["serve"]["model"]["uri"] == "models:/netsentry@champion"
    with pytest.raises(ConfigError, match="serve.batch.nope"):
        load_config(["serve.batch.nope=1"])


def test_flow_rate_window() -> None:
    clock = Clock()
    rate = FlowRate(window=10, clock=clock)
    rate.add(50)
    clock.now += 5
    rate.add(50)
    assert rate.rate() == 10
    clock.now += 6  # the first 50 left the window
    assert rate.rate() == 5


def verdict_frame(n: int) -> pd.DataFrame:
    data = {c: [f"{c}{i}" for i in range(n)] for c in VERDICT_COLUMNS}
    data["probability"] = np.linspace(0, 1, n)
    data["probability"][0] = np.nan
    return pd.DataFrame(data)


def test_verdict_log_rotates_and_keeps_every_row(tmp_path) -> None:
    log = VerdictLog(tmp_path / "v.csv", rotate_bytes=2000)
    for _ in range(10):
        log.write(verdict_frame(5))
    log.commit()
    files = log.files()
    assert len(files) > 2 and files[1].name == "v.csv.1"
    frames = [pd.read_csv(f) for f in files]
    assert all(tuple(f.columns) == VERDICT_COLUMNS for f in frames)
    assert sum(len(f) for f in frames) == log.rows == 50
    assert sum(f["probability"].isna().sum() for f in frames) == 10  # unjudged: empty probability


class Recorder:
    """A batch observer (the plug-in point of host-level detectors) that keeps what it is shown."""

    def __init__(self) -> None:
        self.seen: list[tuple[list[str], list[str]]] = []

    def observe(self, flows: pd.DataFrame, verdicts: pd.DataFrame) -> None:
        self.seen.append((list(flows["Flow ID"]), list(verdicts["Flow ID"])))


def test_observers_see_every_flow_once_with_its_verdict_in_order() -> None:
    from types import SimpleNamespace

    from serve.flowpath import FlowPath, ModelSlot

    def judge(model: SimpleNamespace, batch: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"Flow ID": batch["Flow ID"], "predicted": model.version})

    recorder = Recorder()
    path = FlowPath(ModelSlot(SimpleNamespace(version="7")), judge, Batcher(max_rows=4, max_wait=10.0),
                    observers=[recorder])
    summary = path.run([frame(3), frame(3, 3), frame(5, 6)])
    flows = [f for seen, _ in recorder.seen for f in seen]
    assert flows == [f"f{i}" for i in range(11)]  # each flow once, in stream order
    assert all(seen == judged for seen, judged in recorder.seen)  # verdict rows align with flows
    assert summary.flows == 11 and summary.by_group == {"7": 11}


def test_max_rows_caps_a_frame_larger_than_a_batch() -> None:
    clock = Clock()
    b = Batcher(max_rows=10, max_wait=0.05, clock=clock)
    b.add(frame(25))
    b.add(frame(3, 25))
    sizes, flows = [], []
    while (batch := b.take()) is not None:
        sizes.append(len(batch))
        flows += batch["Flow ID"].tolist()
    assert sizes == [10, 10, 8] and flows == [f"f{i}" for i in range(28)] and len(b) == 0
    b.add(frame(25))
    clock.now += 0.05
    assert len(b.take()) == 10 and b.due()  # the rest of a frame is as old as what was taken


def test_flow_path_never_classifies_more_than_max_rows_at_once() -> None:
    from types import SimpleNamespace

    from serve.flowpath import FlowPath, ModelSlot

    sizes: list[int] = []

    def judge(model: SimpleNamespace, batch: pd.DataFrame) -> pd.DataFrame:
        sizes.append(len(batch))
        return pd.DataFrame({"Flow ID": batch["Flow ID"], "predicted": model.version})

    path = FlowPath(ModelSlot(SimpleNamespace(version="7")), judge, Batcher(max_rows=4, max_wait=10.0))
    summary = path.run([frame(3), frame(11, 3), frame(2, 14)])
    assert max(sizes) <= 4 and sum(sizes) == summary.flows == 16
