"""Training learns on a SYSU-MM01-layout dataset that the project did not generate.

The images here are drawn by plain numpy/PIL code, unrelated to mcja.data.synthetic: each person is a figure
of six horizontal bands (dark / mid / bright, a per-person code) of a per-person width. Visible cameras (1, 2,
4, 5) paint the lightness pattern in a random hue and saturation per image, so colour says nothing about the
person; infrared cameras (3, 6) show it in grey with an inverted response (bright bands come out dark). What
carries identity across the modalities is the band code under the modality's response: the network has to
learn it, and the evaluation is on held-out test identities.
"""

from __future__ import annotations

import colorsys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mcja.cli import main
from mcja.engine.logger import read_metrics

N_IDS, N_TEST, PER_CAMERA, INFRARED_CAMS = 24, 8, 3, (3, 6)


def _lightness(rng: np.random.Generator, code: np.ndarray, width: float) -> np.ndarray:
    h, w = 96, 48
    lum = np.full((h, w), rng.uniform(0.35, 0.65))
    fw = int(w * width * rng.uniform(0.9, 1.1))
    left, top = (w - fw) // 2 + int(rng.integers(-3, 4)), int(rng.integers(2, 8))
    band = (h - top - 4) // 6
    for b, level in enumerate(code):
        lum[top + b * band : top + (b + 1) * band, max(left, 0) : left + fw] = 0.15 + 0.35 * level
    return np.clip(lum * rng.uniform(0.8, 1.2) + rng.normal(0, 0.05, lum.shape), 0, 1)


def write_banded_sysu(root: Path, seed: int = 0) -> Path:
    """cam1..cam6/<pid:04d>/<n:04d>.jpg and exp/{train,val,test}_id.txt, 24 ids (14 train, 2 val, 8 test)."""
    rng = np.random.default_rng(seed)
    codes, widths = rng.integers(0, 3, (N_IDS + 1, 6)), rng.uniform(0.5, 1.0, N_IDS + 1)
    for pid in range(1, N_IDS + 1):
        for cam in range(1, 7):
            for k in range(1, PER_CAMERA + 1):
                lum = _lightness(rng, codes[pid], widths[pid])
                if cam in INFRARED_CAMS:
                    rgb = np.repeat(((1 - 0.8 * lum) * 255)[:, :, None], 3, 2)
                else:
                    hue, sat = rng.uniform(), rng.uniform(0.3, 0.9)
                    rgb = np.array([colorsys.hls_to_rgb(hue, v, sat) for v in lum.ravel()]).reshape(*lum.shape, 3) * 255
                path = root / f"cam{cam}" / f"{pid:04d}" / f"{k:04d}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rgb.clip(0, 255).astype(np.uint8)).save(path, quality=92)
    (root / "exp").mkdir()
    train = list(range(1, N_IDS - N_TEST + 1))
    (root / "exp" / "train_id.txt").write_text(",".join(map(str, train[:-2])) + "\n")
    (root / "exp" / "val_id.txt").write_text(",".join(map(str, train[-2:])) + "\n")
    (root / "exp" / "test_id.txt").write_text(",".join(map(str, range(N_IDS - N_TEST + 1, N_IDS + 1))) + "\n")
    return root


@pytest.mark.slow
def test_training_on_a_foreign_sysu_layout_learns_held_out_identities(tmp_path):
    root = write_banded_sysu(tmp_path / "SYSU-MM01")
    run = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # no rand_perm_cam.mat: whole-gallery evaluation, by design
        code = main(["train", "--config", "demo.yaml", "--out", str(run), "--quiet", f"data.root={root}",
                     f"data.cache_dir={tmp_path / 'cache'}", "data.image_size=[64,32]", "data.p_size=4",
                     "data.k_size=4", "augment.padding=2", "optim.epochs=6", "optim.lr_steps=[5]",
                     "train.device=cpu", "train.deterministic=true", "eval.start=0", "eval.every=6",
                     "eval.mser=false"])
    assert code == 0
    r1 = [r["score_r1"] for r in read_metrics(run) if r.get("kind") == "eval"]
    chance = 100 / N_TEST  # infrared queries of 8 held-out ids against all their visible images
    assert len(r1) == 2, r1
    assert r1[1] >= 4 * chance and r1[1] > r1[0] + 30, f"rank-1 before/after training: {r1} (chance {chance:.1f})"
