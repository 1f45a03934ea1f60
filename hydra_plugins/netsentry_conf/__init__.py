"""Hydra imports every module under ``hydra_plugins/`` when it looks for plugins, and DVC runs that
discovery with the project root on ``sys.path`` before ``dvc exp run`` composes ``conf/``.  Importing
this package registers the resolver behind ``conf_fingerprint`` in ``conf/config.yaml``, so the config
DVC composes is validated against :mod:`pipeline.config` too (not only ``python -m pipeline.params``).

``pipeline`` is imported only when the resolver runs (composing the pipeline's config): another
part of the project composing its own Hydra config (the sensor) never imports it.
"""

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

# the conf/ folder of the project copy this file is in (a queued DVC experiment runs in a copy)
CONF_DIR = Path(__file__).resolve().parent.parent.parent / "conf"


def _validate_and_fingerprint(_root_: DictConfig) -> str:
    from pipeline.config import validate_and_fingerprint

    return validate_and_fingerprint(_root_, CONF_DIR)


OmegaConf.register_new_resolver("netsentry_conf_fingerprint", _validate_and_fingerprint, replace=True)
