"""`mcja serve` under load on loopback: C concurrent clients for S seconds each post one query image to /search
against a large synthetic index; zero errors expected; p50/p99 latency and requests/s, for the server with
batching off (--max-batch 1: one model forward per request, the single-request baseline) and on (the default
5 ms window, up to 32 images per forward), in the same run.

The index: a random-weight ResNet-18 MCJA checkpoint at 128x64 (the demo's model size; weights do not change
the cost), and N synthetic 512-d features with a ReID-like neighbourhood structure (benchmarks/bench_index.py's
generator) written straight into the index format (rows in SQLite, features in the memory-mapped file, then
the search structure built as `mcja index build` builds it: auto = ivf above 50k images). Queries are real
JPEG uploads (decoded, resized, embedded by the model), so each request costs what an operator's does.
The server runs in its own process (`python -m mcja serve`), the clients (httpx, asyncio) in this one.
Usage: python benchmarks/bench_serve.py [--images 100000] [--clients 20] [--seconds 30] [--out /tmp/bench_serve]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_eval import machine  # noqa: E402
from bench_index import ReidLike  # noqa: E402

from mcja.index.build import refresh_structure  # noqa: E402
from mcja.index.gallery import GalleryIndex  # noqa: E402
from mcja.index.store import ImageRow  # noqa: E402
from mcja.models import MCJA, checkpoint_payload  # noqa: E402

SIZE = (128, 64)
CHUNK = 20_000


def make_checkpoint(path: Path) -> Path:
    """A random-weight ResNet-18 MCJA at 128x64 in our checkpoint format."""
    torch.manual_seed(0)
    model = MCJA(num_classes=8, depth=18, pretrained=None).eval()
    torch.save(checkpoint_payload(model, config={"data": {"image_size": list(SIZE)}}), path)
    return path


def make_index(folder: Path, checkpoint: Path, n: int, kind: str) -> float:
    """An index of n synthetic features written straight into the index format; returns the seconds it took."""
    start = time.perf_counter()
    images = folder.parent / "synthetic-archive"
    images.mkdir(parents=True, exist_ok=True)
    index = GalleryIndex.create(folder, checkpoint, kind=kind, source={"images": str(images)}, device="cpu")
    dim = index.identity["feature_dim"]
    gen = ReidLike(n, dim, seed=0)
    rng = np.random.default_rng(1)
    for s in range(0, n, CHUNK):
        labels, cams = gen.labels[s : s + CHUNK], gen.cams[s : s + CHUNK]
        rows = [ImageRow(str(images / f"{pid:06d}" / f"{pid:06d}_c{cam + 1}_{s + i:07d}.jpg"), 1000, 0, int(pid),
                         int(cam) + 1, int(i % 2)) for i, (pid, cam) in enumerate(zip(labels, cams))]
        index.store.apply_scan(rows, [], [])
        pending = index.store.pending()
        feats = gen.draw(labels, cams, rng)
        got = index.feats.append(feats[:, None])
        index.store.commit_rows([(i, r) for (i, _), r in zip(pending, got)], [], index.feats.rows)
    refresh_structure(index.store, index.feats, index.folder)
    info = index.info()
    index.close()
    print(f"index: {info['images']:,} images, {dim}-d, structure {info['structure']['kind']} "
          f"{info['structure'].get('params')}, built in {time.perf_counter() - start:.1f} s", flush=True)
    return time.perf_counter() - start


def query_jpegs(count: int = 50) -> list[bytes]:
    """Person-crop-sized JPEGs (noise over colour bands), as an operator would upload."""
    rng = np.random.default_rng(2)
    out = []
    for _ in range(count):
        bands = np.repeat(rng.integers(0, 256, (4, 1, 3)), 64, axis=0)
        img = np.clip(np.repeat(bands, 128, axis=1) + rng.integers(-20, 21, (256, 128, 3)), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(index: Path, port: int, extra: list[str]) -> subprocess.Popen:
    """`python -m mcja serve` in its own process, once /health answers."""
    import httpx

    proc = subprocess.Popen([sys.executable, "-m", "mcja", "serve", str(index), "--port", str(port), "--device", "cpu",
                             *extra], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("the server did not start")


async def load(url: str, clients: int, seconds: float, jpegs: list[bytes]) -> dict:
    """`clients` loops posting queries until `seconds` pass; latencies of answered requests, errors counted."""
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    end = time.perf_counter() + seconds

    async def client(c: int, http: httpx.AsyncClient) -> None:
        i = c
        while time.perf_counter() < end:
            t = time.perf_counter()
            try:
                r = await http.post("/search", files={"images": ("q.jpg", jpegs[i % len(jpegs)], "image/jpeg")},
                                    data={"top_k": "10"})
                if r.status_code != 200 or len(r.json()["queries"][0]["results"]) != 10:
                    errors.append(f"{r.status_code} {r.text[:100]}")
            except httpx.HTTPError as err:
                errors.append(repr(err))
            latencies.append(time.perf_counter() - t)
            i += clients

    start = time.perf_counter()
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        await asyncio.gather(*[client(c, http) for c in range(clients)])
    wall = time.perf_counter() - start
    lat = np.array(latencies) * 1000
    return {"requests": len(lat), "errors": len(errors), "first_error": errors[0] if errors else "",
            "rps": len(lat) / wall, "p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99))}


def batch_stats(url: str) -> str:
    """Mean images per model forward, from the server's /metrics."""
    import httpx

    text = httpx.get(f"{url}/metrics").text
    val = {line.split()[0]: float(line.split()[1]) for line in text.splitlines() if line.startswith("mcja_batch_images_")}
    return f"{val['mcja_batch_images_sum'] / max(1, val['mcja_batch_images_count']):.1f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=100_000)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--kind", default="auto", choices=("auto", "flat", "ivf", "hnsw"))
    p.add_argument("--out", default="/tmp/bench_serve")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    index = out / f"index-{args.images}-{args.kind}.idx"
    ckpt = out / "resnet18-128x64.pt"
    if not ckpt.exists():
        make_checkpoint(ckpt)
    if not index.exists():
        make_index(index, ckpt, args.images, args.kind)
    jpegs = query_jpegs()
    print(f"\n{machine()}; server and {args.clients} clients on the same machine, loopback\n")
    print(f"| {args.images:,}-image index, top-10 per query | clients | seconds | requests | errors | requests/s | "
          "p50 ms | p99 ms | images per forward |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    setups = [("batching off (--max-batch 1)", ["--max-batch", "1"], 1),
              ("batching off (--max-batch 1)", ["--max-batch", "1"], args.clients),
              ("batched (default: 5 ms window, <= 32 images)", [], args.clients)]
    for name, extra, clients in setups:
        port = free_port()
        server = start_server(index, port, extra)
        try:
            url = f"http://127.0.0.1:{port}"
            asyncio.run(load(url, clients, 3, jpegs))  # warm-up, not counted
            r = asyncio.run(load(url, clients, args.seconds, jpegs))
            print(f"| {name} | {clients} | {args.seconds:g} | {r['requests']} | {r['errors']} | {r['rps']:.1f} | "
                  f"{r['p50']:.0f} | {r['p99']:.0f} | {batch_stats(url)} |", flush=True)
            if r["errors"]:
                print(f"first error: {r['first_error']}", flush=True)
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
