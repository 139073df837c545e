"""Fixtures for the index tests: a second tiny checkpoint and a labelled archive folder (the tiny model, its
checkpoint and the archive writer are shared: tests/conftest.py, tests/helpers/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.index import write_archive
from helpers.inference import save_checkpoint, tiny_model


@pytest.fixture(scope="session")
def other_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another tiny model (other weights, same architecture and size)."""
    return save_checkpoint(tiny_model(seed=1), tmp_path_factory.mktemp("ckpt2") / "other.pt")


@pytest.fixture()
def archive(tmp_path: Path) -> Path:
    """A fresh labelled archive of 12 images (3 ids x 2 images x 2 modalities)."""
    write_archive(tmp_path / "archive")
    return tmp_path / "archive"
