"""Ranked-list pictures are drawn from image paths: thumbnails with green/red borders, one PNG per query."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from PIL import Image

from mcja.visualize import ranked_list_image, ranked_list_pictures


def _images(tmp_path, n):
    paths = []
    for i in range(n):
        p = tmp_path / f"img{i}.png"
        Image.new("RGB", (20, 40), (i * 30 % 255, 100, 50)).save(p)
        paths.append(str(p))
    return paths


def test_ranked_list_picture_borders_and_files(tmp_path):
    paths = _images(tmp_path, 4)
    img = ranked_list_image(paths[0], paths[1:], scores=[0.9, 0.5, 0.1], correct=[True, False, True], size=(32, 16))
    tile = 16 + 8 + 6
    assert img.size[0] == 4 * tile + 6 + 6
    assert img.getpixel((6 + tile + 6 + 1, 7)) == (0, 170, 0)  # first gallery tile: green border
    assert img.getpixel((6 + 2 * tile + 6 + 1, 7)) == (220, 0, 0)  # second: red
    dist = np.array([[0.3, 0.1, 0.2], [0.1, 0.2, 0.3]], dtype=np.float32)
    out = ranked_list_pictures(tmp_path / "lists", dist, paths[:2], [1, 2], paths[1:], [1, 2, 1], queries=[1], k=2)
    assert out[0].exists() and Image.open(out[0]).size[1] > 32


def test_evaluation_reads_no_images_and_never_imports_visualize():
    code = ("import sys, mcja.evaluation; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'PIL' or m.startswith('mcja.visualize')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
