"""RegDB directions and trial summary; LLCM gallery sampling (DEEN semantics) and the id+camera rule."""

import random

import numpy as np
import pytest

from helpers.evaluation import loop_cosine, loop_metrics
from mcja.evaluation import evaluate_llcm, evaluate_regdb, llcm_trial_gallery, regdb_summary


def _split(rng, n_ids=6, per=3, dim=8):
    centers = rng.standard_normal((n_ids, dim))
    ids = np.repeat(np.arange(100, 100 + n_ids), per)
    vis = (centers[ids - 100] + 1.2 * rng.standard_normal((len(ids), dim))).astype(np.float32)
    th = (centers[ids - 100] + 1.2 * rng.standard_normal((len(ids), dim))).astype(np.float32)
    return vis, th, ids


def test_regdb_both_directions_match_loop():
    vis, th, ids = _split(np.random.default_rng(0))
    res = evaluate_regdb(vis, ids, th, ids)
    zeros = np.zeros(len(ids))
    for key, (q, g) in {"visible->thermal": (vis, th), "thermal->visible": (th, vis)}.items():
        cmc, m_ap, m_inp = loop_metrics(loop_cosine(q, g), ids, zeros, ids, zeros, exclude="none")
        assert res[key]["mAP"] == pytest.approx(m_ap * 100) and res[key]["r1"] == pytest.approx(cmc[0] * 100)
        assert res[key]["mINP"] == pytest.approx(m_inp * 100)


def test_regdb_summary_mean_and_std():
    rng = np.random.default_rng(1)
    splits = [evaluate_regdb(*(lambda v, t, i: (v, i, t, i))(*_split(rng))) for _ in range(3)]
    summary = regdb_summary(splits)
    maps = [s["thermal->visible"]["mAP"] for s in splits]
    assert summary["thermal->visible"]["mAP"] == pytest.approx(np.mean(maps))
    assert summary["thermal->visible"]["std"]["mAP"] == pytest.approx(np.std(maps))
    assert len(summary["visible->thermal"]["trials"]) == 3


def _llcm_side(rng, modality, cams):
    rows = []
    for pid in (3, 12, 40):
        for cam in cams:
            for k in range(int(rng.integers(0, 4))):  # 0 images: this person is not in this camera
                rows.append((f"/LLCM/test_{modality}/cam{cam}/{pid:04d}/{pid:04d}_c{cam:02d}_s{k}_{modality}.jpg", pid, cam))
    paths = [r[0] for r in rows]
    return paths, np.array([r[1] for r in rows]), np.array([r[2] for r in rows])


def test_llcm_sampling_is_deen_walk_and_deterministic():
    rng = np.random.default_rng(2)
    paths, ids, cams = _llcm_side(rng, "nir", [1, 2, 4, 9])
    shuffled = rng.permutation(len(paths))  # input order must not matter
    for trial in range(4):
        random.seed(trial)
        expected = []
        for pid in sorted(set(ids.tolist())):
            for cam in sorted(set(cams.tolist())):
                folder = sorted(p for p, i, c in zip(paths, ids, cams) if i == pid and c == cam)
                if folder:
                    expected.append(random.choice(folder))
        got = llcm_trial_gallery(paths, ids, cams, trial)
        assert sorted(paths[i] for i in got) == sorted(expected)
        assert len(got) == len({(i, c) for i, c in zip(ids, cams)})
        again = llcm_trial_gallery([paths[i] for i in shuffled], ids[shuffled], cams[shuffled], trial)
        assert sorted(paths[shuffled[i]] for i in again) == sorted(expected)


def test_llcm_excludes_same_id_and_camera_only():
    rng = np.random.default_rng(3)
    vis_paths, vis_ids, vis_cams = _llcm_side(rng, "vis", [1, 2, 3])
    nir_paths, nir_ids, nir_cams = _llcm_side(rng, "nir", [1, 2])
    dim = 6
    centers = rng.standard_normal((50, dim))
    vis = (centers[vis_ids] + rng.standard_normal((len(vis_ids), dim))).astype(np.float32)
    nir = (centers[nir_ids] + rng.standard_normal((len(nir_ids), dim))).astype(np.float32)
    res = evaluate_llcm(vis, vis_ids, vis_cams, vis_paths, nir, nir_ids, nir_cams, nir_paths, trials=3)
    r1 = []
    for t in range(3):
        pick = llcm_trial_gallery(vis_paths, vis_ids, vis_cams, t)
        with np.errstate(all="ignore"):
            cmc, m_ap, _ = loop_metrics(loop_cosine(nir, vis[pick]), nir_ids, nir_cams, vis_ids[pick], vis_cams[pick], exclude="id_camera")
        r1.append(cmc[0])
        assert res["infrared->visible"]["trials"][t]["mAP"] == pytest.approx(m_ap * 100)
    assert res["infrared->visible"]["r1"] == pytest.approx(np.mean(r1) * 100)
    assert set(res) == {"infrared->visible", "visible->infrared"}
