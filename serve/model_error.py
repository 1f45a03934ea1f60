"""The one exception the model side of the sensor raises for a model it cannot use."""

from __future__ import annotations


class ModelError(Exception):
    """One-line, user-facing reason a model cannot be used (missing, untrusted, wrong columns...)."""
