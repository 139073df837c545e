"""Activation maps: a tiny MCJA trained to tell identities apart by a coloured patch looks at the patch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from mcja.data.augment import normalize
from mcja.models import MCJA
from mcja.visualize.activation import activation_figure, activation_maps

H, W, P = 128, 64, 24  # image and patch size: layer4 (last stride 1) gives an 8 x 4 map of 16-pixel cells
COLOURS = np.array([[230, 30, 30], [30, 30, 230], [30, 200, 30], [230, 230, 30]])


def patch_images(n: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int]]]:
    """Grey noise; each identity's only mark is a patch of its colour, in the top or bottom part, anywhere across."""
    imgs = rng.integers(110, 146, (n, H, W, 3)).astype(np.uint8)
    ids = rng.integers(0, len(COLOURS), n)
    boxes = []
    for i in range(n):
        y = 12 if rng.random() < 0.5 else H - 12 - P
        x = int(rng.integers(4, W - P - 4))
        imgs[i, y:y + P, x:x + P] = COLOURS[ids[i]]
        boxes.append((y, x))
    return torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(ids), boxes


@pytest.fixture(scope="module")
def patch_model() -> MCJA:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = MCJA(len(COLOURS), depth=18, last_stride=1, mda_layers=[0, 0, 0, 0])
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    model.train()
    for _ in range(12):  # the patch colour is the only signal: it is learnt within a few steps
        x, y, _ = patch_images(16, rng)
        loss = torch.nn.functional.cross_entropy(model(normalize(x)).logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def test_activation_map_peaks_on_the_discriminative_patch(patch_model, tmp_path):
    x, y, boxes = patch_images(8, np.random.default_rng(5))
    with torch.no_grad():
        assert (patch_model.classifier(patch_model(normalize(x))).argmax(1) == y).all()  # it did learn
    cams = activation_maps(patch_model, x, classes=y)
    assert cams.shape == (8, H, W) and cams.min() >= 0 and cams.max() <= 1
    for cam, (top, left) in zip(cams, boxes):
        peak_y, peak_x = np.unravel_index(cam.argmax(), cam.shape)
        # the peak lies on the patch, give or take half a layer4 cell (8 pixels)
        assert top - 8 <= peak_y < top + P + 8 and left - 8 <= peak_x < left + P + 8
        inside = np.zeros_like(cam, dtype=bool)
        inside[top:top + P, left:left + P] = True
        assert cam[inside].mean() > 2 * cam[~inside].mean()
    # the default target (pooled feature norm) also puts its peak on the patch's half of the image
    for cam, (top, _) in zip(activation_maps(patch_model, x), boxes):
        assert (np.unravel_index(cam.argmax(), cam.shape)[0] < H // 2) == (top < H // 2)
    out = activation_figure(x.permute(0, 2, 3, 1).numpy(), cams, [f"id {int(i)}" for i in y], tmp_path / "cam.png")
    assert Image.open(out).size[0] > 300
