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

    with TestClient(create_app(service), base_url="http://127.0.0.1:8000") as c:
        yield c


@pytest.fixture()
def live_server(service):
    """The application under a real uvicorn server on 127.0.0.1 (a free port, in a background thread): its URL."""
    yield from run_server(service)


@pytest.fixture(scope="session")
def server_runner():
    """`run_server(service, token)` below: a generator yielding a live server's URL (advance it to stop)."""
    return run_server


def run_server(service, token: str | None = None):
    """Start uvicorn over `service` in a thread, yield its base URL, stop it."""
    import socket
    import threading
    import time

    import uvicorn

    from mcja.serve.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(service, token), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
