"""A real uvicorn server on loopback, concurrent clients, and the CLI's safe defaults."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from mcja.cli import main
from mcja.serve.batching import Batcher


def test_real_server_answers_concurrent_searches_like_single_ones(live_server: str, tmp_path: Path) -> None:
    import httpx

    queries = sorted((tmp_path / "archive").rglob("*.png"))[:6]
    with httpx.Client(base_url=live_server, timeout=60) as c:
        assert c.get("/health").json()["index"]["images"] == 16
        single = [c.post("/search", files={"images": (q.name, q.read_bytes(), "image/png")}, data={"top_k": "5"})
                  .json()["queries"][0]["results"] for q in queries]

    async def together() -> list:
        async with httpx.AsyncClient(base_url=live_server, timeout=60) as ac:
            answers = await asyncio.gather(*[ac.post("/search", files={"images": (q.name, q.read_bytes(), "image/png")},
                                                     data={"top_k": "5"}) for q in queries])
        return [a.json()["queries"][0]["results"] for a in answers]

    for alone, shared in zip(single, asyncio.run(together())):
        assert [r["id"] for r in alone] == [r["id"] for r in shared]
        assert [r["score"] for r in alone] == pytest.approx([r["score"] for r in shared], abs=1e-5)


def test_batcher_groups_concurrent_requests_into_one_forward() -> None:
    calls: list[int] = []

    def embed(images: list) -> np.ndarray:
        calls.append(len(images))
        return np.stack(images).reshape(len(images), -1)[:, :1].astype(np.float32)  # each image's first pixel

    async def run() -> list:
        batcher = Batcher(embed, window_s=0.2, max_items=32)
        requests = [[np.full((2, 2, 3), 10 * i + j, np.uint8) for j in range(i + 1)] for i in range(4)]
        out = await asyncio.gather(*[batcher.submit(r) for r in requests])
        batcher.close()
        return out

    out = asyncio.run(run())
    assert calls == [10]  # 1 + 2 + 3 + 4 images of four requests, one forward
    for i, feats in enumerate(out):
        assert feats[:, 0].tolist() == [10 * i + j for j in range(i + 1)]  # each request got its own rows


def test_batcher_max_one_image_is_one_forward_per_request() -> None:
    calls: list[int] = []

    def embed(images: list) -> np.ndarray:
        calls.append(len(images))
        return np.zeros((len(images), 1), np.float32)

    async def run() -> None:
        batcher = Batcher(embed, window_s=0.05, max_items=1)
        await asyncio.gather(*[batcher.submit([np.zeros((2, 2, 3), np.uint8)]) for _ in range(3)])
        batcher.close()

    asyncio.run(run())
    assert calls == [1, 1, 1]


def test_cli_refuses_public_host_without_token(index_dir: Path, tmp_path: Path, capsys) -> None:
    assert main(["serve", str(index_dir), "--host", "0.0.0.0"]) == 2
    assert "--token-file" in capsys.readouterr().err
    short = tmp_path / "token.txt"
    short.write_text("abc\n")
    assert main(["serve", str(index_dir), "--host", "0.0.0.0", "--token-file", str(short)]) == 2
    assert "16 characters" in capsys.readouterr().err
    assert main(["serve", str(tmp_path / "missing.idx")]) == 2
    assert "not found" in capsys.readouterr().err


def test_cli_serves_until_stopped(index_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """`mcja serve` with a token on a free port: the token is required, then the server stops cleanly."""
    import socket

    import httpx
    import uvicorn

    token = tmp_path / "token.txt"
    token.write_text("0123456789abcdef-token\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    servers = []
    original = uvicorn.Server.run
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, *a: (servers.append(self), original(self, *a))[1])
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("rc", main(
        ["serve", str(index_dir), "--port", str(port), "--device", "cpu", "--token-file", str(token)])))
    thread.start()
    deadline = time.monotonic() + 60
    while not (servers and servers[0].started) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/health").status_code == 401
        ok = httpx.get(f"{base}/health", headers={"Authorization": "Bearer 0123456789abcdef-token"})
        assert ok.json()["index"]["images"] == 16
    finally:
        servers[0].should_exit = True
        thread.join(30)
    assert result["rc"] == 0


def test_cli_refuses_a_port_out_of_range_before_loading_anything(index_dir: Path, capsys, monkeypatch) -> None:
    def no_model(*args, **kwargs):
        raise AssertionError("the index and model were loaded before the port was checked")

    monkeypatch.setattr("mcja.serve.service.SearchService", no_model)
    assert main(["serve", str(index_dir), "--port", "70000"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "--port 70000: expected 0..65535" in err, err


def test_cli_refuses_a_port_in_use_without_printing_a_url(index_dir: Path, capsys) -> None:
    """Another program holds the port: one line naming it, exit 2, and no URL that would point at that program."""
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        assert main(["serve", str(index_dir), "--port", str(port), "--device", "cpu"]) == 2
    out, err = capsys.readouterr()
    assert "http://" not in out + err, out
    assert err.count("\n") == 1 and f"--port {port}: cannot listen on 127.0.0.1:{port}" in err and "in use" in err, err


def test_concurrent_searches_with_mixed_options_equal_single_ones(service, tmp_path: Path) -> None:
    """Queries batched into one forward and one index call per option set rank as they would alone."""
    from mcja.data.images import load_rgb

    paths = sorted((tmp_path / "archive").rglob("*.png"))[:6]
    options = [(3, None, None, False), (5, "visible", [1], False), (4, None, None, True)] * 2
    queries = [[(p.name, service.prepare(load_rgb(p)), None)] for p in paths]

    async def alone() -> list:
        return [await service.search(q, *o) for q, o in zip(queries, options)]

    async def together() -> list:
        return await asyncio.gather(*[service.search(q, *o) for q, o in zip(queries, options)])

    single, shared = asyncio.run(alone()), asyncio.run(together())
    assert service.metrics.batches.count < 2 * len(queries)  # fewer model forwards than requests
    for a, b in zip(single, shared):
        ra, rb = a["queries"][0]["results"], b["queries"][0]["results"]
        assert [r["id"] for r in ra] == [r["id"] for r in rb]
        assert [r["score"] for r in ra] == pytest.approx([r["score"] for r in rb], abs=1e-5)


def test_chunked_body_over_the_limit_is_refused_while_streaming(live_server: str) -> None:
    """Without a Content-Length the body is counted as it arrives: 413 once it passes the limit."""
    import httpx

    def body():
        yield b'--x\r\nContent-Disposition: form-data; name="images"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n'
        for _ in range(12):  # a 12 MiB file part in 1 MiB chunks, over the 10 MiB default
            yield b"\0" * (1024 * 1024)

    try:
        r = httpx.post(f"{live_server}/search", content=body(), timeout=60,
                       headers={"content-type": "multipart/form-data; boundary=x"})
    except httpx.HTTPError as err:  # the server may close the connection while the client still writes
        pytest.fail(f"no answer: {err!r}")
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    assert httpx.get(f"{live_server}/health").status_code == 200  # and it keeps serving
