"""`mcja search`: rank a gallery folder for query images; ranked JSON and a contact sheet per query.

A thin use of `mcja index` (one search path): the gallery is kept as an exact (flat, float32) gallery index in
`<out>/gallery_index/` (`gallery_index_mser/` with --rerank, which needs the MSER views), updated on each call:
only new or changed images (by size and mtime) are extracted, deleted ones dropped. An index made with another
checkpoint, input size or gallery folder is rebuilt. Score: cosine similarity of the L2-normalised features;
with `rerank`, 1 - the MSER re-ranked distance over the queries + their top candidates (see mcja.index.search).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

from mcja.errors import ConfigError, DatasetError
from mcja.inference.extractor import MSER_VIEWS
from mcja.inference.sources import find_images, image_labels
from mcja.utils.io import ensure_writable_dir

INDEX_NAME = "gallery_index"


def search_gallery(
    checkpoint: str | os.PathLike,
    queries: Sequence[str | os.PathLike],
    gallery: str | os.PathLike,
    out: str | os.PathLike,
    top_k: int = 10,
    rerank: bool = False,
    batch_size: int = 64,
    image_size: Sequence[int] | None = None,
    device: str | None = None,
    skip_bad: bool = False,
    progress: bool = True,
    amp: str = "auto",
    mser_preset: str | None = None,
    mser_k1: int | None = None,
    mser_k2: int | None = None,
    mser_lambda: float | None = None,
) -> dict[str, Any]:
    """Rank the images below `gallery` for each query image (or folder of them); writes `out/results.json` and
    one contact-sheet PNG per query, and returns what the JSON holds (`amp`: as in FeatureExtractor; the mser_*
    keywords as in `GalleryIndex.search`)."""
    from mcja.index.search import expand_queries, rerank_params, write_results

    if int(top_k) < 1:
        raise ConfigError(f"--top-k: expected a positive number, got {top_k}")
    params = rerank_params(rerank, mser_preset, mser_k1, mser_k2, mser_lambda)
    start = time.perf_counter()
    out_dir = ensure_writable_dir(out, "--out")  # before any work
    root = Path(gallery).expanduser().absolute()
    paths = find_images(root, exclude=out_dir)  # contact sheets written into the gallery stay out of it
    query_paths = expand_queries(queries, out_dir)
    index = _gallery_index(out_dir / (INDEX_NAME + ("_mser" if rerank else "")), checkpoint, root, rerank,
                           device=device, batch_size=batch_size, image_size=image_size, amp=amp)
    embedded = index.embed(query_paths, skip_bad=skip_bad, progress=progress)  # bad queries fail first
    counts = index.sync(paths, labels=lambda p: image_labels(p, root), drop_missing=True, skip_bad=skip_bad,
                        progress=progress)
    note = f"computed {counts['extracted']}" if counts["extracted"] else f"reused cache ({len(index)} images)"
    extra = {"checkpoint": str(checkpoint), "gallery": str(root), "gallery_features": note,
             "skipped": index.store.errors()}
    return write_results(index, query_paths, embedded, out_dir, top_k, rerank=params or False, extra=extra, start=start)


def _gallery_index(folder: Path, checkpoint: str | os.PathLike, root: Path, rerank: bool, **options: Any) -> Any:
    """The gallery's exact index in `folder`, made again from scratch when it was made for something else."""
    from mcja.index import GalleryIndex

    make = lambda: GalleryIndex.create(folder, checkpoint, views=MSER_VIEWS if rerank else 1, dtype="float32",  # noqa
                                       kind="flat", source={"images": str(root)}, **options)
    try:
        return make()
    except (ConfigError, DatasetError):
        if not (folder / "index.sqlite").is_file():
            raise  # the error is about the checkpoint or the options, not about a stale index
        shutil.rmtree(folder)  # another checkpoint, size or gallery: this folder is only a cache
        return make()
