"""Fixtures for the service tests: the index tests' tiny checkpoint and labelled archive (loaded from
tests/index/conftest.py, not copied), a fresh index of it per test, the service and an HTTP client."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the 'serve' extra (fastapi) is not installed")

_spec = importlib.util.spec_from_file_location("_index_fixtures", Path(__file__).parents[1] / "index" / "conftest.py")
_index = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_index)
model, checkpoint = _index.model, _index.checkpoint
write_archive, pattern_image = _index.write_archive, _index._inference.pattern_image


@pytest.fixture(scope="session")
def pattern():
    """`pattern_image(pid, variant)` of the inference tests: uint8 [64, 32, 3] colour bands of a person id."""
    return pattern_image


@pytest.fixture()
def index_dir(tmp_path: Path, checkpoint: Path) -> Path:
    """A fresh index of a labelled archive (4 ids x 2 images x 2 modalities) in tmp_path/archive.idx."""
    from mcja.index import build_index

    write_archive(tmp_path / "archive", ids=(1, 2, 3, 4))
    build_index(tmp_path / "archive.idx", checkpoint, images=str(tmp_path / "archive"), progress=False)
    return tmp_path / "archive.idx"


@pytest.fixture()
def service(index_dir: Path):
    """The service over that index (CPU), closed after the test."""
    from mcja.serve.service import SearchService

    svc = SearchService(index_dir, device="cpu")
    yield svc
    svc.close()


@pytest.fixture()
def client(service):
    """An HTTP client of the application without a token (one event loop for the whole test)."""
    from fastapi.testclient import TestClient

    from mcja.serve.app import create_app

    with TestClient(create_app(service)) as c:
        yield c
