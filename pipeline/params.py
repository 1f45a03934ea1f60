"""Compose the Hydra config in ``conf/`` into ``params.yaml`` (what every DVC stage reads).

``dvc repro`` does not compose Hydra configs itself (only ``dvc exp run`` does), so the main
job runs this first.  Usage: ``python -m pipeline.params [override ...]``, e.g.
``python -m pipeline.params split=conversation model.max_depth=12``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = PROJECT_ROOT / "conf"
PARAMS_FILE = PROJECT_ROOT / "params.yaml"


def compose_params(overrides: list[str] | None = None) -> dict:
    """Compose ``conf/config.yaml`` with Hydra overrides into a plain dict."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose(config_name="config", overrides=list(overrides or []))
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def load_params(path: Path = PARAMS_FILE) -> dict:
    """Read the composed ``params.yaml``; a clear error if it has not been composed yet."""
    if not path.exists():
        raise SystemExit(f"{path} is missing: run `make params` (or `python -m pipeline.params`) first")
    with path.open() as fh:
        return yaml.safe_load(fh)


def write_params(params: dict, path: Path = PARAMS_FILE) -> bool:
    """Write ``params`` as YAML; leave the file untouched (mtime too) when nothing changed."""
    text = yaml.safe_dump(params, sort_keys=False)
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    return True


def main(argv: list[str] | None = None) -> None:
    """Entry point: compose and write params.yaml, say whether it changed."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        print(__doc__)
        return
    changed = write_params(compose_params(args))
    print(f"params.yaml {'updated' if changed else 'unchanged'} from conf/")


if __name__ == "__main__":
    main()
