"""Fixtures for the service tests: a fresh index of a labelled archive per test (the shared tiny checkpoint:
tests/conftest.py), the service over it, an HTTP client and a live server."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.index import write_archive
from helpers.serve import run_server

pytest.importorskip("fastapi", reason="the 'serve' extra (fastapi) is not installed")


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

    with TestClient(create_app(service), base_url="http://127.0.0.1:8000") as c:
        yield c


@pytest.fixture()
def live_server(service):
    """The application under a real uvicorn server on 127.0.0.1 (a free port, in a background thread): its URL."""
    yield from run_server(service)
