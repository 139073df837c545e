"""`mcja serve`: one SearchService over an index, run under uvicorn until stopped."""

from __future__ import annotations

import os
from typing import Any, Callable

from mcja.errors import ConfigError


def run_server(index: str | os.PathLike, host: str = "127.0.0.1", port: int = 8000, device: str = "auto",
               token_file: str | os.PathLike | None = None, checkpoint: str | os.PathLike | None = None,
               max_upload_mb: float = 10.0, max_pixels: int = 25_000_000, batch_window_ms: float = 5.0,
               max_batch: int = 32, on_ready: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Check the settings, load the index and model, call `on_ready` with what is served, serve until stopped."""
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
    service = SearchService(index, checkpoint, device, batch_window_ms / 1000, max_batch, limits)
    if on_ready:
        on_ready({"images": service.count(), "device": service.extractor.runtime.device,
                  "url": f"http://{_url_host(host)}:{port}/", "token": bool(token)})
    try:
        uvicorn.run(create_app(service, token), host=host, port=port, log_level="warning")
    finally:
        service.close()


def _url_host(host: str) -> str:
    """An IPv6 address in brackets, as URLs write it."""
    return f"[{host}]" if ":" in host else host
