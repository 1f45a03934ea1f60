"""``netsentry lab up|down|run|eval|dataset``: the attack lab's subcommands.

``up``/``down`` build and remove the testbed (``down`` is idempotent and also cleans up after a crash);
``run`` runs the scenarios with benign traffic, captures on the victim and labels the flows;
``dataset`` turns runs into the embedded dataset under ``data/lab/``; ``eval`` replays recorded lab
captures through ``netsentry classify`` and reports per-scenario detection and benign false positives.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

from lab import netns, workdir
from lab.netns import Interrupted, LabError, LabUsageError

DEFAULT_RUNS = Path("data") / "lab-runs"


def _up(args: argparse.Namespace) -> int:
    from lab import services

    netns.require_root()
    # checked before anything is built: a refused folder or account leaves the machine as it was
    work = workdir.private_dir(Path(args.work) if args.work else None)
    services.check_account()
    netns.up()
    victim = services.start(work)
    print(f"lab up: {len(netns.HOSTS)} hosts on {netns.SUBNET}.0/24, victim services {victim.pids}")
    print(
        f"lab up: work folder {work}; login {services.LAB_USER}, password last in {work}/words/passwords.txt"
    )
    return 0


def _down(args: argparse.Namespace) -> int:
    from lab import services

    netns.require_root()
    deleted = services.teardown()
    left = netns.our_namespaces()
    if left:
        print(f"lab down: namespaces still present: {left}", file=sys.stderr)
        return 1
    print(f"lab down: removed {len(deleted)} namespaces" if deleted else "lab down: nothing to remove")
    return 0


def _run(args: argparse.Namespace) -> int:
    from lab import labels, runner, scenarios

    catalogue = scenarios.load()
    chosen = catalogue.select(args.scenario, args.set)
    if args.set and not args.scenario:
        chosen += [s for s in catalogue.scenarios.values() if s.background and s not in chosen]
    out = Path(args.out or DEFAULT_RUNS / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    out = workdir.private_dir(out, mode=workdir.RUN_MODE)  # refused before the testbed is built
    manifest = runner.run_session(
        catalogue,
        chosen,
        out,
        args.max_time,
        args.warmup,
        args.cooldown,
        seed=args.seed,
        log=functools.partial(print, flush=True),
    )
    for profile in args.profile:
        flows, report = labels.label_capture(out / "capture.pcap", manifest, profile, out)
        with workdir.open_new(out / f"labelled-{profile}.csv.gz", text=False, mode=0o644) as f:
            flows.to_csv(f, index=False, compression="gzip")
        workdir.write(out / f"labels-{profile}.json", json.dumps(report, indent=2) + "\n", 0o644)
        print(
            f"lab run: {profile}: {report['labelled']:,} labelled flows ({report['dropped']} dropped): "
            + ", ".join(f"{k} {v:,}" for k, v in report["by_label"].items())
        )
    return 0


def _dataset(args: argparse.Namespace) -> int:
    from lab import dataset

    dataset.build([Path(r) for r in args.runs], Path(args.out), [Path(r) for r in args.eval], args.demo_from)
    return 0


def _eval(args: argparse.Namespace) -> int:
    from lab import evaluate

    return evaluate.main(args)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the lab subcommands."""
    lab = sub.add_parser(
        "lab",
        help="the attack lab: testbed, scenarios, labelled captures, live evaluation",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmds = lab.add_subparsers(dest="lab_command", metavar="ACTION")
    lab.set_defaults(func=lambda a: (lab.print_help(), 2)[1])

    up = cmds.add_parser("up", help="build the testbed and start the victim's services (needs root)")
    up.add_argument(
        "--work",
        help="private folder for configs, keys, logs (default: a new one in $TMPDIR); one owned by another "
        "user or writable by group/others is refused",
    )
    up.set_defaults(func=_guard(_up))

    down = cmds.add_parser("down", help="remove the testbed and every process in it (idempotent; needs root)")
    down.set_defaults(func=_guard(_down))

    run = cmds.add_parser("run", help="run scenarios with benign traffic, capture and label (needs root)")
    run.add_argument("--scenario", action="append", help="run only this scenario (repeatable)")
    run.add_argument("--set", help="a named scenario set from lab/scenarios.yaml (e.g. short)")
    run.add_argument("--out", help=f"run folder (default {DEFAULT_RUNS}/<UTC time>)")
    run.add_argument("--max-time", type=float, help="cap every scenario's duration (s)")
    run.add_argument("--warmup", type=float, help="benign-only seconds before the first attack")
    run.add_argument("--cooldown", type=float, help="benign-only seconds after the last attack")
    run.add_argument("--seed", type=int, default=1, help="seed of the benign users' random choices")
    run.add_argument(
        "--profile",
        action="append",
        choices=["clean", "engelen", "cic2017"],
        help="meter profile(s) to label in (default clean and engelen)",
    )
    run.set_defaults(func=_guard(_run), profile=None)

    ds = cmds.add_parser(
        "dataset", help="build data/lab/ (flows per profile, captures, README facts) from runs"
    )
    ds.add_argument("runs", nargs="+", help="run folders written by `lab run`")
    ds.add_argument("--out", default="data/lab", help="dataset folder (default data/lab)")
    ds.add_argument(
        "--eval", action="append", default=[], help="a held-out run kept as capture for `lab eval`"
    )
    ds.add_argument("--demo-from", help="run folder whose capture the small demo.pcap is cut from")
    ds.set_defaults(func=_guard(_dataset))

    ev = cmds.add_parser("eval", help="replay the recorded lab captures through `netsentry classify`")
    ev.add_argument("--model", required=True, help="model URI, e.g. models:/netsentry@champion")
    ev.add_argument("--data", default="data/lab", help="the lab dataset folder (default data/lab)")
    ev.add_argument("--out", default="metrics/lab_eval.json", help="JSON report (table and plot beside it)")
    ev.add_argument("--plot", default="plots/lab_eval.png", help="per-scenario detection plot")
    ev.add_argument("--no-mlflow", action="store_true", help="do not log the figures to MLflow")
    ev.set_defaults(func=_guard(_eval))


def _guard(handler):
    """Turn lab errors into one line on stderr (never a traceback): status 2 for a refused request,
    128 + signal for an interrupted run, 1 for any other failure."""

    def run(args: argparse.Namespace) -> int:
        if getattr(args, "profile", "x") is None:
            args.profile = ["clean", "engelen"]
        try:
            return handler(args)
        except Interrupted as err:
            print(f"netsentry lab: {err}", file=sys.stderr)
            return err.code
        except (LabError, OSError, ValueError, RuntimeError) as err:
            print(f"netsentry lab: {err}", file=sys.stderr)
            return 2 if isinstance(err, LabUsageError) else 1

    return run
