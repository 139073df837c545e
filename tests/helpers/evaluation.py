"""Straightforward per-query reference implementations of the metrics and of MSER, for tests and benchmarks.

They follow the spec / reference-code semantics one query (one item) at a time, with no vectorization tricks; plus small
synthetic SYSU-MM01 feature sets. benchmarks/bench_eval.py and bench_mser.py import this module too (tests/ on sys.path).
"""

from __future__ import annotations

import numpy as np
import torch


def loop_metrics(dist, qids, qcams, gids, gcams, exclude="camera"):
    """Per-query loop: stable sort, drop excluded items, CMC over unique ids, AP, INP (fractions, not percent)."""
    dist = np.asarray(dist)
    return _per_query(lambda i: dist[i], dist.shape[0], qids, qcams, gids, gcams, exclude)


def loop_evaluate(q, qids, qcams, g, gids, gcams, exclude="camera"):
    """loop_metrics with each query's cosine distances computed in the loop too: one matrix-vector product of the
    (L2-normalised) gallery matrix with that query's normalised feature (torch.mv, the fastest such product here)."""
    g = torch.as_tensor(g, dtype=torch.float32)
    g = g / g.norm(dim=1, keepdim=True)
    q = torch.as_tensor(q, dtype=torch.float32)
    return _per_query(lambda i: torch.mv(g, -q[i] / q[i].norm()).numpy(), len(q), qids, qcams, gids, gcams, exclude)


def _per_query(row, nq, qids, qcams, gids, gcams, exclude):
    """The loop shared by loop_metrics and loop_evaluate; row(i) gives query i's distances to the gallery."""
    qids, qcams, gids, gcams = np.asarray(qids), np.asarray(qcams), np.asarray(gids), np.asarray(gcams)
    num_ids = len(np.unique(gids))
    counter = np.zeros(num_ids)
    valid = ap_sum = inp_sum = 0
    for i in range(nq):
        order = np.argsort(row(i), kind="stable")
        ids, cams = gids[order], gcams[order]
        if exclude == "camera":
            keep = cams != qcams[i]
        elif exclude == "id_camera":
            keep = ~((cams == qcams[i]) & (ids == qids[i]))
        else:
            keep = np.ones(len(ids), dtype=bool)
        ids = ids[keep]
        match = ids == qids[i]
        if not match.any():
            continue
        valid += 1
        _, first = np.unique(ids, return_index=True)
        unique_ids = ids[np.sort(first)]
        hit = unique_ids == qids[i]
        counter[: len(hit)] += hit
        ranks = np.flatnonzero(match) + 1
        ap_sum += np.mean(np.arange(1, len(ranks) + 1) / ranks)
        inp_sum += len(ranks) / ranks[-1]
    cmc = np.cumsum(counter / valid)
    return cmc, ap_sum / valid, inp_sum / valid


def loop_mser(query_views, gallery_views, k1, k2, lambda_value, masked, store_dtype=np.float16):
    """Item-by-item re-implementation of the reference MSER; V and the Jaccard kept in `store_dtype`.

    query_views / gallery_views: lists of [N, D] arrays, L2-normalised; exactly one side may have several.
    """
    multi_gallery = len(gallery_views) > 1
    q_part = [query_views[0]] if multi_gallery else list(query_views)
    g_part = list(gallery_views) if multi_gallery else [gallery_views[0]]
    feats = np.concatenate(q_part + g_part).astype(np.float32)
    nqp, n = sum(len(x) for x in q_part), sum(len(x) for x in q_part + g_part)
    sq = (feats * feats).sum(1)
    dist = (sq[:, None] + sq[None, :] - 2 * feats @ feats.T).astype(np.float32)
    original = np.transpose(dist / np.max(dist, axis=0))
    ranking = dist.copy()
    if masked:
        ranking[:, nqp:] = dist.max()
    initial_rank = np.argsort(ranking, axis=1, kind="stable")
    v = np.zeros((n, n), dtype=store_dtype)
    for i in range(n):
        forward = initial_rank[i, : k1 + 1]
        backward = initial_rank[forward, : k1 + 1]
        recip = np.unique(forward[np.where(backward == i)[0]])
        weight = np.exp(-original[i, recip])
        v[i, recip] = weight / np.sum(weight)
    if k2 != 1:
        v_qe = np.zeros_like(v)
        for i in range(n):
            v_qe[i] = np.mean(v[initial_rank[i, :k2], :], axis=0)
        v = v_qe
    jaccard = np.zeros((nqp, n), dtype=store_dtype)
    for i in range(nqp):
        overlap = np.zeros(n, dtype=store_dtype)
        for k in np.where(v[i] != 0)[0]:
            others = np.where(v[:, k] != 0)[0]
            overlap[others] = overlap[others] + np.minimum(v[i, k], v[others, k])
        jaccard[i] = 1 - overlap / (2 - overlap)
    final = jaccard * (1 - lambda_value) + original[:nqp] * lambda_value
    final = final[:, nqp:]
    if multi_gallery:
        return final.reshape(nqp, len(g_part), -1).mean(axis=1)
    return final.reshape(len(q_part), -1, final.shape[1]).mean(axis=0)


ROWS = {1: 333, 2: 333, 3: 533, 4: 533, 5: 533, 6: 333}


def make_sysu(rng, n_ids=8, max_images=14, dim=16, noise=1.0, id_pool=300):
    """A small synthetic SYSU-MM01 test set: features with identity structure, paths, and rand_perm_cam.

    Some (person, camera) pairs are absent (empty perm entries), some have fewer than 10 images.
    """
    pids = np.sort(rng.choice(np.arange(1, id_pool + 1), n_ids, replace=False))
    centers = rng.standard_normal((id_pool + 1, dim))
    perm = np.empty((6, 1), dtype=object)
    data = {"q": [], "g": []}
    for cam in range(1, 7):
        cell = np.empty((ROWS[cam], 1), dtype=object)
        for p in range(ROWS[cam]):
            cell[p, 0] = np.zeros((0, 0), dtype=np.uint8)
        for pid in pids:
            if rng.random() < 0.25:  # person not seen by this camera
                continue
            n = int(rng.integers(1, max_images + 1))
            cell[pid - 1, 0] = np.stack([rng.permutation(n) + 1 for _ in range(10)]).astype(np.uint8)
            side = "q" if cam in (3, 6) else "g"
            for num in rng.permutation(n) + 1:
                feat = centers[pid] + noise * rng.standard_normal(dim)
                data[side].append((f"/data/SYSU-MM01/cam{cam}/{pid:04d}/{num:04d}.jpg", pid, cam, feat))
        perm[cam - 1, 0] = cell
    out = {}
    for side, rows in data.items():
        out[side + "_paths"] = [r[0] for r in rows]
        out[side + "_ids"] = np.array([r[1] for r in rows])
        out[side + "_cams"] = np.array([r[2] for r in rows])
        out[side + "_feats"] = np.array([r[3] for r in rows], dtype=np.float32)
    out["perm"] = perm
    return out


def loop_sysu_gallery(perm, paths, gids, gcams, mode, shots, trial):
    """The reference's name-based trial selection: a boolean mask over the gallery."""
    cams = [1, 2] if mode == "indoor" else [1, 2, 4, 5]
    in_mode = np.isin(gcams, cams)
    names = set()
    for cam in cams:
        cam_perm = perm[cam - 1][0].squeeze()
        for pid in np.unique(gids[in_mode]):
            if pid - 1 < len(cam_perm) and len(cam_perm[pid - 1]) > 0:
                for num in cam_perm[pid - 1][trial][:shots]:
                    names.add(f"cam{cam}/{pid:04d}/{int(num):04d}")
    keys = ["/".join(p.rsplit(".", 1)[0].split("/")[-3:]) for p in paths]
    return np.array([k in names for k in keys]) & in_mode


def loop_cosine(q, g):
    """-cosine similarity, computed one query at a time."""
    g = g / np.linalg.norm(g, axis=1, keepdims=True)
    return np.stack([-(g @ (x / np.linalg.norm(x))) for x in q]).astype(np.float32)
