"""Subcommands of the sensor (placeholder until serve lands)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the sensor's subcommands."""
