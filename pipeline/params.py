"""Compose the Hydra config in ``conf/`` into ``params.yaml`` (what every DVC stage reads).

The composed config is validated (types, ranges, choices, unknown keys: pipeline/config.py);
a bad override or value stops with one line and exit status 2.  ``dvc repro`` does not compose
Hydra configs itself (only ``dvc exp run`` does), so ``make repro`` runs this first, and the
``config`` stage of ``dvc.yaml`` runs ``--check``: it stops ``dvc repro`` with one line when
``params.yaml`` was composed from an older ``conf/``.

Usage: ``python -m pipeline.params [override ...]``, e.g.
``python -m pipeline.params split=conversation model.max_depth=12``;
``python -m pipeline.params --check [FILE]`` (is params.yaml valid and composed from the current
conf/?  If so, write that to FILE, the ``config`` stage's output).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException, MissingConfigException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pipeline.config import FINGERPRINT_KEY, ConfigError, conf_fingerprint, register_resolvers, validate

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = PROJECT_ROOT / "conf"
PARAMS_FILE = PROJECT_ROOT / "params.yaml"
#: exit status of a configuration mistake (as argparse uses for a bad command line)
USAGE_ERROR = 2


def one_line(err: Exception) -> str:
    """Hydra's / OmegaConf's multi-line composition error as one line a user can act on."""
    text = str(err)
    wrapped = re.search(r"ConfigError raised while resolving interpolation: (.*)", text)
    if wrapped:  # our schema check, run by the conf_fingerprint resolver
        return wrapped.group(1).strip()
    if isinstance(err, MissingConfigException):
        missing = re.search(r"Could not find '([^']+)'", text)
        options = re.search(r"Available options in '([^']+)':\n((?:\t.*\n?)*)", text)
        what = missing.group(1) if missing else "a config"
        if options:
            names = ", ".join(o.strip() for o in options.group(2).splitlines() if o.strip())
            return f"no config option {what!r}; the options of {options.group(1)!r} are: {names}"
        return f"no config option {what!r}"
    lines = [ln.strip().rstrip(".") for ln in text.splitlines() if ln.strip()]
    cause = err.__cause__
    if cause is not None and str(cause).strip():
        lines.insert(1, str(cause).strip().splitlines()[0].rstrip("."))
    return "; ".join(lines[:3])


def compose_params(overrides: list[str] | None = None, conf_dir: Path = CONF_DIR) -> dict:
    """Compose ``conf/config.yaml`` with Hydra overrides into a validated plain dict.

    Raises :class:`ConfigError` (one line) for an unknown key or option, a bad override or a
    value the schema refuses.
    """
    register_resolvers(conf_dir)
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base=None):
            cfg = compose(config_name="config", overrides=list(overrides or []))
        params = OmegaConf.to_container(cfg, resolve=True)
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(one_line(err)) from None
    return validate(params)  # type: ignore[arg-type]


def load_params(path: Path = PARAMS_FILE) -> dict:
    """Read and validate the composed ``params.yaml``; one line and exit 2 if missing or invalid."""
    if not path.exists():
        raise SystemExit(f"{path} is missing: run `make params` (or `python -m pipeline.params`) first")
    with path.open() as fh:
        params = yaml.safe_load(fh)
    try:
        return validate(params)
    except ConfigError as err:
        print(f"{path.name}: {err}", file=sys.stderr)
        raise SystemExit(USAGE_ERROR) from None


def write_params(params: dict, path: Path = PARAMS_FILE) -> bool:
    """Write ``params`` as YAML; leave the file untouched (mtime too) when nothing changed."""
    text = yaml.safe_dump(params, sort_keys=False)
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    return True


def stale_reason(params: dict, conf_dir: Path = CONF_DIR) -> str | None:
    """Why ``params`` (a read params.yaml) is not composed from the current ``conf_dir``, or None."""
    recorded, current = params.get(FINGERPRINT_KEY), conf_fingerprint(conf_dir)
    if recorded == current:
        return None
    return (
        f"params.yaml was composed from another conf/ (fingerprint {recorded}, conf/ now {current}): "
        "run `make params` (or `python -m pipeline.params [override ...]`) and then `dvc repro`, "
        "or use `dvc exp run`, which composes conf/ itself"
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point: compose and write params.yaml (or ``--check`` it); returns the exit status."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if args[:1] == ["--check"] and len(args) <= 2:
        reason = stale_reason(load_params())
        if reason:
            print(f"config: {reason}", file=sys.stderr)
            return USAGE_ERROR
        message = "params.yaml is valid and composed from the current conf/"
        print(f"config: {message}")
        if len(args) == 2:  # constant content: a re-check changes nothing downstream
            out = Path(args[1])
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(message + "\n")
        return 0
    try:
        params = compose_params(args)
    except ConfigError as err:
        print(f"params: {err}", file=sys.stderr)
        return USAGE_ERROR
    changed = write_params(params)
    print(f"params.yaml {'updated' if changed else 'unchanged'} from conf/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
