"""Verbs of the 'demo' group (filled in by the issue that owns them)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's verbs to the `mcja` parser."""
