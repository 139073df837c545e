"""What keeps the service safe by default: the bearer token, the request-size limit and checked image uploads.

Uploads are refused before decoding when their declared type, byte size or pixel count (read from the header, so
a decompression bomb is never expanded) is over the limits; each refusal is a 4xx with one clear line.
"""

from __future__ import annotations

import hmac
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

from PIL import Image, UnidentifiedImageError

from mcja.errors import ConfigError

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
CONTENT_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/bmp": "BMP", "image/x-ms-bmp": "BMP",
                 "image/webp": "WEBP"}
EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "BMP": ".bmp", "WEBP": ".webp"}


class RequestError(Exception):
    """A request the service refuses: an HTTP status and one line saying why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class UploadLimits:
    """Upper bounds on what a request may carry."""

    max_bytes: int = 10 * 1024 * 1024  # the whole request body
    max_pixels: int = 25_000_000  # width x height of one image
    max_files: int = 32  # images in one request


def read_token(path: str | os.PathLike | None) -> str | None:
    """The bearer token in a file (surrounding whitespace dropped); None without a file."""
    if path is None:
        return None
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"--token-file: {file} not found")
    token = file.read_text(encoding="utf-8").strip()
    if len(token) < 16 or any(c.isspace() for c in token):
        raise ConfigError(f"--token-file: {file} must hold one token of at least 16 characters without spaces")
    return token


def check_host(host: str, token: str | None) -> None:
    """Binding beyond this machine needs a token (ConfigError otherwise)."""
    if host not in LOCAL_HOSTS and token is None:
        raise ConfigError(f"--host {host}: serving beyond localhost needs --token-file (a bearer token); "
                          "or keep the default --host 127.0.0.1")


def token_matches(token: str, header: str | None, cookie: str | None = None) -> bool:
    """Whether `Authorization: Bearer <token>` (or the cookie, when given) carries the token; constant time."""
    given = ""
    if header and header[:7].lower() == "bearer ":
        given = header[7:].strip()
    elif cookie:
        given = cookie
    return hmac.compare_digest(given.encode(), token.encode())


def decode_upload(data: bytes, content_type: str | None, name: str, limits: UploadLimits
                  ) -> tuple[Image.Image, str]:
    """An uploaded file as (RGB image, its format), or RequestError: 400 empty/not an image, 413 too many pixels, 415 type."""
    declared = (content_type or "").split(";")[0].strip().lower()
    if declared not in CONTENT_TYPES:
        raise RequestError(415, f"{name}: content type {declared or 'missing'!r} is not accepted; send "
                           f"{', '.join(sorted(set(CONTENT_TYPES) - {'image/x-ms-bmp'}))}")
    if not data:
        raise RequestError(400, f"{name}: empty file")
    try:
        with warnings.catch_warnings():  # PIL's own bomb warning: the pixel limit below is the check that counts
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))  # reads the header only: the size is known before any pixel
    except Image.DecompressionBombError:
        raise RequestError(413, f"{name}: too many pixels (over {limits.max_pixels:,})") from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise RequestError(400, f"{name}: not an image (expected a JPEG, PNG, BMP or WebP file)") from None
    if img.format not in EXTENSIONS:
        raise RequestError(415, f"{name}: {img.format} images are not accepted (JPEG, PNG, BMP or WebP)")
    w, h = img.size
    if w * h > limits.max_pixels:
        raise RequestError(413, f"{name}: {w}x{h} pixels is over the limit of {limits.max_pixels:,} pixels")
    try:
        img.load()
        return img.convert("RGB"), img.format
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise RequestError(400, f"{name}: cannot decode the image ({err.__class__.__name__})") from None


ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


class BodyLimit:
    """ASGI middleware: a request body over `max_bytes` gets 413 before it is read (Content-Length) or as soon
    as it passes the limit (chunked), so an upload never fills memory or the temporary folder."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await _send_413(send, self.max_bytes)
        seen, over, answered = 0, False, False

        async def limited_receive() -> dict:
            nonlocal seen, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                over = True  # the app sees the client go away; its answer is replaced by the 413 below
                return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: dict) -> None:
            nonlocal answered
            if over:
                if not answered and message["type"] == "http.response.start":
                    answered = True
                    await _send_413(send, self.max_bytes)
                return
            await send(message)

        await self.app(scope, limited_receive, guarded_send)
        if over and not answered:  # the app gave up without answering
            await _send_413(send, self.max_bytes)


async def _send_413(send: Any, limit: int) -> None:
    body = f'{{"detail": "request body over the limit of {limit:,} bytes"}}'.encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
