"""Ranked lists on a protocol: which queries are drawn, and one picture per query with a row per ranking."""

from __future__ import annotations

import numpy as np
from PIL import Image

from mcja.visualize.ranked import choose_queries, protocol_ranked_lists


def test_choose_queries_takes_seeded_random_ones_and_the_lowest_ap_among_valid():
    ap = np.array([0.9, 0.1, 0.5, 0.05, 0.7, 0.2])
    valid = np.array([True, True, True, False, True, True])  # query 3 has no true match: never drawn
    picked = choose_queries(ap, valid, 2, seed=0)
    assert picked["hardest"].tolist() == [1, 5]
    assert set(picked["random"]) <= {0, 1, 2, 4, 5} and len(picked["random"]) == 2
    assert picked["random"].tolist() == choose_queries(ap, valid, 2, seed=0)["random"].tolist()


def test_one_picture_per_query_with_a_row_per_ranking(tmp_path):
    paths = []
    for i in range(6):
        p = tmp_path / f"img{i}.png"
        Image.new("RGB", (16, 32), (40 * i, 80, 120)).save(p)
        paths.append(str(p))
    query = {"paths": np.array(paths[:2]), "pids": np.array([1, 2]), "cameras": np.array([3, 3])}
    gallery = {"paths": np.array(paths[2:]), "pids": np.array([1, 2, 1, 3]), "cameras": np.array([1, 1, 2, 2])}
    dist = np.array([[0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4]], dtype=np.float32)
    one = protocol_ranked_lists(tmp_path / "a", {"plain": dist}, query, gallery, n=1, k=3)
    two = protocol_ranked_lists(tmp_path / "b", {"plain": dist, "MSER re-ranked": dist[:, ::-1].copy()}, query,
                                gallery, n=1, k=3)
    assert [p.name.split("_")[1] for p in one] == ["random", "hardest"]
    assert Image.open(two[0]).size[1] > 2 * Image.open(one[0]).size[1] - 40  # a second row of thumbnails
    # query 1 (id 2) is the hardest: its match is ranked second (AP 0.5); query 0's match is first (AP 1)
    assert one[1].name == "ranked_hardest_00001.png"
