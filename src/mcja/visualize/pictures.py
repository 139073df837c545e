"""Ranked-list pictures: a query and its top-k gallery thumbnails (green/red borders, scores), drawn from image paths.

Needs only PIL; the images are read here, so `mcja.evaluation` stays on features and labels.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw

from mcja.data.images import load_rgb
from mcja.evaluation._arrays import labels, to_numpy
from mcja.utils.io import atomic_path

GREEN, RED, GREY, BLUE, WHITE = (0, 170, 0), (220, 0, 0), (150, 150, 150), (40, 90, 220), (255, 255, 255)
THUMB = (128, 64)  # height, width of one thumbnail
BORDER, GAP, TEXT_H = 4, 6, 16


def _thumb(path: str | os.PathLike, colour: tuple[int, int, int], size: tuple[int, int]) -> Image.Image:
    """The image resized to `size` (height, width) inside a coloured border."""
    h, w = size
    img = load_rgb(path).resize((w, h), Image.BILINEAR)
    framed = Image.new("RGB", (w + 2 * BORDER, h + 2 * BORDER), colour)
    framed.paste(img, (BORDER, BORDER))
    return framed


def ranked_list_image(
    query_path: str | os.PathLike,
    gallery_paths: Sequence[str | os.PathLike],
    scores: Sequence[float] | None = None,
    correct: Sequence[bool] | None = None,
    size: tuple[int, int] = THUMB,
    captions: Sequence[str] | None = None,
    query_caption: str = "query",
) -> Image.Image:
    """Query (blue border) then ranked gallery thumbnails: green/red border when `correct` says, grey if None.

    The score of each gallery item is written under it, then its caption (e.g. id and camera) when given.
    """
    n = len(gallery_paths)
    tile_w, tile_h = size[1] + 2 * BORDER, size[0] + 2 * BORDER
    text_h = TEXT_H * (2 if captions is not None else 1)
    canvas = Image.new("RGB", ((n + 1) * (tile_w + GAP) + 2 * GAP, tile_h + text_h + 2 * GAP), WHITE)
    draw = ImageDraw.Draw(canvas)
    canvas.paste(_thumb(query_path, BLUE, size), (GAP, GAP))
    draw.text((GAP, GAP + tile_h + 1), query_caption, fill=(0, 0, 0))
    for i, path in enumerate(gallery_paths):
        colour = GREY if correct is None else (GREEN if correct[i] else RED)
        x = GAP + (i + 1) * (tile_w + GAP) + GAP  # an extra gap separates the query from its list
        canvas.paste(_thumb(path, colour, size), (x, GAP))
        if scores is not None:
            draw.text((x, GAP + tile_h + 1), f"{scores[i]:.3f}", fill=(0, 0, 0))
        if captions is not None:
            draw.text((x, GAP + tile_h + 1 + TEXT_H), captions[i], fill=(0, 0, 0))
    return canvas


def save_ranked_list(out_path: str | os.PathLike, *args: Any, **kwargs: Any) -> Path:
    """ranked_list_image(...) written as a PNG at `out_path` (atomically); returns the path."""
    img = ranked_list_image(*args, **kwargs)
    with atomic_path(out_path) as tmp:
        img.save(tmp, format="PNG")
    return Path(out_path)


def top_k(dist_row: np.ndarray, eligible: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k closest eligible gallery items, in the metrics' order (stable ascending distance)."""
    idx = np.flatnonzero(eligible)
    return idx[np.argsort(dist_row[idx], kind="stable")[:k]]


def ranked_list_pictures(
    out_dir: str | os.PathLike,
    dist: Any,
    query_paths: Sequence[str],
    query_ids: Any,
    gallery_paths: Sequence[str],
    gallery_ids: Any,
    queries: Sequence[int] | int = 5,
    k: int = 10,
    query_cams: Any = None,
    gallery_cams: Any = None,
    seed: int = 0,
) -> list[Path]:
    """PNG ranked lists for chosen query indices, or for `queries` random ones (seeded); scores = -distance.

    With cameras given, gallery items from the query's camera are left out, as in the metrics.
    """
    dist = np.asarray(to_numpy(dist))
    qids, gids = labels(query_ids, "query_ids", dist.shape[0]), labels(gallery_ids, "gallery_ids", dist.shape[1])
    if isinstance(queries, int):
        queries = np.random.default_rng(seed).choice(dist.shape[0], min(queries, dist.shape[0]), replace=False)
    paths = []
    for q in queries:  # one picture per chosen query: a handful, not the evaluation loop
        eligible = np.ones(dist.shape[1], dtype=bool)
        if query_cams is not None and gallery_cams is not None:
            eligible = labels(gallery_cams, "gallery_cams", dist.shape[1]) != labels(query_cams, "query_cams", dist.shape[0])[q]
        best = top_k(dist[q], eligible, k)
        out = Path(out_dir) / f"query_{int(q):05d}.png"
        paths.append(save_ranked_list(out, query_paths[q], [gallery_paths[i] for i in best],
                                      scores=(-dist[q, best]).tolist(), correct=(gids[best] == qids[q]).tolist()))
    return paths

