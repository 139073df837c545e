"""The HTTP routes (FastAPI): search, gallery add / delete / thumbnail / listing, health, metrics and the page.

Every route but the page, its two static files and the OpenAPI docs needs the bearer token when one is set; the
page's thumbnails (plain <img> requests) may carry it as a SameSite=Strict cookie instead. Requests that change
the index refuse a foreign Origin, so another web site open in the operator's browser cannot post to the service.
"""

from __future__ import annotations

import json
import logging
import time
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from fastapi.responses import JSONResponse as BaseJSONResponse

from mcja import __version__
from mcja.errors import MCJAError
from mcja.inference.sources import pid_from_path
from mcja.serve.security import LOCAL_HOSTS, BodyLimit, RequestError, decode_upload, token_matches
from mcja.serve.service import SearchService

STATIC = {"app.js": "text/javascript", "style.css": "text/css"}
DOCS_ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}
OPEN_PATHS = ({"/", "/docs", "/openapi.json", "/favicon.ico"} | {f"/static/{name}" for name in STATIC}
              | {f"/docs-assets/{name}" for name in DOCS_ASSETS})
TOKEN_COOKIE = "mcja_token"
log = logging.getLogger("mcja.serve")


class JSONResponse(BaseJSONResponse):
    """JSON as `mcja index search` writes results.json: non-ASCII characters escaped, so a file name that is not
    UTF-8 travels as its surrogate escapes (`\\udcXX`, see docs/index-format.md) instead of failing to encode."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, allow_nan=False, separators=(",", ":")).encode("ascii")


def create_app(service: SearchService, token: str | None = None) -> FastAPI:
    """The application over `service`; with `token`, requests must carry `Authorization: Bearer <token>`."""
    app = FastAPI(title="mcja serve", version=__version__, redoc_url=None, docs_url=None,
                  default_response_class=JSONResponse,
                  description="Visible-infrared person re-identification search over a gallery index.")
    app.state.service = service
    _docs_route(app)
    _guard(app, service, token)
    _errors(app)
    _search_routes(app, service)
    _gallery_routes(app, service)
    _info_routes(app, service)
    app.add_middleware(BodyLimit, max_bytes=service.limits.max_bytes)
    return app


def _docs_route(app: FastAPI) -> None:
    """/docs (Swagger UI) from the assets of the swagger-ui-bundle package (serve extra), so the docs work on a
    machine without internet; FastAPI's default (assets from a CDN) where that package is missing."""
    from fastapi.openapi.docs import get_swagger_ui_html

    try:
        import swagger_ui_bundle
    except ImportError:
        swagger_ui_bundle = None
    local = swagger_ui_bundle is not None
    urls = {"swagger_js_url": "/docs-assets/swagger-ui-bundle.js", "swagger_css_url": "/docs-assets/swagger-ui.css",
            "swagger_favicon_url": "/favicon.ico"} if local else {}

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="mcja serve: API", **urls)

    if local:
        folder = Path(swagger_ui_bundle.swagger_ui_path)

        @app.get("/docs-assets/{name}", include_in_schema=False)
        def docs_asset(name: str) -> Response:
            if name not in DOCS_ASSETS:  # a fixed list: nothing else of that folder is served
                return JSONResponse({"detail": "not found"}, 404)
            return Response((folder / name).read_bytes(), media_type=DOCS_ASSETS[name],
                            headers={"Cache-Control": "max-age=86400"})


def _guard(app: FastAPI, service: SearchService, token: str | None) -> None:
    """Token, Origin check and per-request metrics around every route."""
    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        start = time.perf_counter()
        response = _refusal(request, token) or await call_next(request)
        route = request.scope.get("route")
        service.metrics.request(request.method, getattr(route, "path", "other"), response.status_code,
                                time.perf_counter() - start)
        return response


def _refusal(request: Request, token: str | None) -> Response | None:
    """A 401/403 response for a request that may not pass, else None."""
    if token is None and _host_name(request.headers.get("host", "")) not in LOCAL_HOSTS:
        # without a token the service is for this machine only: a foreign Host header means a DNS-rebinding page
        return JSONResponse({"detail": "without --token-file this service answers requests to localhost only"}, 403)
    if request.method in ("POST", "DELETE", "PUT", "PATCH"):
        origin = request.headers.get("origin")
        if origin and urlsplit(origin).netloc != request.headers.get("host"):
            return JSONResponse({"detail": f"cross-origin request from {origin} refused"}, 403)
    if token is None or request.url.path in OPEN_PATHS:
        return None
    cookie = request.cookies.get(TOKEN_COOKIE) if request.method == "GET" else None
    if token_matches(token, request.headers.get("authorization"), cookie):
        return None
    return JSONResponse({"detail": "missing or wrong bearer token (Authorization: Bearer <token>)"}, 401,
                        headers={"WWW-Authenticate": "Bearer"})


def _host_name(host: str) -> str:
    """The name in a Host header, without its port ([::1]:8000 -> ::1)."""
    if host.startswith("["):
        return host[1 : host.find("]")]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _errors(app: FastAPI) -> None:
    """Refusals and user errors as 4xx JSON with one line; anything else a logged 500."""
    @app.exception_handler(RequestError)
    async def refused(_: Request, err: RequestError) -> JSONResponse:
        return JSONResponse({"detail": err.message}, err.status)

    @app.exception_handler(MCJAError)
    async def user_error(_: Request, err: MCJAError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, 400)


async def _read_uploads(service: SearchService, files: list[UploadFile]) -> list[tuple[str, bytes, Any, str]]:
    """(name, bytes, checked RGB image, format) of each upload; RequestError for anything the limits refuse."""
    if len(files) > service.limits.max_files:
        raise RequestError(413, f"{len(files)} images in one request; the limit is {service.limits.max_files}")
    out = []
    for f in files:
        name = (f.filename or "upload").replace("\\", "/").rsplit("/", 1)[-1][:200]
        data = await f.read()
        out.append((name, data, *decode_upload(data, f.content_type, name, service.limits)))
    return out


def _cameras(text: str | None) -> list[int] | None:
    """'3,4' or '3 4' as [3, 4]; None or empty as None."""
    if not text or not text.strip():
        return None
    try:
        return [int(c) for c in text.replace(",", " ").split()]
    except ValueError:
        raise RequestError(400, f"camera: expected camera numbers like '3' or '3,4', got {text!r}") from None


def _search_routes(app: FastAPI, service: SearchService) -> None:
    @app.post("/search", summary="Rank the gallery for uploaded query images or a gallery image")
    async def search(images: list[UploadFile] = File(default=[], description="query images (JPEG/PNG/BMP/WebP)"),
                     gallery_id: int | None = Form(None, description="use this gallery image as the query"),
                     top_k: int = Form(10, ge=1, le=1000), modality: str | None = Form(None),
                     camera: str | None = Form(None, description="camera numbers, e.g. '3,4'"),
                     rerank: bool = Form(False)) -> dict[str, Any]:
        if bool(images) == (gallery_id is not None):
            raise RequestError(400, "give query images (field 'images') or one 'gallery_id', not both or neither")
        if gallery_id is not None:
            queries = [await service.gallery_query(gallery_id)]
        else:
            queries = [(name, service.prepare(img), pid_from_path(name))
                       for name, _, img, _ in await _read_uploads(service, images)]
        return await service.search(queries, top_k, modality or None, _cameras(camera), rerank)


def _gallery_routes(app: FastAPI, service: SearchService) -> None:
    @app.post("/gallery", status_code=201, summary="Add images to the gallery (persisted in the index)")
    async def add(images: list[UploadFile] = File(default=[]), pid: int | None = Form(None, ge=0),
                  camera: int | None = Form(None, ge=0), modality: str | None = Form(None)) -> dict[str, Any]:
        if not images:
            raise RequestError(400, "no images: send one or more files in the field 'images'")
        uploads = [(name, data, fmt) for name, data, _, fmt in await _read_uploads(service, images)]
        return await service.add(uploads, pid, camera, modality or None)

    @app.get("/gallery", summary="A page of the gallery's images (ids ascending)")
    async def listing(offset: int = Query(0, ge=0), limit: int = Query(60, ge=1, le=500)) -> dict[str, Any]:
        return await service.listing(offset, limit)

    @app.get("/gallery/{gid}/image", summary="A thumbnail of a gallery image (JPEG)",
             response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
    async def image(gid: str, size: int = Query(256, ge=32, le=1024)) -> Response:
        data = await service.thumbnail(_gallery_id(gid), size)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=300"})

    @app.delete("/gallery/{gid}", summary="Remove an image from the index")
    async def delete(gid: str) -> dict[str, Any]:
        return await service.delete(_gallery_id(gid))


def _gallery_id(text: str) -> int:
    """A gallery id from the URL; anything but a plain number is an image that does not exist (404)."""
    if not text.isdigit() or len(text) > 18:
        raise RequestError(404, f"gallery image {text[:40]!r} not found")
    return int(text)


def _info_routes(app: FastAPI, service: SearchService) -> None:
    @app.get("/health", summary="Model, index size, device")
    async def health() -> dict[str, Any]:
        return await service.health()

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
    async def metrics() -> PlainTextResponse:
        images = await service.on_index(len, service.index)
        text = service.metrics.render({"mcja_index_images": ("Searchable images in the index.", images)})
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(_static("index.html"))

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in STATIC:
            raise RequestError(404, f"{name[:40]!r} not found")
        return Response(_static(name), media_type=STATIC[name])


def _static(name: str) -> str:
    return resources.files("mcja.serve").joinpath("static", name).read_text(encoding="utf-8")
