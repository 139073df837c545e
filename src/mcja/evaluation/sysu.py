"""SYSU-MM01 gallery trials: reading `rand_perm_cam.mat` and selecting each trial's gallery images.

Trial t of a setting takes, for every gallery camera of the mode and every test identity, the first
`shots` image numbers of row t of that (camera, identity) entry (see docs DATASETS.md).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from mcja.errors import DatasetError
from mcja.evaluation._arrays import as_views, labels, to_numpy
from mcja.evaluation.evaluate import mean_over_trials, pair_protocol, warn_view0
from mcja.evaluation.metrics import QueryStats, pairwise_dot, query_groups, rank_metrics, subset_stats, summarize
from mcja.evaluation.mser import MSER_PRESETS, MserParams, MserReranker, resolve_mser
from mcja.evaluation.side import Side

GALLERY_CAMS: dict[str, tuple[int, ...]] = {"all": (1, 2, 4, 5), "indoor": (1, 2)}
SYSU_SETTINGS: tuple[tuple[str, int], ...] = (("all", 1), ("all", 10), ("indoor", 1), ("indoor", 10))
NUM_CAMERAS = 6


def load_rand_perm(perm: str | os.PathLike | np.ndarray | Mapping[str, Any]) -> np.ndarray:
    """The `rand_perm_cam` object array (6 cameras) from a .mat path, a loadmat dict or the array itself."""
    source = "rand_perm_cam"
    if isinstance(perm, (str, os.PathLike)):
        source = os.fspath(perm)
        perm = _loadmat(source)
    if isinstance(perm, Mapping):
        if "rand_perm_cam" not in perm:
            raise DatasetError(f"{source}: no 'rand_perm_cam' variable in the .mat file")
        perm = perm["rand_perm_cam"]
    arr = np.asarray(perm, dtype=object)
    if arr.size < NUM_CAMERAS:
        raise DatasetError(f"{source}: rand_perm_cam has {arr.size} camera entries, expected {NUM_CAMERAS}")
    for cam in range(1, NUM_CAMERAS + 1):
        _camera_entries(arr, cam, source)
    return arr


def _loadmat(path: str) -> dict[str, Any]:
    """scipy.io.loadmat with errors turned into a DatasetError naming the file."""
    from scipy.io import loadmat

    if not os.path.isfile(path):
        raise DatasetError(f"{path}: rand_perm_cam.mat not found (copy it into the dataset's exp/ folder)")
    try:
        return loadmat(path)
    except Exception as err:  # scipy raises several unrelated types for a corrupt file
        raise DatasetError(f"{path}: cannot read as a MATLAB file ({err.__class__.__name__}: {err})") from None


def _camera_entries(perm: np.ndarray, cam: int, source: str = "rand_perm_cam") -> np.ndarray:
    """The per-person entries of camera `cam` (1-based) as a flat object array indexed by pid - 1."""
    try:
        entries = perm.reshape(-1)[cam - 1]
    except IndexError:
        raise DatasetError(f"{source}: no entry for camera {cam}") from None
    if not isinstance(entries, np.ndarray) or entries.dtype != object:
        raise DatasetError(f"{source}: camera {cam} entry is not a cell array of per-person permutations")
    return entries.reshape(-1)


def _trial_numbers(entry: Any, trials: np.ndarray, shots: int, where: str) -> np.ndarray:
    """Image numbers [len(trials), <= shots]: the first `shots` of each requested row of one entry."""
    arr = np.asarray(entry)
    if arr.size == 0:
        return np.zeros((len(trials), 0), dtype=np.int64)
    if arr.ndim != 2:
        raise DatasetError(f"{where}: expected a (trials, images) array, got shape {arr.shape}")
    if len(trials) and trials.max() >= arr.shape[0]:
        raise DatasetError(f"{where}: trial {trials.max()} requested but only {arr.shape[0]} trials are stored")
    return arr[trials, :shots].astype(np.int64)


def image_numbers(paths: Sequence[str | os.PathLike]) -> np.ndarray:
    """SYSU-MM01 image numbers: the integer file stems of `.../camC/PPPP/NNNN.jpg` paths."""
    try:  # os.path rather than PurePath: a tenth of the time, the same stems for such paths
        return np.array([int(os.path.splitext(os.path.basename(os.fspath(p)))[0]) for p in paths], dtype=np.int64)
    except ValueError as err:
        raise DatasetError(f"gallery path without a numeric file name ({err}); expected .../camC/PPPP/NNNN.jpg") from None


def _keys(cams: np.ndarray, ids: np.ndarray, numbers: np.ndarray) -> np.ndarray:
    """One int64 key per (camera, id, image number) triple."""
    return (cams.astype(np.int64) * 100_000 + ids.astype(np.int64)) * 1_000_000 + numbers.astype(np.int64)


def _selected_keys(
    perm: np.ndarray, cams: Sequence[int], ids: np.ndarray, trials: np.ndarray, shots: int
) -> tuple[np.ndarray, np.ndarray]:
    """(trial index, key) of every image that the requested trials put in the gallery."""
    trial_idx, keys = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    for cam in cams:
        entries = _camera_entries(perm, cam)
        for pid in ids[(ids >= 1) & (ids <= len(entries))]:
            nums = _trial_numbers(entries[pid - 1], trials, shots, f"rand_perm_cam camera {cam} person {pid}")
            trial_idx.append(np.repeat(np.arange(len(trials)), nums.shape[1]))
            keys.append(_keys(np.full(nums.size, cam), np.full(nums.size, pid), nums.reshape(-1)))
    return np.concatenate(trial_idx), np.concatenate(keys)


def sysu_trial_masks(
    gallery_paths: Sequence[str | os.PathLike],
    gallery_cams: Any,
    gallery_ids: Any,
    perm: str | os.PathLike | np.ndarray,
    mode: str = "all",
    shots: int = 1,
    trials: int | Sequence[int] = 10,
) -> np.ndarray:
    """Boolean masks [T, N] over the gallery arrays: which images each trial's gallery holds."""
    cams = labels(gallery_cams, "gallery_cams", len(gallery_paths))
    ids = labels(gallery_ids, "gallery_ids", len(gallery_paths))
    in_mode = np.isin(cams, GALLERY_CAMS.get(mode, ()))
    numbers = np.full(len(cams), -1, dtype=np.int64)
    numbers[in_mode] = image_numbers(np.asarray(gallery_paths, dtype=object)[in_mode])
    return _trial_masks(numbers, cams, ids, load_rand_perm(perm), mode, shots, trials)


def _trial_masks(numbers: np.ndarray, cams: np.ndarray, ids: np.ndarray, perm: np.ndarray, mode: str, shots: int,
                 trials: int | Sequence[int]) -> np.ndarray:
    """sysu_trial_masks from the gallery's image numbers (parsed once per protocol run; -1 where unknown)."""
    if mode not in GALLERY_CAMS:
        raise ValueError(f"mode must be one of {sorted(GALLERY_CAMS)}, got {mode!r}")
    if shots < 1:
        raise ValueError(f"shots must be >= 1, got {shots}")
    in_mode = np.isin(cams, GALLERY_CAMS[mode])
    keys = np.full(len(cams), -1, dtype=np.int64)
    keys[in_mode] = _keys(cams[in_mode], ids[in_mode], numbers[in_mode])
    test_ids = np.unique(ids[in_mode])
    trial_arr = np.arange(trials) if isinstance(trials, int) else np.asarray(trials, dtype=np.int64).reshape(-1)
    if len(trial_arr) and trial_arr.min() < 0:
        raise ValueError(f"trial numbers must be >= 0, got {trial_arr.min()}")
    which, chosen = _selected_keys(perm, GALLERY_CAMS[mode], test_ids, trial_arr, shots)
    masks = np.zeros((len(trial_arr), len(cams)), dtype=bool)
    # every gallery image holding a chosen key (one search for all trials; a listed image may repeat)
    by_key = np.flatnonzero(in_mode)[np.argsort(keys[in_mode], kind="stable")]
    lo, hi = np.searchsorted(keys[by_key], chosen, "left"), np.searchsorted(keys[by_key], chosen, "right")
    hits = hi - lo
    first = np.repeat(lo - (np.cumsum(hits) - hits), hits)  # hit i of key j: lo[j] + i, counted over all keys
    masks[np.repeat(which, hits), by_key[np.arange(hits.sum()) + first]] = True
    return masks


def sysu_trial_gallery(
    gallery_paths: Sequence[str | os.PathLike],
    gallery_cams: Any,
    gallery_ids: Any,
    perm: str | os.PathLike | np.ndarray,
    mode: str = "all",
    shots: int = 1,
    trial: int = 0,
) -> np.ndarray:
    """Boolean mask over the gallery arrays selecting trial `trial`'s gallery (`mode` "all" or "indoor")."""
    return sysu_trial_masks(gallery_paths, gallery_cams, gallery_ids, perm, mode, shots, [trial])[0]


def sysu_gallery_sizes(gallery_paths: Sequence[str | os.PathLike], gallery_cams: Any, gallery_ids: Any,
                       perm: str | os.PathLike | np.ndarray, trials: int = 10) -> dict[str, list[int]]:
    """Gallery images of each trial per setting, keyed 'all/1-shot', 'all/10-shot', ... (what `mcja data-info` shows)."""
    perm = load_rand_perm(perm)
    return {f"{mode}/{shots}-shot": [int(n) for n in sysu_trial_masks(gallery_paths, gallery_cams, gallery_ids, perm,
                                                                        mode, shots, trials).sum(1)]
            for mode, shots in SYSU_SETTINGS}


def sysu_query_cams(query_cams: Any) -> np.ndarray:
    """Query cameras with the same-location rule applied (cam 3 counts as cam 2), as a fresh array."""
    cams = np.array(to_numpy(query_cams), dtype=np.int64).reshape(-1)
    cams[cams == 3] = 2
    return cams


def setting_name(mode: str, shots: int) -> str:
    """Human name of a SYSU-MM01 setting, e.g. 'all-search single-shot' (the rows of its results)."""
    return f"{mode}-search {'single' if shots == 1 else 'multi'}-shot" if shots in (1, 10) else f"{mode}-search {shots}-shot"


def _take_rows(x: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
    """x[rows]; on the CPU through numpy (a third of the time of torch's indexing for [6,000, 2,048] float32)."""
    if x.device.type != "cpu":
        return x[torch.as_tensor(rows, device=x.device)]
    return torch.from_numpy(np.take(x.numpy(), rows, axis=0))


class _PlainDistances:
    """Cosine distances of each query camera group to every eligible gallery image used by any trial."""

    def __init__(self, q: torch.Tensor, qids: np.ndarray, qcams: np.ndarray, g: torch.Tensor,
                 gids: np.ndarray, gcams: np.ndarray, used: np.ndarray) -> None:
        uniq, inv = np.unique(np.concatenate([qids, gids]), return_inverse=True)
        self.nq, self.gids = len(qids), gids
        self.qcode, self.gcode = inv[: len(qids)], inv[len(qids):]
        by_code = np.flatnonzero(used)[np.argsort(self.gcode[used], kind="stable")]
        q, g = -F.normalize(q, dim=1), F.normalize(g, dim=1)  # once for both groups; negated: distances
        self.groups = []
        for cam, rows in query_groups(qcams, "camera"):
            cols = by_code[gcams[by_code] != cam]
            dist = pairwise_dot(_take_rows(q, rows), _take_rows(g, cols))
            self.groups.append((rows, to_numpy(dist), cols))

    def metrics(self, masks: np.ndarray, done: Callable[[int], Any]) -> list[dict[str, Any]]:
        """Metrics of each trial whose gallery is masks[t] ([T, N] bool): one sort of each query's distances serves
        every trial (subset_stats). `done(k)` is told when k trials are finished."""
        stats = [np.zeros((len(masks), self.nq)), np.zeros((len(masks), self.nq)),
                 np.zeros((len(masks), self.nq), dtype=np.int64), np.zeros((len(masks), self.nq), dtype=np.int64)]
        for rows, dist, cols in self.groups:
            # ties between equal distances go to the lower gallery index, as in ranking each trial's gallery alone
            for arr, val in zip(stats, subset_stats(dist, self.qcode[rows], self.gcode[cols], cols, masks[:, cols])):
                arr[:, rows] = val
        ap, inp, rank, counts = stats
        done(len(masks))
        return [summarize(QueryStats(counts[t] > 0, ap[t], inp[t], rank[t]), len(np.unique(self.gids[mask])))
                for t, mask in enumerate(masks)]


class _RerankedDistances:
    """MSER re-ranking of each trial's gallery against one query side shared by all trials (MserReranker)."""

    def __init__(self, query_feats: Any, g_views: torch.Tensor, used: np.ndarray, labels: tuple[np.ndarray, ...],
                 rerank_params: dict[str, Any]) -> None:
        self.used = np.flatnonzero(used)
        g_used = g_views[:, torch.as_tensor(self.used, device=g_views.device)]
        self.reranker = MserReranker(as_views(query_feats), g_used, **rerank_params)
        self.qids, self.qcams, self.gids, self.gcams = labels

    def metrics(self, masks: np.ndarray, done: Callable[[int], Any]) -> list[dict[str, Any]]:
        """Metrics of each trial whose gallery is masks[t], re-ranked; `done(1)` after each trial."""
        out = []
        for mask in masks:
            dist = to_numpy(self.reranker.rerank(np.searchsorted(self.used, np.flatnonzero(mask))))
            out.append(rank_metrics(dist, self.qids, self.qcams, self.gids[mask], self.gcams[mask]))
            done(1)
        return out


def sysu_protocol(
    query: Side,
    gallery: Side,
    perm: str | os.PathLike | np.ndarray,
    settings: Sequence[tuple[str, int]] = SYSU_SETTINGS,
    trials: int = 10,
    mser: MserParams | None = None,
    progress: bool = False,
) -> dict[str, dict[str, Any]]:
    """SYSU-MM01 results per setting name ('all-search single-shot', ...): means over trials + "trials".

    `query` is the infrared side (the cam-3 -> cam-2 same-location rule is applied to a copy of its cameras),
    `gallery` every visible test image with its paths. Work shared by the settings and trials is done once: plain
    ranking computes each query-gallery cosine once and sorts each query's distances once for every trial
    (`metrics.subset_stats`: exact, ties by gallery index as in ranking a trial's gallery alone); with `mser`
    (MSER_PRESETS["sysu"] is the published setting) the query-side neighbour structure and the query-gallery
    distances are computed once and each trial's gallery is re-ranked against them. `progress` shows a bar of the
    trials (re-ranking takes minutes on the real dataset).
    """
    query = query.with_cams(sysu_query_cams(query.cams))
    paths, gids, gcams = gallery.require_paths("the SYSU-MM01 protocol"), gallery.ids, gallery.cams
    perm = load_rand_perm(perm)
    numbers = np.full(len(gallery), -1, dtype=np.int64)
    known = np.isin(gcams, sorted(set().union(*GALLERY_CAMS.values())))  # parsed once for every setting
    numbers[known] = image_numbers(paths[known])
    masks = {(m, s): _trial_masks(numbers, gcams, gids, perm, m, s, trials) for m, s in settings}
    used = np.any([mk.any(0) for mk in masks.values()], axis=0)
    if mser is None:
        warn_view0(query.views, gallery.views)
        cache = _PlainDistances(query.feats[0], query.ids, query.cams, gallery.feats[0], gids, gcams, used)
    else:
        cache = _RerankedDistances(query.feats, gallery.feats, used, (query.ids, query.cams, gids, gcams),
                                   mser.as_kwargs())
    return _per_setting(cache, masks, f"{'MSER ' if mser else ''}SYSU-MM01 trials", progress)


def sysu_whole_gallery(query: Side, gallery: Side, mser: MserParams | None = None,
                       modes: Sequence[str] = tuple(GALLERY_CAMS)) -> dict[str, dict[str, Any]]:
    """SYSU-MM01 search modes against every visible test image of the mode's cameras (no trials: for a copy of the
    dataset without exp/rand_perm_cam.mat; the figures are not comparable with published ones)."""
    query = query.with_cams(sysu_query_cams(query.cams))  # the same-location rule still applies
    return {f"{mode}-search whole gallery": pair_protocol(query, gallery.take(np.isin(gallery.cams, GALLERY_CAMS[mode])),
                                                          mser) for mode in modes}


def _per_setting(cache: Any, masks: dict[tuple[str, int], np.ndarray], desc: str, progress: bool) -> dict[str, Any]:
    """Means over each setting's trials from `cache`, with a progress bar of one step per trial."""
    if not masks:
        return {}
    every = np.concatenate(list(masks.values()))
    with tqdm(total=len(every), desc=desc, unit="trial", leave=False, disable=not progress) as bar:
        per_trial = iter(cache.metrics(every, bar.update))
    out = {}
    for (mode, shots), mk in masks.items():
        trials = [next(per_trial) for _ in range(len(mk))]
        out[setting_name(mode, shots)] = {"mode": mode, "shots": shots, **mean_over_trials(trials)}
    return out


def evaluate_sysu(
    query_feats: Any,
    query_ids: Any,
    query_cams: Any,
    gallery_feats: Any,
    gallery_ids: Any,
    gallery_cams: Any,
    gallery_paths: Sequence[str | os.PathLike],
    perm: str | os.PathLike | np.ndarray,
    mode: str = "all",
    shots: int = 1,
    trials: int = 10,
    rerank: str | None = None,
    progress: bool = False,
    **rerank_params: Any,
) -> dict[str, Any]:
    """One SYSU-MM01 setting: metric means over `trials` gallery trials, plus "trials" (per-trial dicts).

    Queries are the infrared images, the gallery arrays hold every visible test image (all cameras); the
    cam-3 -> cam-2 same-location rule is applied to a copy of query_cams. rerank="mser" uses MSER_PRESETS["sysu"]
    unless `rerank_params` (k1, k2, lambda_value, neighbours) say otherwise.
    """
    mser = resolve_mser(rerank, rerank_params, MSER_PRESETS["sysu"])
    query = Side.of(query_feats, query_ids, query_cams, name="query")
    gallery = Side.of(gallery_feats, gallery_ids, gallery_cams, gallery_paths, name="gallery")
    return sysu_protocol(query, gallery, perm, [(mode, shots)], trials, mser, progress)[setting_name(mode, shots)]
