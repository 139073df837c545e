"""The HTTP API against a small real index: results equal `mcja index search`, gallery add / delete, refusals."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers.index import lock_holder, write_archive
from helpers.inference import pattern_image
from mcja.cli import main
from mcja.index import GalleryIndex, update_index


def png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def upload(path: Path) -> tuple[str, bytes, str]:
    return (path.name, path.read_bytes(), "image/png")


def cli_search(index_dir: Path, queries: list[Path], out: Path, *options: str) -> dict:
    """What `mcja index search` writes for these queries."""
    assert main(["index", "search", str(index_dir), "--query", *map(str, queries), "--out", str(out), "--quiet",
                 "--device", "cpu", *options]) == 0
    return json.loads((out / "results.json").read_text())


@pytest.mark.parametrize("form, options", [
    ({"top_k": "5"}, ["--top-k", "5"]),
    ({"top_k": "4", "modality": "visible", "camera": "1,2"}, ["--top-k", "4", "--modality", "visible", "--camera", "1", "2"]),
    ({"top_k": "3", "rerank": "true"}, ["--top-k", "3", "--rerank"]),
])
def test_search_equals_index_search(client, index_dir: Path, tmp_path: Path, form: dict, options: list) -> None:
    queries = [tmp_path / "archive" / "infrared" / "0002" / "0002_c3_1.png",
               tmp_path / "archive" / "visible" / "0003" / "0003_c1_0.png"]
    expected = cli_search(index_dir, queries, tmp_path / "cli", *options)
    r = client.post("/search", files=[("images", upload(q)) for q in queries], data=form)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["score"] == expected["score"] and len(got["queries"]) == 2
    for mine, theirs in zip(got["queries"], expected["queries"]):
        assert mine["pid"] == theirs["pid"]
        assert [x["path"] for x in mine["results"]] == [x["path"] for x in theirs["results"]]
        for a, b in zip(mine["results"], theirs["results"]):
            assert a["score"] == pytest.approx(b["score"], abs=1e-5)
            assert {k: a.get(k) for k in ("rank", "pid", "camera", "modality", "correct")} == \
                   {k: b.get(k) for k in ("rank", "pid", "camera", "modality", "correct")}


def test_gallery_id_query_equals_uploading_the_file(client, tmp_path: Path) -> None:
    listing = client.get("/gallery").json()
    assert listing["total"] == 16
    first = listing["items"][0]
    path = Path(client.post("/search", data={"gallery_id": str(first["id"]), "top_k": "1"}).json()
                ["queries"][0]["results"][0]["path"])  # a gallery image's best match is itself
    by_id = client.post("/search", data={"gallery_id": str(first["id"]), "top_k": "6"}).json()["queries"][0]
    by_file = client.post("/search", files=[("images", upload(path))], data={"top_k": "6"}).json()["queries"][0]
    assert by_id["results"][0]["id"] == first["id"] and by_id["pid"] == first["pid"]
    assert [x["id"] for x in by_id["results"]] == [x["id"] for x in by_file["results"]]


def test_add_then_search_finds_it_and_update_keeps_it(client, index_dir: Path, tmp_path: Path) -> None:
    new = png(pattern_image(9, 0))
    r = client.post("/gallery", files=[("images", ("new.png", new, "image/png"))],
                    data={"pid": "9", "camera": "2", "modality": "visible"})
    assert r.status_code == 201, r.text
    added = r.json()["added"][0]
    assert r.json()["gallery_images"] == 17
    stored = Path(added["path"])
    assert stored.read_bytes() == new and stored.is_relative_to(tmp_path / "archive")
    hit = client.post("/search", files=[("images", ("q.png", new, "image/png"))], data={"top_k": "3"}).json()
    best = hit["queries"][0]["results"][0]
    assert best["id"] == added["id"] and best["score"] == pytest.approx(1.0, abs=1e-3)
    assert (best["pid"], best["camera"], best["modality"]) == (9, 2, "visible")
    # persisted: another process's `mcja index update` of the source keeps it, labels and id unchanged
    client.app.state.service.close()
    summary = update_index(index_dir, progress=False, device="cpu")
    assert (summary["images"], summary["new"], summary["removed"]) == (17, 0, 0)
    reopened = GalleryIndex.open(index_dir)
    assert reopened.store.describe([added["id"]])[added["id"]]["pid"] == 9


def test_delete_removes_it(client) -> None:
    added = client.post("/gallery", files=[("images", ("x.png", png(pattern_image(7, 1)), "image/png"))],
                        data={"pid": "7", "modality": "infrared"}).json()["added"][0]
    assert client.get(f"/gallery/{added['id']}/image").status_code == 200
    r = client.delete(f"/gallery/{added['id']}")
    assert r.status_code == 200 and r.json()["file_deleted"] and r.json()["gallery_images"] == 16
    assert not Path(added["path"]).exists()
    results = client.post("/search", files=[("images", ("x.png", png(pattern_image(7, 1)), "image/png"))],
                          data={"top_k": "16"}).json()["queries"][0]["results"]
    assert added["id"] not in [x["id"] for x in results] and len(results) == 16
    assert client.delete(f"/gallery/{added['id']}").status_code == 404
    assert client.get(f"/gallery/{added['id']}/image").status_code == 404
    # an archive image (not uploaded) leaves the index but stays on disk
    first = client.get("/gallery").json()["items"][0]["id"]
    r = client.delete(f"/gallery/{first}").json()
    assert not r["file_deleted"] and Path(r["path"]).exists()


def test_writes_wait_briefly_for_another_writer_then_answer_409(client, index_dir: Path, tmp_path: Path,
                                                               checkpoint: Path) -> None:
    client.app.state.service.index.lock.timeout = 0.1  # the service's short wait (WRITE_WAIT_S), shortened
    first = client.get("/gallery").json()["items"][0]["id"]
    holder = lock_holder(index_dir, "mcja index update")
    try:
        r = client.post("/gallery", files=[("images", ("new.png", png(pattern_image(9, 0)), "image/png"))],
                        data={"pid": "9"})
        assert r.status_code == 409 and f"pid {holder.pid} (mcja index update, since" in r.json()["detail"], r.text
        r = client.delete(f"/gallery/{first}")
        assert r.status_code == 409 and f"pid {holder.pid}" in r.json()["detail"], r.text
        assert not (tmp_path / "archive" / "uploads").exists() or not any((tmp_path / "archive" / "uploads").rglob(
            "*.png"))  # the refused upload left no file behind
        results = client.post("/search", files=[("images", ("q.png", png(pattern_image(1, 0)), "image/png"))],
                              data={"top_k": "20"})
        assert results.status_code == 200 and len(results.json()["queries"][0]["results"]) == 16  # reads go on
    finally:
        holder.kill()
        holder.wait()
    assert client.delete(f"/gallery/{first}").status_code == 200  # a killed holder blocks nobody
    # another process's write is seen by the service's next search
    added = write_archive(tmp_path / "elsewhere", ids=(8,), per_id=1)[0]
    other = GalleryIndex.open(index_dir, checkpoint, device="cpu")
    other.add([added], progress=False)
    other.close()
    best = client.post("/search", files=[("images", upload(added))], data={"top_k": "1"}).json()
    assert best["queries"][0]["results"][0]["path"] == str(added) and best["gallery_images"] == 16


def _bomb() -> bytes:
    """A 10000 x 10000 PNG of a few kB: 100 million pixels once decoded."""
    out = io.BytesIO()
    Image.new("1", (10000, 10000)).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize("route", ["/search", "/gallery"])
def test_bad_uploads_get_4xx_with_a_message(client, route: str) -> None:
    good = png(pattern_image(1, 0))
    cases = {
        "not an image": ([("images", ("a.png", b"hello, not a png", "image/png"))], 400, "not an image"),
        "too large": ([("images", ("a.png", b"\0" * (11 * 1024 * 1024), "image/png"))], 413, "limit"),
        "decompression bomb": ([("images", ("bomb.png", _bomb(), "image/png"))], 413, "pixels"),
        "empty file": ([("images", ("a.png", b"", "image/png"))], 400, "empty"),
        "wrong content type": ([("images", ("a.png", good, "text/plain"))], 415, "content type"),
        "many files": ([("images", ("a.png", good, "image/png"))] * 33, 413, "limit"),
        "no file": ([], 400, "images"),
    }
    for name, (files, status, words) in cases.items():
        r = client.post(route, files=files or None, data={"top_k": "3"})
        assert r.status_code == status, (name, r.status_code, r.text)
        assert words in r.json()["detail"], (name, r.json())
    r = client.post("/search", content=b"", headers={"content-type": "multipart/form-data; boundary=x"})
    assert 400 <= r.status_code < 500, r.text
    r = client.post("/search", data={"top_k": "0", "gallery_id": "1"})
    assert r.status_code == 422
    assert client.post("/search", data={"gallery_id": "1", "modality": "ultraviolet"}).status_code == 400
    assert client.get("/gallery").json()["total"] == 16  # nothing was added by the refused requests


def test_path_traversal_gets_404(client, tmp_path: Path, index_dir: Path) -> None:
    for url in ["/gallery/..%2F..%2Fetc%2Fpasswd/image", "/gallery/-1/image", "/gallery/999999/image",
                "/gallery/1%2F..%2F..%2Fpyproject.toml/image", "/static/..%2F..%2F..%2Fpyproject.toml",
                "/static/index.html%00.js", "/gallery/0x1/image"]:
        assert client.get(url).status_code == 404, url
    # a link inside the archive that points outside it is indexed (index update follows it) but never served
    secret = tmp_path / "secret.png"
    secret.write_bytes(png(pattern_image(5, 5)))
    (tmp_path / "archive" / "visible" / "0001" / "0001_c1_9.png").symlink_to(secret)
    client.app.state.service.close()
    update_index(index_dir, progress=False, device="cpu")
    from fastapi.testclient import TestClient

    from mcja.serve.app import create_app
    from mcja.serve.service import SearchService

    service = SearchService(index_dir, device="cpu")
    with TestClient(create_app(service), base_url="http://localhost") as c:
        linked = [i["id"] for i in c.get("/gallery").json()["items"]][-1]
        assert c.get(f"/gallery/{linked}/image").status_code == 404
        assert c.post("/search", data={"gallery_id": str(linked)}).status_code == 404
        assert c.get(f"/gallery/{linked - 1}/image").status_code == 200
    service.close()


def test_token_enforced(service) -> None:
    from fastapi.testclient import TestClient

    from mcja.serve.app import create_app

    token = "s3cret-token-0123456789"
    with TestClient(create_app(service, token)) as c:
        assert c.get("/").status_code == 200 and c.get("/static/app.js").status_code == 200
        for method, url in [("get", "/health"), ("get", "/metrics"), ("get", "/gallery"), ("get", "/gallery/1/image"),
                            ("post", "/search"), ("delete", "/gallery/1")]:
            assert getattr(c, method)(url).status_code == 401, url
            assert getattr(c, method)(url, headers={"Authorization": "Bearer wrong"}).status_code == 401, url
        auth = {"Authorization": f"Bearer {token}"}
        assert c.get("/health", headers=auth).json()["index"]["images"] == 16
        r = c.post("/search", data={"gallery_id": "1", "top_k": "2"}, headers=auth)
        assert r.status_code == 200
        # the page's <img> thumbnails carry the token as a cookie: accepted for reading, never for changes
        c.cookies.set("mcja_token", token)
        assert c.get("/gallery/1/image").status_code == 200
        assert c.delete("/gallery/1").status_code == 401


def test_cross_origin_changes_refused(client) -> None:
    r = client.post("/gallery", files=[("images", ("x.png", png(pattern_image(7, 1)), "image/png"))],
                    headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and "cross-origin" in r.json()["detail"]
    assert client.delete("/gallery/1", headers={"Origin": "http://evil.example"}).status_code == 403
    assert client.get("/gallery").json()["total"] == 16


def test_without_token_only_localhost_is_answered(client) -> None:
    """A page on another name resolving to this machine (DNS rebinding) gets nothing, not even GETs."""
    for host in ("evil.example", "evil.example:8000", "192.168.1.5:8000"):
        r = client.get("/gallery", headers={"host": host})
        assert r.status_code == 403 and "localhost" in r.json()["detail"], host
    for host in ("localhost:8000", "127.0.0.1", "[::1]:8000"):
        assert client.get("/gallery", headers={"host": host}).status_code == 200, host


def test_health_metrics_thumbnail(client) -> None:
    health = client.get("/health").json()
    assert health["index"]["images"] == 16 and health["device"] == "cpu" and health["model"]["image_size"] == [64, 32]
    client.post("/search", data={"gallery_id": "1"})
    text = client.get("/metrics").text
    assert 'mcja_requests_total{method="POST",route="/search",status="200"} 1' in text
    assert "mcja_index_images 16" in text and 'mcja_batch_images_count 1' in text
    r = client.get("/gallery/1/image?size=32")
    assert r.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(r.content)).size == (16, 32)  # a 64x32 crop scaled to 32 high
    assert "MCJA" in client.get("/").text or "mcja" in client.get("/").text
    assert client.get("/docs").status_code == 200 and "/search" in client.get("/openapi.json").json()["paths"]


def test_api_docs_need_no_internet(client) -> None:
    """/docs loads Swagger UI from the service itself (an operator's machine may have no internet), and the asset
    route serves its two files and nothing else."""
    page = client.get("/docs").text
    assert "/docs-assets/swagger-ui-bundle.js" in page and "cdn" not in page.lower()
    js = client.get("/docs-assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript") and len(js.content) > 1e5
    assert client.get("/docs-assets/swagger-ui.css").status_code == 200
    for probe in ("/docs-assets/swagger-ui-bundle.js.map", "/docs-assets/..%2F__init__.py", "/docs-assets/index.html"):
        assert client.get(probe).status_code == 404


def test_filters_count_and_clamp_and_name_modalities(client) -> None:
    """gallery_images counts what the filters allow (8 visible of 16), top_k is clamped to it, modality is a name,
    and a filter on a camera no image has is a 400 naming the cameras present."""
    r = client.post("/search", data={"gallery_id": "1", "top_k": "1000", "modality": "visible"}).json()
    assert r["gallery_images"] == 8 and r["top_k"] == 8 and r["top_k_requested"] == 1000
    results = r["queries"][0]["results"]
    assert len(results) == 8 and {x["modality"] for x in results} == {"visible"}
    assert {x["modality"] for x in client.get("/gallery").json()["items"]} == {"visible", "infrared"}
    r = client.post("/search", data={"gallery_id": "1", "camera": "7"})
    assert r.status_code == 400 and r.json()["detail"] == \
        "--camera 7: no image in this index has camera 7 (cameras present: 1, 2, 3)"


def test_latin1_file_name_in_json_and_thumbnail(index_dir: Path, tmp_path: Path) -> None:
    """A gallery file whose name is not UTF-8 is searched, answered in JSON as its PEP 383 escapes (the same file
    back through os.fsencode, as in results.json) and served as a thumbnail."""
    from fastapi.testclient import TestClient

    from mcja.serve.app import create_app
    from mcja.serve.service import SearchService

    raw = os.path.join(os.fsencode(tmp_path / "archive" / "visible" / "0001"), b"caf\xe9.png")
    with open(raw, "wb") as f:
        f.write(png(pattern_image(1, 9)))
    assert update_index(index_dir, progress=False, device="cpu")["new"] == 1
    service = SearchService(index_dir, device="cpu")
    try:
        with TestClient(create_app(service), base_url="http://127.0.0.1:8000") as client:
            r = client.post("/search", files=[("images", ("q.png", png(pattern_image(1, 9)), "image/png"))],
                            data={"top_k": "2"})
            assert r.status_code == 200 and "caf\\udce9.png" in r.text
            best = r.json()["queries"][0]["results"][0]
            assert os.fsencode(best["path"]) == raw
            thumb = client.get(f"/gallery/{best['id']}/image?size=32")
            assert thumb.status_code == 200 and Image.open(io.BytesIO(thumb.content)).size == (16, 32)
    finally:
        service.close()
