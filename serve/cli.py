"""``netsentry classify`` and ``netsentry serve``: the sensor's command line.

``classify`` judges every flow of a capture (metered in the model's flow profile) or of a flow
CSV in the canonical schema, writes one verdict row per flow and prints a summary table.
``serve`` is the daemon: it meters an interface (or replays a capture with ``-r``) through the
same flow path, polls the model alias, serves Prometheus metrics, and on SIGTERM/SIGINT stops
the meter (which writes its open flows), judges those, closes the alert sinks and exits 0
(every signal: :mod:`serve.signals`).  Verdict files: ``classify`` replaces its ``-o`` file only
when the run completes, ``serve`` appends (:mod:`serve.verdict_log`).
User mistakes end in one line on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from serve.config import ConfigError, load_config, log_level, project_path
from serve.signals import HELP as SIGNALS_HELP

log = logging.getLogger("serve")

_OVERRIDES_HELP = (
    "config overrides in Hydra syntax (conf/sensor.yaml + conf/serve/), e.g. serve.batch.max_wait_ms=20 "
    "serve.meter.flow_timeout=30 serve.alerts.thresholds.default=0.8"
)


class UserError(Exception):
    """A mistake the user can fix, reported as one line."""


class _OverridesAnywhere(argparse.ArgumentParser):
    """Takes ``KEY=VALUE`` overrides after options too (``FILE -o OUT a=b``): plain argparse stops
    filling a ``nargs="*"`` positional once an option came between (CPython issue 15112)."""

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        ns, extras = super().parse_known_args(args, namespace)
        late = [a for a in extras if "=" in a and not a.startswith("-")]
        if late:
            ns.overrides = list(getattr(ns, "overrides", None) or []) + late
        return ns, [a for a in extras if a not in late]


def _add_common(p: argparse.ArgumentParser) -> None:
    p.__class__ = _OverridesAnywhere
    p.add_argument("--model", metavar="URI",
                   help="registered model, e.g. models:/netsentry@champion (default: serve.model.uri)")
    p.add_argument("--log-json", action="store_true", help="log one JSON object per line on stderr")
    p.add_argument("--record-flows", type=Path, metavar="DIR",
                   help="keep every judged flow with its verdict in DIR (Parquet, hourly partitions; "
                   "bounded by serve.record.max_mb, oldest dropped first): the site baseline for "
                   "`+experiment=site data.site_dir=DIR`")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=_OVERRIDES_HELP)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``classify`` and ``serve``."""
    fmt = argparse.RawDescriptionHelpFormatter
    c = sub.add_parser(
        "classify", formatter_class=fmt, help="classify every flow of a capture or flow CSV",
        description="Meter a capture (pcap/pcapng, in the model's flow profile) or read a flow CSV in the\n"
        "canonical schema, classify every flow with the registered model, write one verdict row per\n"
        "flow (-o) and print flows per predicted group, alerts, unjudged flows and the model used.\n"
        "The model comes from $MLFLOW_TRACKING_URI, else the project's store (sqlite:///<project>/mlflow.db).\n"
        "-o: written as VERDICTS.csv.partial, renamed over VERDICTS.csv when the run completes (an\n"
        "existing file is replaced then, and left as it was by a failed run); mode serve.verdicts.mode.\n"
        "Alerts (EVE) go beside it, to VERDICTS.eve.json (without -o: .netsentry/classify-eve.json),\n"
        "appended, unless serve.alerts.sinks.eve.path is set; never to the live sensor's EVE file.\n"
        + SIGNALS_HELP[False],
        epilog="example: netsentry classify capture.pcap -o verdicts.csv --model models:/netsentry@champion",
    )
    c.add_argument("input", type=Path, metavar="FILE", help="capture (.pcap/.pcapng) or flow CSV (.csv[.gz])")
    c.add_argument("-o", "--output", type=Path, metavar="VERDICTS.csv", help="write the verdicts here")
    c.add_argument("-v", "--verbose", action="store_true", help="log progress on stderr")
    _add_common(c)
    c.set_defaults(func=classify_command)

    s = sub.add_parser(
        "serve", formatter_class=fmt, help="run the sensor daemon on an interface",
        description="The sensor: runs the flow meter on an interface (needs root or CAP_NET_RAW) in the\n"
        "model's flow profile, classifies flows in micro-batches as they end, raises alerts, writes\n"
        "verdicts (-o), serves Prometheus metrics (serve.metrics.port=N), swaps to a new model version\n"
        "when the alias moves, restarts a meter that dies.\n"
        "The model comes from $MLFLOW_TRACKING_URI, else the project's store (sqlite:///<project>/mlflow.db);\n"
        "the last good one is cached, so the sensor starts when the server is unreachable.\n"
        "-o: appended to (a restarted sensor continues the file; created with serve.verdicts.mode);\n"
        "a full disk costs rows, counted and said, never the sensor.\n" + SIGNALS_HELP[True],
        epilog="example: netsentry serve -i eth0 -f 'tcp or udp' -o /var/log/netsentry/verdicts.csv "
        "serve.metrics.port=9108",
    )
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("-i", "--interface", metavar="IFACE", help="capture live on IFACE")
    src.add_argument("-r", "--read", type=Path, metavar="FILE",
                     help="replay a capture through the daemon path")
    s.add_argument("-f", "--filter", metavar="BPF", help="BPF filter, e.g. 'tcp or udp'")
    s.add_argument("-o", "--output", type=Path, metavar="VERDICTS.csv",
                   help="verdict CSV (default: serve.verdicts.path; rotation: serve.verdicts.rotate_mb)")
    _add_common(s)
    s.set_defaults(func=serve_command)


# -- building the parts --------------------------------------------------------------------------

def _config(args: argparse.Namespace) -> dict[str, Any]:
    cfg = load_config(args.overrides)
    if args.model:
        cfg["serve"]["model"]["uri"] = args.model
    return cfg


def _model_source(cfg: dict[str, Any]) -> Any:
    from serve.model_source import ModelSource

    m = cfg["serve"]["model"]
    cache = Path(m["cache_dir"]) if m.get("cache_dir") else None
    return ModelSource(m["uri"], tracking_uri=m.get("tracking_uri"), cache_dir=cache)


def _meter_binary(cfg: dict[str, Any]) -> Path:
    binary = project_path(cfg["serve"]["meter"].get("path"), "capture/flowmeter")
    if not binary.is_file():
        raise UserError(f"flow meter not built ({binary} missing): run `make meter`")
    return binary


def _meter(cfg: dict[str, Any], profile: str, file: Path | None = None, iface: str | None = None,
           bpf: str | None = None) -> Any:
    from serve.meter import Meter, MeterSpec

    mc = cfg["serve"]["meter"]
    spec = MeterSpec(binary=_meter_binary(cfg), profile=profile, file=file, iface=iface, bpf=bpf,
                     flow_timeout=float(mc["flow_timeout"]), activity_timeout=float(mc["activity_timeout"]),
                     stats_interval=float(mc["stats_interval"]), buffer_mib=int(mc["buffer_mib"]))
    first, longest = mc["restart_backoff"]
    return Meter(spec, read_block=int(mc["read_block"]), restart_backoff=(float(first), float(longest)),
                 max_restarts=int(mc["max_restarts"]))


def _verdict_mode(sc: dict[str, Any]) -> int:
    from serve.verdict_log import DEFAULT_MODE, parse_mode

    try:
        return parse_mode(sc["verdicts"].get("mode", DEFAULT_MODE))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _verdict_log(path: Path | None, sc: dict[str, Any], mode: int, daemon: bool) -> Any:
    """The verdict file, opened now (once everything else is ready): ``serve`` appends, ``classify``
    writes a partial file that replaces ``path`` at the end."""
    from serve.verdict_log import VerdictFileError, VerdictLog

    if path is None:
        return None
    try:
        return VerdictLog(path, rotate_bytes=int(float(sc["verdicts"]["rotate_mb"]) * 1e6), mode=mode,
                          policy="append" if daemon else "replace")
    except VerdictFileError as exc:
        raise UserError(str(exc)) from exc


#: Overrides that set where the EVE sink writes (a whole-mapping override counts too).
_EVE_PATH_KEYS = frozenset(("serve.alerts", "serve.alerts.sinks", "serve.alerts.sinks.eve",
                            "serve.alerts.sinks.eve.path"))


def _classify_eve_default(cfg: dict[str, Any], overrides: list[str], out: Path | None) -> None:
    """``classify`` never appends to the live sensor's EVE file: unless the user chose a path, its
    alerts go beside the verdict file (``v.csv`` -> ``v.eve.json``), else to its own file."""
    keys = {o.split("=", 1)[0].lstrip("+~") for o in overrides}
    if keys & _EVE_PATH_KEYS or any(k.startswith("serve/alerts") for k in keys):
        return
    eve = cfg["serve"]["alerts"].get("sinks", {}).get("eve")
    if not isinstance(eve, dict):
        return
    if out is None:
        eve["path"] = str(project_path(".netsentry/classify-eve.json", ""))
    else:
        stem = out.name.removesuffix(out.suffix) if out.suffix.lower() == ".csv" else out.name
        eve["path"] = str((out.parent / f"{stem}.eve.json").absolute())


def _csv_frames(path: Path, rows: int, stopped: threading.Event) -> Iterator[Any]:
    from flows.meter_csv import read_meter_csv

    flows = read_meter_csv(path)
    for start in range(0, len(flows), rows):
        if stopped.is_set():  # a signal: the rows already queued are judged, no more are read
            return
        yield flows.iloc[start : start + rows]


# -- output --------------------------------------------------------------------------------------

#: What the summary says of each sink counter that is not zero (sent and failed always).
_SINK_OUTCOMES = (("sent", "sent"), ("failed", "failed"), ("retried", "retried"),
                  ("summarized", "folded into summaries (rate limit)"),
                  ("dropped", "dropped (sink queue full: the sink could not keep up)"))


def _record_dir(args: argparse.Namespace, sc: dict[str, Any]) -> Path | None:
    """The --record-flows folder (else serve.record.dir), checked before any model work."""
    from serve.flow_recorder import RecorderError, prepare_folder

    folder = args.record_flows or (project_path(sc["record"]["dir"], "") if sc["record"]["dir"] else None)
    if folder is not None:
        try:
            prepare_folder(folder)
        except RecorderError as exc:
            raise UserError(str(exc)) from exc
    return folder


def _recorder(folder: Path | None, sc: dict[str, Any], profile: str) -> Any:
    from serve.flow_recorder import FlowRecorder

    if folder is None:
        return None
    rec = sc["record"]
    return FlowRecorder(folder, int(float(rec["max_mb"]) * 2**20), profile, int(rec["flush_rows"]))


def recording_text(recorder: Any) -> str:
    """``recorded  N flows in DIR ...``: what was kept, and every row that was not."""
    s = recorder.stats()
    text = f"recorded  {s['rows_written']} flows in {recorder.folder} "
    text += f"({s['files']} files, {s['bytes']} bytes)"
    if s["rows_dropped"]:
        text += f"; {s['rows_dropped']} older flows removed to stay under {recorder.max_bytes // 2**20} MB"
    if s["rows_unwritten"]:
        text += f"; {s['rows_unwritten']} flows NOT recorded (write errors)"
    return text


def sink_counts_text(counts: dict[str, int]) -> str:
    """``132102 sent, 0 failed, 960000 dropped (...)``: every alert a sink did not send is told."""
    return ", ".join(f"{counts.get(key, 0)} {text}" for key, text in _SINK_OUTCOMES
                     if key in ("sent", "failed") or counts.get(key, 0))

def print_summary(model: Any, summary: Any, source: str, meter_stats: dict[str, int] | None,
                  alert_stats: dict[str, dict[str, int]], verdict_log: Any, restarts: int = 0,
                  figures: str | None = None) -> None:
    """The table ``classify`` prints (and ``serve`` prints at exit)."""
    cached = " [loaded from cache: tracking server unreachable]" if model.from_cache else ""
    versions = " -> ".join(summary.versions) or model.version
    print(f"model     {model.name} version {versions} "
          f"(profile {model.profile}, runtime {model.runtime}){cached}")
    if figures:
        print(f"          test set: {figures}")
    line = f"input     {source}: {summary.flows} flows"
    if meter_stats is not None:
        line += (f" (meter: {meter_stats['packets']} packets, {meter_stats['flows_emitted']} flows emitted, "
                 f"{meter_stats['skipped_total']} skipped, {meter_stats['kernel_drops']} kernel drops, "
                 f"{meter_stats['flows_evicted']} evicted, {restarts} restarts)")
    print(line)
    print(f"{'group':<24}{'flows':>10}{'share':>9}")
    for group, n in sorted(summary.by_group.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"{group:<24}{n:>10}{n / max(summary.flows, 1):>9.1%}")
    print(f"unjudged  {summary.unjudged} (every feature the model reads missing or infinite)")
    sinks = "; ".join(f"{name}: {sink_counts_text(c)}" for name, c in sorted(alert_stats.items()))
    sinks = sinks or "no sink enabled"
    print(f"alerts    {summary.detections} flow detections; {sinks}")
    if verdict_log is not None:
        files = verdict_log.files()
        more = f" (+{len(files) - 1} rotated)" if len(files) > 1 else ""
        more += " (replaced the previous file)" if verdict_log.replaced else ""
        print(f"verdicts  {verdict_log.rows} rows in {files[0]}{more}")
        if verdict_log.unwritten:
            print(f"          {verdict_log.unwritten} rows NOT written "
                  f"({verdict_log.last_error or 'write errors'}: judged and alerted, not in the file)")


# -- the two commands ----------------------------------------------------------------------------

def _refreeze() -> None:
    """Collect, then freeze the heap out of the garbage collector's walks.

    What is loaded before the flow path runs (MLflow, pandas, scikit-learn, the model: millions of
    objects) stays for the whole run; a flood allocates objects per alert, and every full
    collection walked that heap again (classify on a 1.2M-flow flood: 18 s -> 12 s).  After a model
    swap the frozen heap is thawed and collected once, so the old model's cycles are freed."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _between_batches(plan: Any, verdict_log: Any, summary: Any, alerts: Any) -> None:
    """Act on what signals asked for (see :mod:`serve.signals`), on the flow path's thread."""
    stop, reopen, status = plan.pending()
    shown = max(logging.INFO, logging.getLogger().level)  # asked for: shown whatever the log level
    if stop is not None:
        log.info("%s: stopping the meter, judging its open flows", stop.name)
    if reopen:
        if verdict_log is None:
            log.info("SIGHUP: no verdict file to reopen")
        else:
            new = verdict_log.reopen()
            log.info("SIGHUP: %s %s", "started a new verdict file" if new else "still writing",
                     verdict_log.path)
    if status:
        rows = "no verdict file" if verdict_log is None else (
            f"{verdict_log.rows} verdict rows written, {verdict_log.unwritten} not written")
        sinks = "; ".join(f"{name}: {sink_counts_text(c)}" for name, c in sorted(alerts.stats().items()))
        log.log(shown, "status: %d flows judged (%s), %d detections, %s; %s", summary.flows,
                ", ".join(f"{g} {n}" for g, n in summary.by_group.most_common()) or "none",
                summary.detections, rows, sinks or "no sink enabled")


def _run(args: argparse.Namespace, daemon: bool) -> int:
    """Shared body of classify and serve; raises the user-facing errors the handlers turn into lines."""
    from flows.meter_csv import check_header, is_flow_csv, read_header
    from serve.logs import setup_logging
    from serve.verdict_log import VerdictFileError, check_writable_parent

    cfg = _config(args)
    quiet = not daemon and not getattr(args, "verbose", False)
    setup_logging(log_level(cfg, quiet), args.log_json or cfg["log"]["json"])
    sc = cfg["serve"]

    # the cheap checks first: a typo should not wait for MLflow and the model to load
    mode = _verdict_mode(sc)
    file: Path | None = args.input if not daemon else args.read
    if file is not None and (not file.exists() or file.is_dir()):  # a FIFO is fine: a live stream
        raise UserError(f"no such file: {file}")
    from_csv = file is not None and is_flow_csv(file)  # .csv or .csv.gz
    if from_csv:
        check_header(read_header(file))  # type: ignore[arg-type]
    else:
        _meter_binary(cfg)
    out = args.output
    if out is None and daemon and sc["verdicts"]["path"]:
        out = project_path(sc["verdicts"]["path"], "")
    if out is not None:
        try:
            check_writable_parent(out)
        except VerdictFileError as exc:
            raise UserError(str(exc)) from exc
    if not daemon:
        _classify_eve_default(cfg, args.overrides, out)
    record_dir = _record_dir(args, sc)

    from serve.alerts import AlertManager
    from serve.batcher import Batcher
    from serve.flowpath import FlowPath, ModelSlot
    from serve.metrics import SensorMetrics
    from serve.model_source import verdicts
    from serve.signals import SignalPlan

    source = _model_source(cfg)
    model = source.load()
    log.info("model %s version %s (profile %s, runtime %s)%s", model.name, model.version, model.profile,
             model.runtime, " from cache" if model.from_cache else "")

    meter = None
    stopped = threading.Event()  # a flow CSV stops being read when set
    stop: Callable[[], None] = stopped.set
    if from_csv:
        frames = _csv_frames(file, int(sc["batch"]["max_rows"]), stopped)  # type: ignore[arg-type]
    else:
        meter = _meter(cfg, model.profile, file=file, iface=getattr(args, "interface", None),
                       bpf=getattr(args, "filter", None))
        frames, stop = meter.frames(), meter.stop

    metrics = SensorMetrics() if daemon else None
    if metrics is not None:
        metrics.set_model(model.name, model.version, model.profile, model.runtime)
        if meter is not None:
            metrics.meter_stats, metrics.meter_restarts = meter.stats, lambda: meter.restarts
    def on_swap(new: Any) -> None:
        if metrics is not None:
            metrics.set_model(new.name, new.version, new.profile, new.runtime)
        _refreeze()  # the old model may sit in the frozen heap, out of the collector's reach

    slot = ModelSlot(model, source.poll if daemon else None, float(sc["model"]["poll_seconds"]), on_swap)
    alerts = AlertManager(sc["alerts"])
    if metrics is not None:
        metrics.alert_stats = alerts.stats
        port = int(sc["metrics"]["port"])
        if port:
            try:
                bound = metrics.serve(port, sc["metrics"]["address"])
            except OSError as exc:
                alerts.close()
                raise UserError(f"cannot serve metrics on port {port}: {exc.strerror}") from exc
            log.info("Prometheus metrics on http://%s:%d/metrics", sc["metrics"]["address"], bound)
    stops = [stop]  # a flow CSV: also stop judging the rows already read (see below)

    def halt() -> None:
        for each in stops:
            each()

    plan = SignalPlan(daemon, halt)
    plan.install()
    try:
        # opened last: a run that cannot start leaves an existing verdict file as it was
        verdict_log = _verdict_log(out, sc, mode, daemon)
    except UserError:
        plan.restore()
        alerts.close()
        if metrics is not None:
            metrics.close()
        raise
    if metrics is not None and verdict_log is not None:
        metrics.verdicts_unwritten = lambda: verdict_log.unwritten
    batcher = Batcher(int(sc["batch"]["max_rows"]), float(sc["batch"]["max_wait_ms"]) / 1e3,
                      when_idle=bool(sc["batch"]["when_idle"]))
    recorder = _recorder(record_dir, sc, model.profile)
    path = FlowPath(slot, verdicts, batcher, alerts, verdict_log, metrics,
                    observers=[recorder] if recorder is not None else [])
    if from_csv:
        stops.append(path.cancel)
    path.between_batches = lambda: _between_batches(plan, verdict_log, path.summary, alerts)
    _refreeze()
    slot.start()
    completed = False
    try:
        summary = path.run(frames)
        completed = True
    finally:
        plan.restore()
        slot.stop()
        alerts.close()
        if recorder is not None:
            recorder.close()
        if verdict_log is not None:
            if completed and not plan.interrupted:
                verdict_log.commit()
            else:  # an interrupted classify keeps what it judged, under the partial name
                verdict_log.abort(keep=completed)
        if metrics is not None:
            metrics.close()
    if plan.interrupted:
        kept = f"; their verdicts are in {verdict_log.partial_files()[0]}" if verdict_log is not None else ""
        print(f"netsentry classify: interrupted by {plan.stopped_by.name} after {summary.flows} flows "  # type: ignore[union-attr]
              f"({summary.detections} detections alerted){kept}", file=sys.stderr)
        return plan.exit_status()
    meter_stats = meter.stats() if meter is not None else None
    figures = None
    if not daemon and not slot.model.from_cache:
        from serve.model_figures import test_figures

        figures = test_figures(source.tracking_uri, slot.model.name, slot.model.version)
    print_summary(slot.model, summary, str(file or args.interface), meter_stats, alerts.stats(), verdict_log,
                  meter.restarts if meter is not None else 0, figures)
    if recorder is not None:
        print(recording_text(recorder))
    if meter is not None and meter.restarts == 0 and meter_stats["flows_emitted"] != summary.flows:
        log.error("the meter emitted %d flows but %d were judged",
                  meter_stats["flows_emitted"], summary.flows)
        return 1
    return 1 if verdict_log is not None and verdict_log.unwritten else 0


def _handle(args: argparse.Namespace, daemon: bool) -> int:
    """Run a command, turning every user-facing error into one line and exit status 1 (2: config)."""
    from flows.meter_csv import MeterCsvError
    from serve.alerts.settings import AlertConfigError
    from serve.meter import MeterError
    from serve.model_error import ModelError  # = serve.model_source.ModelError, without loading skops

    name = "serve" if daemon else "classify"
    try:
        return _run(args, daemon)
    except (ConfigError, AlertConfigError) as exc:
        print(f"netsentry {name}: {exc}", file=sys.stderr)
        return 2
    except (UserError, ModelError, MeterError, MeterCsvError) as exc:
        print(f"netsentry {name}: {exc}", file=sys.stderr)
        return 1


def classify_command(args: argparse.Namespace) -> int:
    """``netsentry classify``."""
    return _handle(args, daemon=False)


def serve_command(args: argparse.Namespace) -> int:
    """``netsentry serve``."""
    return _handle(args, daemon=True)

