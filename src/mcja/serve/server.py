"""`mcja serve`: one SearchService over an index, run under uvicorn until stopped."""

from __future__ import annotations

import os
import socket
from typing import Any, Callable

from mcja.errors import ConfigError


def run_server(index: str | os.PathLike, host: str = "127.0.0.1", port: int = 8000, device: str = "auto",
               token_file: str | os.PathLike | None = None, checkpoint: str | os.PathLike | None = None,
               max_upload_mb: float = 10.0, max_pixels: int = 25_000_000, batch_window_ms: float = 5.0,
               max_batch: int = 32, on_ready: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Check the settings, bind the port, load the index and model, call `on_ready` with what is served (the URL of
    the bound socket), serve until stopped."""
    try:
        import uvicorn

        from mcja.serve.app import create_app
    except ImportError as err:
        raise ConfigError(f"mcja serve needs the 'serve' extra ({err.name} is missing): "
                          "pip install 'mcja[serve]'") from None
    from mcja.serve.security import UploadLimits, check_host, read_token
    from mcja.serve.service import SearchService

    token = read_token(token_file)
    check_host(host, token)
    if max_upload_mb <= 0 or max_pixels <= 0 or max_batch < 1 or batch_window_ms < 0:
        raise ConfigError("--max-upload-mb, --max-pixels and --max-batch must be positive, --batch-window-ms >= 0")
    limits = UploadLimits(max_bytes=int(max_upload_mb * 1024 * 1024), max_pixels=max_pixels)
    with bind_port(host, port) as sock:  # a port in use fails here, before the model loads
        service = SearchService(index, checkpoint, device, batch_window_ms / 1000, max_batch, limits)
        try:
            if on_ready:
                on_ready({"images": service.count(), "device": service.extractor.runtime.device,
                          "url": f"http://{_url_host(host)}:{sock.getsockname()[1]}/", "token": bool(token)})
            server = uvicorn.Server(uvicorn.Config(create_app(service, token), host=host, port=port, log_level="warning"))
            server.run([sock])
        finally:
            service.close()


def bind_port(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port), for uvicorn to listen on; ConfigError naming the port when it cannot be
    (out of range, in use, not allowed, unknown host). Port 0 takes a free one."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port}: expected 0..65535")
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as err:
        raise ConfigError(f"--host {host}: not an address of this machine ({err.strerror})") from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: a restart need not wait TIME_WAIT
    try:
        sock.bind(address)
        sock.listen(2048)  # uvicorn's backlog: connections made once the URL is printed wait for the server
    except OSError as err:
        sock.close()
        raise ConfigError(f"--port {port}: cannot listen on {host}:{port} ({err.strerror or err}); "
                          "pick another --port") from None
    return sock


def _url_host(host: str) -> str:
    """An IPv6 address in brackets, as URLs write it."""
    return f"[{host}]" if ":" in host else host
