"""SYSU-MM01 trial sampling from hand-built rand_perm_cam structures, the cam-3/cam-2 rule, the protocol."""

import numpy as np
import pytest
import scipy.io

from helpers.evaluation import ROWS, loop_cosine, loop_metrics, loop_mser, loop_sysu_gallery, make_sysu
from mcja.errors import DatasetError
from mcja.evaluation import MserParams, Side, evaluate_sysu, load_rand_perm, sysu_protocol, sysu_trial_gallery, sysu_trial_masks


def _perm(entries):
    """rand_perm_cam from {(cam, pid): uint8 (10, n) array}; every other entry empty, SYSU's row counts."""
    perm = np.empty((6, 1), dtype=object)
    for cam in range(1, 7):
        cell = np.empty((ROWS[cam], 1), dtype=object)
        for p in range(ROWS[cam]):
            cell[p, 0] = entries.get((cam, p + 1), np.zeros((0, 0), dtype=np.uint8))
        perm[cam - 1, 0] = cell
    return perm


def _gallery(spec):
    """Gallery arrays for {(cam, pid): n_images} with image numbers 1..n."""
    rows = [(f"SYSU/cam{c}/{p:04d}/{k:04d}.jpg", p, c) for (c, p), n in spec.items() for k in range(1, n + 1)]
    return [r[0] for r in rows], np.array([r[1] for r in rows]), np.array([r[2] for r in rows])


ORDER = np.array([[3, 1, 2, 5, 4], [5, 4, 3, 2, 1]] + [[1, 2, 3, 4, 5]] * 8, dtype=np.uint8)
CAM2 = np.array([[2, 1]] + [[1, 2]] * 9, dtype=np.uint8)
ENTRIES = {(1, 7): ORDER, (2, 7): CAM2, (4, 400): ORDER, (5, 7): ORDER}
SPEC = {(1, 7): 5, (2, 7): 2, (4, 400): 5, (5, 7): 5, (5, 9): 3}  # (5, 9): no perm entry, never picked


@pytest.mark.parametrize("roundtrip", [False, True])
def test_trial_gallery_single_and_multi_shot(tmp_path, roundtrip):
    perm = _perm(ENTRIES)
    if roundtrip:
        scipy.io.savemat(tmp_path / "rand_perm_cam.mat", {"rand_perm_cam": perm})
        perm = str(tmp_path / "rand_perm_cam.mat")
    paths, ids, cams = _gallery(SPEC)
    picked = lambda m: sorted(p.split("SYSU/")[1] for p, keep in zip(paths, m) if keep)  # noqa: E731
    one = sysu_trial_gallery(paths, cams, ids, perm, "all", 1, 0)
    # trial 0: first number of row 0 of each entry; id 400 lives in a 533-row camera (cam 4)
    assert picked(one) == ["cam1/0007/0003.jpg", "cam2/0007/0002.jpg", "cam4/0400/0003.jpg", "cam5/0007/0003.jpg"]
    assert picked(sysu_trial_gallery(paths, cams, ids, perm, "indoor", 1, 1)) == ["cam1/0007/0005.jpg", "cam2/0007/0001.jpg"]
    multi = sysu_trial_masks(paths, cams, ids, perm, "all", 10, 10)
    assert multi.shape == (10, len(paths))
    assert multi.sum(1).tolist() == [5 + 2 + 5 + 5] * 10  # all images of each stored entry; cam5/9 has no entry
    for t in range(10):
        for mode in ("all", "indoor"):
            np.testing.assert_array_equal(
                sysu_trial_gallery(paths, cams, ids, load_rand_perm(perm), mode, 1, t),
                loop_sysu_gallery(load_rand_perm(perm), paths, ids, cams, mode, 1, t),
            )


def test_rand_perm_errors(tmp_path):
    with pytest.raises(DatasetError, match="nope.mat"):
        load_rand_perm(tmp_path / "nope.mat")
    (tmp_path / "bad.mat").write_bytes(b"not a mat file")
    with pytest.raises(DatasetError, match="bad.mat"):
        load_rand_perm(tmp_path / "bad.mat")
    scipy.io.savemat(tmp_path / "other.mat", {"x": np.zeros(3)})
    with pytest.raises(DatasetError, match="rand_perm_cam"):
        load_rand_perm(tmp_path / "other.mat")
    paths, ids, cams = _gallery(SPEC)
    with pytest.raises(DatasetError, match="trial 10"):
        sysu_trial_gallery(paths, cams, ids, _perm(ENTRIES), "all", 1, 10)


def test_cam3_counts_as_cam2():
    # one true match in cam 2 and one in cam 1; a cam-3 query must skip the cam-2 one, a cam-6 query must not
    feats_g = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]], dtype=np.float32)
    paths = ["S/cam2/0001/0001.jpg", "S/cam1/0001/0001.jpg", "S/cam1/0002/0001.jpg"]
    gids, gcams = np.array([1, 1, 2]), np.array([2, 1, 1])
    perm = _perm({(1, 1): np.ones((10, 1), np.uint8), (2, 1): np.ones((10, 1), np.uint8), (1, 2): np.ones((10, 1), np.uint8)})
    q = np.array([[1.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    qcams = np.array([3, 6])
    res = evaluate_sysu(q, [1, 1], qcams, feats_g, gids, gcams, paths, perm, "indoor", 1, trials=2)
    # cam-3 query sees [id 2, id 1 (cam 1)]: AP 1/2; cam-6 query sees [id 1 (cam 2), id 2, id 1]: AP (1 + 2/3) / 2
    assert res["r1"] == pytest.approx(50.0) and res["mAP"] == pytest.approx(100 * (0.5 + (1 + 2 / 3) / 2) / 2)
    assert qcams.tolist() == [3, 6] and len(res["trials"]) == 2


def test_protocol_matches_reference_loop():
    rng = np.random.default_rng(5)
    d = make_sysu(rng, n_ids=10, noise=2.0)
    before = {k: (v.copy() if isinstance(v, np.ndarray) else list(v)) for k, v in d.items() if k != "perm"}
    query, gallery = Side.of(d["q_feats"], d["q_ids"], d["q_cams"]), Side.of(d["g_feats"], d["g_ids"], d["g_cams"], d["g_paths"])
    res = sysu_protocol(query, gallery, d["perm"], trials=3)
    assert list(res) == ["all-search single-shot", "all-search multi-shot", "indoor-search single-shot", "indoor-search multi-shot"]
    qcams = np.where(d["q_cams"] == 3, 2, d["q_cams"])
    for r in res.values():
        trial_values = []
        for t in range(3):
            m = loop_sysu_gallery(d["perm"], d["g_paths"], d["g_ids"], d["g_cams"], r["mode"], r["shots"], t)
            cmc, m_ap, m_inp = loop_metrics(loop_cosine(d["q_feats"], d["g_feats"][m]), d["q_ids"], qcams, d["g_ids"][m], d["g_cams"][m])
            trial_values.append([cmc[0], cmc[4], m_ap, m_inp])
        np.testing.assert_allclose([r["r1"], r["r5"], r["mAP"], r["mINP"]], np.mean(trial_values, 0) * 100, atol=1e-9)
    for k, v in before.items():
        np.testing.assert_array_equal(d[k], v)


def test_protocol_with_mser_matches_per_trial_reference():
    # the protocol shares the query side of MSER between trials; each trial must equal re-ranking its gallery alone
    rng = np.random.default_rng(8)
    d = make_sysu(rng, n_ids=10, noise=2.0)
    g4 = np.stack([d["g_feats"]] + [d["g_feats"] + 0.3 * rng.standard_normal(d["g_feats"].shape) for _ in range(3)])
    unit = lambda x: (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)  # noqa: E731
    query, gallery = Side.of(d["q_feats"], d["q_ids"], d["q_cams"]), Side.of(g4, d["g_ids"], d["g_cams"], d["g_paths"])
    res = sysu_protocol(query, gallery, d["perm"], settings=[("all", 1), ("indoor", 10)], trials=2, mser=MserParams(k1=6, k2=4))
    qcams = np.where(d["q_cams"] == 3, 2, d["q_cams"])
    for r in res.values():
        for t in range(2):
            m = loop_sysu_gallery(d["perm"], d["g_paths"], d["g_ids"], d["g_cams"], r["mode"], r["shots"], t)
            dist = loop_mser([unit(d["q_feats"])], list(unit(g4[:, m])), 6, 4, 0.3, True, np.float32)
            cmc, m_ap, m_inp = loop_metrics(dist, d["q_ids"], qcams, d["g_ids"][m], d["g_cams"][m])
            got = r["trials"][t]
            np.testing.assert_allclose([got["r1"], got["mAP"], got["mINP"]], np.array([cmc[0], m_ap, m_inp]) * 100, atol=1e-6)


def test_protocol_with_many_exact_ties_matches_per_query_argsort():
    # features with one or two unit entries out of 4: every cosine is exact (0, 1/sqrt(2), 1/2 or 1) whatever the
    # order of the sums, so the reference's distances equal the protocol's bit for bit and most of them tie; ties
    # go to the lower gallery index (a per-query stable argsort over each trial's gallery, all ten trials)
    rng = np.random.default_rng(21)
    d = make_sysu(rng, n_ids=12, max_images=14)

    def tied(ids):
        feats = np.zeros((len(ids), 4), dtype=np.float32)
        feats[np.arange(len(ids)), np.where(rng.random(len(ids)) < 0.7, ids % 4, rng.integers(0, 4, len(ids)))] = 1
        feats[np.arange(len(ids)), rng.integers(0, 4, len(ids))] = 1
        return feats

    q_feats, g_feats = tied(d["q_ids"]), tied(d["g_ids"])
    dist = loop_cosine(q_feats, g_feats)
    assert len(np.unique(dist)) <= 5 and len(np.unique(dist[0])) < len(g_feats) / 10  # ties everywhere
    query, gallery = Side.of(q_feats, d["q_ids"], d["q_cams"]), Side.of(g_feats, d["g_ids"], d["g_cams"], d["g_paths"])
    res = sysu_protocol(query, gallery, d["perm"], trials=10)
    assert [(r["mode"], r["shots"]) for r in res.values()] == [("all", 1), ("all", 10), ("indoor", 1), ("indoor", 10)]
    qcams = np.where(d["q_cams"] == 3, 2, d["q_cams"])
    for r in res.values():
        for t, got in enumerate(r["trials"]):
            m = loop_sysu_gallery(d["perm"], d["g_paths"], d["g_ids"], d["g_cams"], r["mode"], r["shots"], t)
            cmc, m_ap, m_inp = loop_metrics(dist[:, m], d["q_ids"], qcams, d["g_ids"][m], d["g_cams"][m])
            cmc = np.concatenate([cmc, np.full(20, cmc[-1])])  # flat after the last id, as the protocol reports it
            want = np.array([cmc[0], cmc[4], cmc[9], cmc[19], m_ap, m_inp]) * 100
            np.testing.assert_allclose([got[k] for k in ("r1", "r5", "r10", "r20", "mAP", "mINP")], want, atol=1e-6)
            np.testing.assert_allclose(got["cmc"], cmc[: len(got["cmc"])] * 100, atol=1e-6)
