"""Figures drawn from features and labels alone: ROC, CMC curves, cosine-similarity histograms, a t-SNE embedding.

matplotlib (`mcja[plot]`) and scikit-learn (`mcja[figures]`, t-SNE only) are imported lazily.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from mcja.errors import MCJAError
from mcja.evaluation._arrays import as_views, labels, to_numpy
from mcja.evaluation.metrics import cosine_distance
from mcja.evaluation.verification import equal_error_rate
from mcja.utils.io import atomic_path

BINS = np.linspace(-1.0, 1.0, 101)  # cosine similarity bins
_ROWS = 1024  # rows per similarity block: bounded memory on whole test sets


def pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend, or an error saying which extra to install."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MCJAError("figures need matplotlib: pip install 'mcja[plot]'") from None
    return plt


def save_figure(fig: Any, out_path: str | os.PathLike) -> Path:
    """Write a matplotlib figure as PNG atomically and close it."""
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    pyplot().close(fig)
    return Path(out_path)


def roc_plot(result: dict[str, Any], out_path: str | os.PathLike, title: str = "Cross-modality verification ROC") -> Path:
    """The ROC of `verification(...)` on a log FPR axis, with the target FPRs and the EER marked."""
    plt = pyplot()
    roc = result["roc"]
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    keep = roc["fpr"] > 0  # a log axis cannot show FPR = 0
    ax.plot(roc["fpr"][keep], 100 * roc["tpr"][keep], label="ROC (all cross-modality pairs)")
    for fpr, tpr in result["tpr_at_fpr"].items():
        ax.plot([float(fpr)], [tpr], "o", label=f"TPR {tpr:.1f}% at FPR {fpr}")
    eer = result["eer"]
    ax.plot([eer / 100], [100 - eer], "k*", markersize=10, label=f"EER {eer:.2f}% (cos {result['eer_threshold']:.3f})")
    low = max(min(float(f) for f in result["tpr_at_fpr"]) / 2, float(roc["fpr"][keep].min()) if keep.any() else 1e-6)
    ax.set(xscale="log", xlim=(low, 1), ylim=(0, 100.5), xlabel="false positive rate (different-id pairs accepted)",
           ylabel="true positive rate (%)", title=title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return save_figure(fig, out_path)


def cmc_plot(curves: Mapping[str, Any], out_path: str | os.PathLike, max_rank: int = 20, title: str = "CMC") -> Path:
    """Plot CMC curves (label -> curve in percent, rank 1 first) to a PNG; needs matplotlib (`mcja[plot]`)."""
    fig, ax = pyplot().subplots(figsize=(5, 4))
    from matplotlib.ticker import MaxNLocator  # after pyplot(): that says which extra is missing
    for label, curve in curves.items():
        c = np.asarray(curve, dtype=float)[:max_rank]
        ax.plot(np.arange(1, len(c) + 1), c, marker="o", markersize=3, label=label)
    ax.set(xlabel="rank", ylabel="matching rate (%)", title=title, ylim=(0, 100.5))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    return save_figure(fig, out_path)


def _pair_histograms(a: np.ndarray, a_ids: np.ndarray, b: np.ndarray | None, b_ids: np.ndarray | None) -> np.ndarray:
    """Counts [2, bins] of cosine similarity for same-id / different-id pairs of a x b, or of a's distinct pairs."""
    counts = np.zeros((2, len(BINS) - 1), dtype=np.int64)
    other, other_ids = (a, a_ids) if b is None else (b, b_ids)
    for start in range(0, len(a), _ROWS):  # blocks of rows: bounded memory
        sim = -to_numpy(cosine_distance(a[start:start + _ROWS], other))
        same = a_ids[start:start + _ROWS, None] == other_ids[None, :]
        keep = np.ones_like(same)
        if b is None:  # within one set: each unordered pair once, no self-pairs
            keep = np.arange(len(other))[None, :] > np.arange(start, start + len(sim))[:, None]
        counts[0] += np.histogram(sim[same & keep], BINS)[0]
        counts[1] += np.histogram(sim[~same & keep], BINS)[0]
    return counts


def binned_eer(counts: np.ndarray) -> tuple[float, float]:
    """(EER, cosine threshold) from same/different-id histogram counts [2, bins] (a bin-edge approximation)."""
    same, diff = counts[:, ::-1].cumsum(axis=1)  # accepted pairs as the threshold falls bin by bin
    if same[-1] == 0 or diff[-1] == 0:
        return float("nan"), float("nan")
    roc = {"fpr": np.r_[0.0, diff / diff[-1]], "tpr": np.r_[0.0, same / same[-1]], "threshold": np.r_[np.inf, BINS[::-1][1:]]}
    return equal_error_rate(roc)


def similarity_histograms(query_feats: Any, query_ids: Any, gallery_feats: Any, gallery_ids: Any,
                          out_path: str | os.PathLike, names: Sequence[str] = ("infrared", "visible"),
                          title: str = "Cosine similarity of image pairs") -> dict[str, Any]:
    """Histograms of same-id vs different-id similarity, cross-modality and within each modality, EER on each panel.

    Returns the figure path and each panel's (binned) EER in percent with its threshold.
    """
    q, g = to_numpy(as_views(query_feats)[0]), to_numpy(as_views(gallery_feats)[0])
    qids, gids = labels(query_ids, "query_ids", len(q)), labels(gallery_ids, "gallery_ids", len(g))
    panels = {f"cross-modality ({names[0]} vs {names[1]})": _pair_histograms(q, qids, g, gids),
              f"within modality ({names[0]} pairs and {names[1]} pairs)":
                  _pair_histograms(q, qids, None, None) + _pair_histograms(g, gids, None, None)}
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    centres, out = (BINS[1:] + BINS[:-1]) / 2, {"path": Path(out_path)}
    for ax, (name, counts) in zip(axes, panels.items()):
        for row, label, colour in ((0, "same identity", "tab:green"), (1, "different identities", "tab:red")):
            total = max(int(counts[row].sum()), 1)
            ax.fill_between(centres, counts[row] / total, step="mid", alpha=0.45, color=colour,
                            label=f"{label} ({total:,} pairs)")
        eer, thr = binned_eer(counts)
        out[name] = {"eer": 100 * eer, "threshold": thr}
        if np.isfinite(eer):
            ax.axvline(thr, color="k", linestyle="--", label=f"equal error point: {100 * eer:.1f}% at cos {thr:.2f}")
        ax.set(title=name, xlabel="cosine similarity", ylabel="fraction of pairs")
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(title)
    save_figure(fig, out_path)
    return out


def tsne_plot(features: Any, ids: Any, modality: Any, out_path: str | os.PathLike, num_ids: int = 10, seed: int = 0,
              names: Sequence[str] = ("visible", "infrared"), title: str = "t-SNE of test features") -> Path:
    """2-D t-SNE of a seeded subset of identities: colour = identity, marker = modality (0 visible, 1 infrared)."""
    try:
        from sklearn.manifold import TSNE
    except ImportError:
        raise MCJAError("the t-SNE figure needs scikit-learn: pip install 'mcja[figures]'") from None
    x = to_numpy(as_views(features)[0])
    pids, mods = labels(ids, "ids", len(x)), labels(modality, "modality", len(x))
    chosen = np.sort(np.random.default_rng(seed).choice(np.unique(pids), min(num_ids, len(np.unique(pids))), replace=False))
    keep = np.isin(pids, chosen)
    if keep.sum() < 3:
        raise MCJAError(f"t-SNE needs at least 3 images, the chosen identities have {int(keep.sum())}")
    xy = TSNE(n_components=2, init="pca", random_state=seed, perplexity=min(30.0, keep.sum() - 1.0)).fit_transform(x[keep])
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 6))
    cmap = plt.get_cmap("tab20" if len(chosen) > 10 else "tab10")
    colour = {pid: cmap(i % cmap.N) for i, pid in enumerate(chosen)}
    for m, (marker, name) in enumerate(zip("o^", names)):
        sel = mods[keep] == m
        ax.scatter(xy[sel, 0], xy[sel, 1], c=[colour[p] for p in pids[keep][sel]], marker=marker, s=28,
                   edgecolors="k", linewidths=0.3, label=f"{name} (marker {'circle' if m == 0 else 'triangle'})")
    for pid in chosen:  # one invisible point per identity: its colour in the legend
        ax.scatter([], [], color=colour[pid], marker="s", label=f"id {pid}")
    ax.set(title=f"{title} ({len(chosen)} identities, seed {seed}; colour = identity)",
           xlabel="t-SNE dimension 1", ylabel="t-SNE dimension 2")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    return save_figure(fig, out_path)
