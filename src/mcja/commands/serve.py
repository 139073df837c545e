"""`mcja serve INDEX`: the HTTP search service and operator web page over a gallery index (extra `serve`)."""

from __future__ import annotations

import argparse

from mcja.commands.common import add_verb
from mcja.errors import ConfigError

EXAMPLES = """
  mcja serve archive.idx                                   # http://127.0.0.1:8000/ (page), /docs (API)
  mcja serve archive.idx --port 8080 --device cpu
  mcja serve archive.idx --host 0.0.0.0 --token-file token.txt    # beyond localhost: a bearer token is required
  curl -F images=@q.jpg -F top_k=5 -F modality=visible http://127.0.0.1:8000/search
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add `serve` to the `mcja` parser."""
    p = add_verb(sub, "serve", "Serve a gallery index over HTTP: search API, gallery updates, metrics, web page.",
                 EXAMPLES)
    p.add_argument("index", help="the index folder (from `mcja index build`)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:N")
    p.add_argument("--token-file", default=None, help="file holding a bearer token; required with a non-local --host")
    p.add_argument("--checkpoint", default=None, help="the index's checkpoint if it moved (checked by sha256)")
    p.add_argument("--max-upload-mb", type=float, default=10.0, help="largest request body in MB (default 10)")
    p.add_argument("--max-pixels", type=int, default=25_000_000, help="largest image in pixels (default 25M)")
    p.add_argument("--batch-window-ms", type=float, default=5.0,
                   help="how long the first waiting query waits for others to share its forward (default 5)")
    p.add_argument("--max-batch", type=int, default=32, help="most images per model forward (default 32; 1 turns batching off)")
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from mcja.serve.app import create_app
    except ImportError as err:
        raise ConfigError(f"mcja serve needs the 'serve' extra ({err.name} is missing): "
                          "pip install 'mcja[serve]'") from None
    from mcja.serve.security import UploadLimits, check_host, read_token
    from mcja.serve.service import SearchService

    token = read_token(args.token_file)
    check_host(args.host, token)
    if args.max_upload_mb <= 0 or args.max_pixels <= 0 or args.max_batch < 1 or args.batch_window_ms < 0:
        raise ConfigError("--max-upload-mb, --max-pixels and --max-batch must be positive, --batch-window-ms >= 0")
    limits = UploadLimits(max_bytes=int(args.max_upload_mb * 1024 * 1024), max_pixels=args.max_pixels)
    service = SearchService(args.index, args.checkpoint, args.device, args.batch_window_ms / 1000, args.max_batch,
                            limits)
    print(f"mcja serve: {service.count()} images, model on {service.extractor.runtime.device}; "
          f"http://{_url_host(args.host)}:{args.port}/ (API docs at /docs)" + (", token required" if token else ""))
    try:
        uvicorn.run(create_app(service, token), host=args.host, port=args.port, log_level="warning")
    finally:
        service.close()
    return 0


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
