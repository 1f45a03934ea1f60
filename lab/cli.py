"""Subcommands of the lab (placeholder until the lab lands)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the lab subcommands."""
