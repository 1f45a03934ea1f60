"""Hydra imports every module under ``hydra_plugins/`` when it looks for plugins, and DVC runs that
discovery with the project root on ``sys.path`` before ``dvc exp run`` composes ``conf/``.  Importing
this package registers the resolver behind ``conf_fingerprint`` in ``conf/config.yaml``, so the config
DVC composes is validated against :mod:`pipeline.config` too (not only ``python -m pipeline.params``).
"""

from pathlib import Path

from pipeline.config import register_resolvers

# the conf/ folder of the project copy this file is in (a queued DVC experiment runs in a copy)
register_resolvers(Path(__file__).resolve().parent.parent.parent / "conf")
