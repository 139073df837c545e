"""SearchService: one model and one gallery index per process, shared by every request.

Threads: the event loop decodes nothing itself; the model runs on the batcher's one thread, and every index
read or write runs on one index thread, in order: an add or delete finishes before the next search reads the
index, so a search always sees one consistent snapshot (SQLite rows, feature file and search structure of the
same moment); SQLite's connection also stays on the thread that made it. Writes also hold the index folder's
writer lock (another process may be running `mcja index update`): one that waits more than WRITE_WAIT_S is a 409
naming the other writer. Another process's changes are picked up at the next search.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image

from mcja.data.images import load_rgb, resize_rgb
from mcja.data.records import MODALITY_BY_CODE
from mcja.errors import DatasetError
from mcja.index.gallery import GalleryIndex, parse_modality
from mcja.index.search import ranked_results, score_name, search_features, search_scope
from mcja.index.writer import IndexBusy
from mcja.inference.sources import image_labels
from mcja.serve.batching import Batcher
from mcja.serve.metrics import Metrics
from mcja.serve.security import EXTENSIONS, RequestError, UploadLimits
from mcja.utils.io import atomic_path

UPLOADS = "uploads"  # added images are written below the index's source folder, so `index update` keeps them
WRITE_WAIT_S = 2.0  # how long an add or delete waits for another process's write before answering 409


class SearchService:
    """The index, its model and the batcher behind the HTTP routes (see the module docstring for the threads)."""

    def __init__(self, index_dir: str | Path, checkpoint: str | Path | None = None, device: str | None = "auto",
                 batch_window_s: float = 0.005, max_batch: int = 32, limits: UploadLimits | None = None) -> None:
        self.limits, self.metrics = limits or UploadLimits(), Metrics()
        self.index_pool = ThreadPoolExecutor(1, thread_name_prefix="mcja-index")
        self.model_lock = threading.Lock()  # the model is shared by searches (batcher) and additions
        self.index: GalleryIndex = self.index_pool.submit(_open_index, index_dir, checkpoint, device).result()
        self.extractor = self.index.extractor
        self.batcher = Batcher(self._embed, batch_window_s, max_batch, self.metrics.batch)
        # searches queued while one runs go into the next index call together (no extra wait)
        # (max_batch 1 turns both off: one forward and one index search per request, the baseline)
        self.searcher = Batcher(self._search_batch, 0.0, 256 if max_batch > 1 else 1, executor=self.index_pool)
        self.requests = itertools.count()
        source = self.index_pool.submit(self.index.store.get, "source").result() or {}
        self.root = Path(source["images"]).resolve() if source.get("images") else None

    def close(self) -> None:
        """Stop the model thread and close the index (once; later calls do nothing)."""
        if self.index_pool._shutdown:  # noqa: SLF001 - already closed
            return
        self.batcher.close()
        self.searcher.close()
        self.index_pool.submit(self.index.close).result()
        self.index_pool.shutdown()

    def count(self) -> int:
        """Searchable images now (from any thread)."""
        return self.index_pool.submit(len, self.index).result()

    async def on_index(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(*args)` on the index thread (in order with every other index read and write)."""
        return await asyncio.get_running_loop().run_in_executor(self.index_pool, fn, *args)

    def _embed(self, images: list[np.ndarray]) -> np.ndarray:
        """Features [n, D] of prepared images: one model forward (model thread)."""
        with self.model_lock:
            return self.extractor(np.stack(images)).numpy()

    def prepare(self, img: Image.Image) -> np.ndarray:
        """An RGB image at the model's input size, as `mcja index search` resizes its queries."""
        return resize_rgb(img, self.extractor.image_size)

    async def search(self, queries: Sequence[tuple[str, np.ndarray, int | None]], top_k: int,
                     modality: str | None, camera: Sequence[int] | None, rerank: bool) -> dict[str, Any]:
        """Ranked results per query (name, prepared image, pid when known), as `mcja index search` ranks them."""
        start = time.perf_counter()
        parse_modality(modality)  # a wrong name is a 400 before any work
        feats = await self.batcher.submit([img for _, img, _ in queries])
        # re-ranked queries are ranked together with their own request's queries only (MSER looks at all of them)
        key = (top_k, modality, tuple(camera) if camera else None, rerank, next(self.requests) if rerank else None)
        found = await self.searcher.submit([(f, key) for f in feats])
        failed = next((hits for hits, _, _ in found if isinstance(hits, Exception)), None)
        if failed is not None:
            raise failed
        entries = []
        for (name, _, pid), (hits, _, _) in zip(queries, found):
            results = ranked_results(hits, pid)[0]
            entries.append({"query": name, "pid": pid,
                            "results": [{"id": h["id"], **r} for h, r in zip(hits, results)]})
        # as in `mcja index search`: the images the filters allow, and top_k clamped to them
        return {"gallery_images": found[0][1], "top_k": found[0][2], "top_k_requested": top_k,
                "filters": {"modality": modality, "camera": camera},
                "score": score_name(rerank), "rerank": rerank, "queries": entries,
                "seconds": round(time.perf_counter() - start, 4)}

    def _search_batch(self, items: list[tuple[np.ndarray, tuple]]) -> list[tuple[list, int, int]]:
        """(hits, images the filters allow, top_k clamped to them) per query feature: one index search per group
        of equal options (index thread)."""
        groups: dict[tuple, list[int]] = {}
        for i, (_, key) in enumerate(items):
            groups.setdefault(key, []).append(i)
        out: list = [None] * len(items)
        for (top_k, modality, camera, rerank, _), members in groups.items():
            feats = torch.from_numpy(np.stack([items[i][0] for i in members])).float()
            scope = (0, 0, 0)
            try:
                scope = search_scope(self.index, top_k, modality, camera and list(camera))
                found = search_features(self.index, feats, top_k, modality, camera and list(camera), rerank, scope)
            except Exception as err:  # noqa: BLE001 - only this group's requests fail, with their own error
                found = [err] * len(members)
            for i, hits in zip(members, found):
                out[i] = (hits, scope[1], scope[2])
        return out

    async def gallery_query(self, gid: int) -> tuple[str, np.ndarray, int | None]:
        """A gallery image as a query: (name, prepared image, its pid)."""
        item = await self.on_index(self.describe, gid)
        img = await asyncio.to_thread(load_rgb, item["path"])
        return f"gallery:{gid}", self.prepare(img), item["pid"]

    def describe(self, gid: int) -> dict[str, Any]:
        """A gallery image's path and labels (index thread); 404 unless it is a live image inside the gallery."""
        item = self.index.store.describe([gid]).get(gid)
        if item is None or not self.inside_gallery(item["path"]):
            raise RequestError(404, f"gallery image {gid} not found")
        return item

    def inside_gallery(self, path: str) -> bool:
        """Whether `path` (after following links) lies inside the index's image folder; list-built indexes serve
        exactly the files their list named."""
        if self.root is None:
            return True
        try:
            return Path(path).resolve().is_relative_to(self.root)
        except OSError:
            return False

    async def thumbnail(self, gid: int, size: int) -> bytes:
        """A JPEG of a gallery image, at most `size` pixels high."""
        item = await self.on_index(self.describe, gid)
        path = Path(item["path"])
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            raise RequestError(404, f"gallery image {gid}: its file is gone") from None
        return await asyncio.to_thread(_thumbnail, str(path), stamp, size)

    async def add(self, uploads: Sequence[tuple[str, bytes, str]], pid: int | None, camera: int | None,
                  modality: str | None) -> dict[str, Any]:
        """Write uploads (name, bytes, PIL format) into the gallery's uploads folder and add them to the index
        (index.add: the code path of `mcja index update`); their new ids."""
        if self.root is None:
            raise RequestError(409, "this index was built from a list file: add the images to the list and run "
                               "`mcja index update`")
        code = parse_modality(modality)
        paths = [self._upload_path(pid, camera, code, EXTENSIONS[fmt]) for _, _, fmt in uploads]
        for path, (_, data, _) in zip(paths, uploads):
            with atomic_path(path) as tmp:
                tmp.write_bytes(data)
        try:
            ids = await self.on_index(self._add_paths, paths)
        except BaseException:
            for path in paths:  # not in the index: leave nothing behind for a later `index update` to trip on
                path.unlink(missing_ok=True)
            raise
        return {"added": [{"id": i, "name": name, "path": str(p)} for i, (name, _, _), p in zip(ids, uploads, paths)],
                "gallery_images": await self.on_index(len, self.index)}

    def _upload_path(self, pid: int | None, camera: int | None, modality: int | None, ext: str) -> Path:
        """uploads/<modality>/<pid>/<pid>_c<cam>_<random>.ext: the folders and name carry the labels, so a later
        `mcja index update` reads the same labels back."""
        folder = self.root / UPLOADS / MODALITY_BY_CODE.get(modality, "unknown")
        folder = folder / (f"{pid:04d}" if pid is not None else "unlabelled")
        stem = (f"{pid:04d}_" if pid is not None else "img_") + (f"c{camera}_" if camera is not None else "")
        return folder / f"{stem}{uuid.uuid4().hex[:12]}{ext}"

    @contextmanager
    def _writing(self, command: str) -> Iterator[None]:
        """Hold the index's writer lock (index thread); a 409 naming the other writer when it is not free in time."""
        try:
            with self.index.writing(command):  # inside, index.add/remove hold it again (re-entrant): never busy
                yield
        except IndexBusy as err:
            raise RequestError(409, str(err)) from None

    def _add_paths(self, paths: list[Path]) -> list[int]:
        with self.model_lock, self._writing("mcja serve: POST /gallery"):
            self.index.add([str(p) for p in paths], labels=lambda p: image_labels(p, self.root), progress=False)
        known = self.index.store.scanned()
        return [known[str(p)][0] for p in paths]

    async def delete(self, gid: int) -> dict[str, Any]:
        """Remove an image from the index; a file the service uploaded is deleted too, others stay on disk."""
        return await self.on_index(self._delete, gid)

    def _delete(self, gid: int) -> dict[str, Any]:
        item = self.describe(gid)
        with self._writing("mcja serve: DELETE /gallery"):
            self.index.remove([gid])
        path = Path(item["path"])
        uploaded = self.root is not None and path.resolve().is_relative_to(self.root / UPLOADS)
        if uploaded:
            path.unlink(missing_ok=True)
        return {"deleted": gid, "path": str(path), "file_deleted": uploaded, "gallery_images": len(self.index)}

    async def listing(self, offset: int, limit: int) -> dict[str, Any]:
        """A page of the gallery (ids ascending) with labels, for browsing."""
        def page() -> dict[str, Any]:
            ids = self.index.id_rows()[0]
            part = [int(i) for i in ids[offset : offset + limit]]
            meta = self.index.store.describe(part)  # an id another writer removed since the view: left out
            return {"total": len(ids), "offset": offset,
                    "items": [{"id": i, "pid": meta[i]["pid"], "camera": meta[i]["camera"],
                               "modality": MODALITY_BY_CODE.get(meta[i]["modality"])} for i in part if i in meta]}
        return await self.on_index(page)

    async def health(self) -> dict[str, Any]:
        """Model, index size and device."""
        ident = self.index.identity
        count = await self.on_index(len, self.index)
        structure = await self.on_index(lambda: self.index.store.get("structure") or {})
        return {"status": "ok", "model": {"checkpoint": ident["checkpoint"], "sha256": ident["checkpoint_sha256"],
                                          "image_size": ident["image_size"], "feature_dim": ident["feature_dim"]},
                "index": {"folder": str(self.index.folder), "images": count, "kind": structure.get("kind")},
                "device": str(self.extractor.runtime.device)}


def _open_index(folder: str | Path, checkpoint: str | Path | None, device: str | None) -> GalleryIndex:
    """The index with its model (its own checkpoint unless another one, checked by sha256, is given)."""
    probe = GalleryIndex.open(folder)
    ckpt = checkpoint or probe.identity["checkpoint"]
    probe.close()
    if not Path(ckpt).is_file():
        raise DatasetError(f"{folder}: its checkpoint {ckpt} is gone; pass --checkpoint with the same file")
    index = GalleryIndex.open(folder, ckpt, lock_timeout=WRITE_WAIT_S, device=device)
    index.structure  # noqa: B018 - loaded now, so the first search does not pay for it
    return index


@lru_cache(maxsize=4096)
def _thumbnail(path: str, stamp: int, size: int) -> bytes:
    """JPEG bytes of an image scaled to at most `size` pixels high (cached per file version and size)."""
    img = load_rgb(path)
    img.thumbnail((size * 4, size), Image.BILINEAR)
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=88)
    return out.getvalue()
