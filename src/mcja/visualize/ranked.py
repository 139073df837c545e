"""Ranked lists on a protocol: seeded random queries and the hardest ones by AP, each ranking (plain, MSER) a row."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np
from PIL import Image, ImageDraw

from mcja.evaluation.metrics import query_stats
from mcja.utils.io import atomic_path
from mcja.visualize.pictures import ranked_list_image, top_k

HEADER = 16  # pixels of text above each row


def choose_queries(ap: np.ndarray, valid: np.ndarray, n: int, seed: int) -> dict[str, np.ndarray]:
    """{"random": n seeded random queries, "hardest": the n lowest-AP ones}, among queries with a true match."""
    ok = np.flatnonzero(valid)
    rng = np.random.default_rng(seed)
    return {"random": np.sort(rng.choice(ok, min(n, len(ok)), replace=False)),
            "hardest": ok[np.argsort(ap[ok], kind="stable")[:n]]}


def stack_rows(rows: list[tuple[str, Image.Image]], title: str) -> Image.Image:
    """Images one above the other, each under its label line, the whole under a title line."""
    width = max(img.size[0] for _, img in rows)
    height = HEADER + sum(HEADER + img.size[1] for _, img in rows)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    draw.text((6, 2), title, fill=(0, 0, 0))
    y = HEADER
    for label, img in rows:
        draw.text((6, y + 2), label, fill=(0, 0, 120))
        canvas.paste(img, (0, y + HEADER))
        y += HEADER + img.size[1]
    return canvas


def protocol_ranked_lists(out_dir: str | os.PathLike, dists: Mapping[str, np.ndarray], query: Mapping[str, np.ndarray],
                          gallery: Mapping[str, np.ndarray], n: int = 5, k: int = 10, seed: int = 0,
                          exclude: str = "camera") -> list[Path]:
    """One PNG per chosen query: the query then its top-k (green right, red wrong; score, id, camera) per ranking.

    `dists` maps a ranking's name ("plain", "MSER re-ranked") to distances [Nq, Ng]; queries are chosen on the first.
    `query` / `gallery` hold the columns paths, pids, cameras.
    """
    qp, qi, qc = query["paths"], query["pids"], query["cameras"]
    gp, gi, gc = gallery["paths"], gallery["pids"], gallery["cameras"]
    stats = {name: query_stats(d, qi, qc, gi, gc, exclude) for name, d in dists.items()}
    first = next(iter(stats.values()))
    out = []
    for kind, chosen in choose_queries(first.ap, first.valid, n, seed).items():
        for q in chosen:  # a handful of pictures, not the evaluation loop
            eligible = gc != qc[q] if exclude == "camera" else np.ones(len(gp), dtype=bool)
            rows = []
            for name, d in dists.items():
                best = top_k(d[q], eligible, k)
                img = ranked_list_image(qp[q], [gp[i] for i in best], scores=(-d[q, best]).tolist(),
                                        correct=(gi[best] == qi[q]).tolist(),
                                        captions=[f"id {gi[i]} c{gc[i]}" for i in best],
                                        query_caption=f"id {qi[q]} c{qc[q]}")
                rows.append((f"{name}: AP {100 * stats[name].ap[q]:.1f}%", img))
            title = f"{kind} query #{int(q)} (id {qi[q]}, camera {qc[q]}): top {k}, green = same id, red = other id"
            path = Path(out_dir) / f"ranked_{kind}_{int(q):05d}.png"
            with atomic_path(path) as tmp:
                stack_rows(rows, title).save(tmp, format="PNG")
            out.append(path)
    return out
