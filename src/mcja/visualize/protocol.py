"""The figures and verification section of `mcja test --figures N` and `mcja visualize`, linked from results.md.

Inputs are test features of both modalities ([V, N, D], view 0 the image itself) with their columns (paths,
pids, cameras). Ranked lists, similarity histograms, verification and t-SNE use infrared queries against
every visible test image; the CMC curves are the protocol's own, per setting.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from mcja.errors import ConfigError, MCJAError
from mcja.evaluation import PROTOCOLS, pair_distance
from mcja.evaluation.figures import cmc_plot, roc_plot, similarity_histograms, tsne_plot
from mcja.evaluation.verification import TARGET_FPRS, verification, verification_json, verification_table
from mcja.utils.io import atomic_write_json, atomic_write_text
from mcja.visualize.pictures import top_k
from mcja.visualize.ranked import choose_queries, protocol_ranked_lists

Columns = Mapping[str, np.ndarray]
Link = tuple[str, str]  # (caption, path relative to the report)


def slug(text: str) -> str:
    """A file-name-safe version of a setting name."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def cmc_figures(results: Mapping[str, Any], out_dir: Path) -> list[Link]:
    """One CMC plot (ranks 1-20) per protocol setting or direction: plain and, when present, MSER re-ranked."""
    links = []
    for setting, plain in results["plain"].items():
        curves = {"plain": plain["cmc"]}
        if setting in (results.get("mser") or {}):
            curves["MSER re-ranked"] = results["mser"][setting]["cmc"]
        path = cmc_plot(curves, out_dir / f"cmc_{slug(setting)}.png", title=f"CMC: {setting}")
        links.append((f"CMC curve, {setting}", f"figures/{path.name}"))
    return links


def distances(ir: torch.Tensor, vis: torch.Tensor, protocol: str, mser: bool) -> dict[str, np.ndarray]:
    """Infrared-to-visible distances: plain cosine, and MSER re-ranked when asked (the protocol's parameters)."""
    out = {"plain": pair_distance(ir, vis[:1])}
    if mser and vis.shape[0] == 4:
        out["MSER re-ranked"] = pair_distance(ir, vis, "mser", **PROTOCOLS[protocol].mser.as_kwargs())
    return out


def activation_figures(model: torch.nn.Module, dist: np.ndarray, ir: Columns, vis: Columns, queries: Sequence[int],
                       size: Sequence[int], out_dir: Path, k: int = 5) -> list[Link]:
    """Activation maps of each query and its top-k visible images (plain ranking)."""
    from mcja.visualize.activation import explain_images

    links = []
    for q in queries:
        best = top_k(dist[q], vis["cameras"] != ir["cameras"][q], k)
        paths = [ir["paths"][q]] + [vis["paths"][i] for i in best]
        captions = [f"query id {ir['pids'][q]}"] + [f"#{r + 1} id {vis['pids'][i]}" for r, i in enumerate(best)]
        path = explain_images(model, paths, size, out_dir / f"activation_{int(q):05d}.png", captions,
                              title=f"Activation maps: infrared query #{int(q)} and its top {k} visible images")
        links.append((f"activation maps, query #{int(q)}", f"figures/{path.name}"))
    return links


def write_figures(out_dir: Path, ir_feats: torch.Tensor, ir: Columns, vis_feats: torch.Tensor, vis: Columns,
                  results: Mapping[str, Any], ver: dict[str, Any], n: int, protocol: str = "pair",
                  model: torch.nn.Module | None = None, image_size: Sequence[int] | None = None,
                  seed: int = 0) -> tuple[list[Link], list[str]]:
    """Every figure into out_dir/figures; returns (links, notes on figures that were left out and why)."""
    fig_dir = out_dir / "figures"
    links: list[Link] = [("verification ROC", f"figures/{roc_plot(ver, fig_dir / 'roc.png').name}")]
    links += cmc_figures(results, fig_dir)
    similarity_histograms(ir_feats, ir["pids"], vis_feats[0], vis["pids"], fig_dir / "similarity.png")
    links.append(("cosine similarity, same vs different identity", "figures/similarity.png"))
    notes = []
    try:
        feats = torch.cat([torch.as_tensor(vis_feats[0]), torch.as_tensor(ir_feats[0])])
        mods = np.r_[np.zeros(len(vis["pids"]), int), np.ones(len(ir["pids"]), int)]
        tsne_plot(feats, np.r_[vis["pids"], ir["pids"]], mods, fig_dir / "tsne.png", seed=seed)
        links.append(("t-SNE of test features", "figures/tsne.png"))
    except MCJAError as err:  # scikit-learn is optional: the other figures still get written
        notes.append(f"t-SNE left out: {err}")
    dists = distances(ir_feats, vis_feats, protocol, mser="mser" in results)
    stats_ap = pair_ap(dists["plain"], ir, vis)
    matched = int(stats_ap[1].sum())  # the queries a ranked list can show: those with a true match
    if n > matched:
        notes.append(f"--figures {n}: only {matched} queries with a true match, drawing {matched}")
    for path in protocol_ranked_lists(fig_dir, dists, ir, vis, n=n, seed=seed):
        links.append((f"ranked list, {path.stem.split('_')[1]} query #{int(path.stem.split('_')[2])}", f"figures/{path.name}"))
    if model is not None and image_size is not None:
        queries = choose_queries(stats_ap[0], stats_ap[1], min(n, 3), seed)["random"]
        links += activation_figures(model, dists["plain"], ir, vis, queries, image_size, fig_dir)
    return links, notes


def pair_ap(dist: np.ndarray, ir: Columns, vis: Columns) -> tuple[np.ndarray, np.ndarray]:
    """(AP, has a true match) of each infrared query against the visible test images."""
    from mcja.evaluation.metrics import query_stats

    s = query_stats(dist, ir["pids"], ir["cameras"], vis["pids"], vis["cameras"], "camera")
    return s.ap, s.valid


def figures_section(links: Sequence[Link], notes: Sequence[str]) -> str:
    """Markdown: each figure as a captioned image link."""
    lines = ["## Figures", "", "Infrared queries against every visible test image, except the CMC curves (the "
             "protocol's settings).", ""]
    for caption, rel in links:
        lines += [f"### {caption}", "", f"![{caption}]({rel})", ""]
    lines += [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def add_to_report(stem: Path, ver: dict[str, Any], links: Sequence[Link] = (), notes: Sequence[str] = ()) -> None:
    """Append the verification section (and figures) to `<stem>.md`; add "verification" to `<stem>.json`."""
    md, js = stem.with_suffix(".md"), stem.with_suffix(".json")
    text = md.read_text(encoding="utf-8") if md.exists() else ""
    text = text.rstrip("\n") + "\n\n" + verification_table(ver)
    if links or notes:
        text += "\n" + figures_section(links, notes)
    atomic_write_text(md, text)
    data = json.loads(js.read_text(encoding="utf-8")) if js.exists() else {}
    data["verification"] = verification_json(ver)
    if links:
        data["figures"] = [rel for _, rel in links]
    atomic_write_json(js, data)


def report_extras(out_dir: str | Path, features: Mapping[str, torch.Tensor], vis: Columns, ir: Columns,
                  results: Mapping[str, Any], figures: int = 0, protocol: str = "pair",
                  model: torch.nn.Module | None = None, image_size: Sequence[int] | None = None,
                  fprs: Sequence[float] = TARGET_FPRS) -> dict[str, Any]:
    """Verification (always; TPR and threshold at each of `fprs`) and, with figures > 0, every figure; both added
    to out_dir/results.md and .json."""
    if figures < 0:
        raise ConfigError(f"--figures {figures}: expected 0 or more")
    out_dir = Path(out_dir)
    ir_feats, vis_feats = features["infrared"], features["visible"]
    ver = verification(ir_feats[0], ir["pids"], vis_feats[0], vis["pids"], fprs)
    links, notes = [], []
    if figures > 0:
        links, notes = write_figures(out_dir, ir_feats, ir, vis_feats, vis, results, ver, figures, protocol, model,
                                     image_size)
    add_to_report(out_dir / "results", ver, links, notes)
    return {"verification": ver, "figures": [out_dir / rel for _, rel in links], "notes": notes}
