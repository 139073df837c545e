"""A live uvicorn server over a search service, for the serve tests (needs the 'serve' extra)."""

from __future__ import annotations


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
