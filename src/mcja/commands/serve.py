"""`mcja serve INDEX`: the HTTP search service and operator web page over a gallery index (extra `serve`)."""

from __future__ import annotations

import argparse

from mcja.commands.common import add_verb

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
    p.add_argument("--port", type=int, default=8000, help="port, 0..65535 (default 8000; 0: a free one)")
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
    from mcja import api

    api.serve(args.index, host=args.host, port=args.port, device=args.device, token_file=args.token_file,
              checkpoint=args.checkpoint, max_upload_mb=args.max_upload_mb, max_pixels=args.max_pixels,
              batch_window_ms=args.batch_window_ms, max_batch=args.max_batch, on_ready=_announce)
    return 0


def _announce(s: dict) -> None:
    """The one line saying what is served where: once the port is bound and the model loaded."""
    print(f"mcja serve: {s['images']} images, model on {s['device']}; {s['url']} (API docs at /docs)"
          + (", token required" if s["token"] else ""))
