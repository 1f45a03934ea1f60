"""Load a skops file with the sensor's own allow-list of trusted types.

MLflow's own loader trusts whatever list the model's ``MLmodel`` file carries (advisory
GHSA-w582-9x45-8mpx): whoever can write a model version chooses what gets instantiated.  The
sensor instead checks the file against :data:`TRUSTED_TYPES`, a constant of this package, and
refuses anything else before a single object is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import skops.io as sio

from serve.model_error import ModelError

#: Types beyond skops' defaults (scikit-learn estimators, builtins) that a netsentry model may hold:
#: the dtype of the imputer's statistics, the ±inf -> NaN and float32-clip functions of the
#: preprocessing, the trees.
TRUSTED_TYPES: Final[tuple[str, ...]] = (
    "numpy.clip",
    "numpy.dtype",
    "numpy.nan_to_num",
    "sklearn.tree._tree.Tree",
)


def untrusted_types(path: Path) -> list[str]:
    """Types in the skops file at ``path`` that are neither skops defaults nor :data:`TRUSTED_TYPES`."""
    try:
        found = sio.get_untrusted_types(file=path)
    except Exception as exc:  # a corrupt or foreign file: skops raises zipfile/json/key errors
        raise ModelError(f"{path.name} is not a readable skops file ({type(exc).__name__})") from exc
    return sorted(set(found) - set(TRUSTED_TYPES))


def load_trusted(path: Path) -> Any:
    """Load the skops file at ``path``; :class:`ModelError` if it holds a type the sensor does not trust."""
    extra = untrusted_types(path)
    if extra:
        raise ModelError(f"the model holds types outside the sensor's trust list: {', '.join(extra)}")
    try:
        return sio.load(path, trusted=list(TRUSTED_TYPES))
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"cannot load {path.name}: {first}") from exc
