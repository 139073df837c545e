"""Test-time embedding: CPU forwards in slices give the features of one whole-batch forward."""

import torch

import mcja.engine.features as features
from mcja.data.augment import normalize
from mcja.engine.runtime import Runtime
from mcja.models import MCJA


def test_slices_match_one_forward_and_views_are_per_channel(monkeypatch):
    torch.manual_seed(0)
    model = MCJA(5, depth=18).eval()
    images = torch.randint(0, 256, (7, 3, 32, 16), dtype=torch.uint8)
    monkeypatch.setattr(features, "CPU_FORWARD_PIXELS", 3 * 32 * 16)  # forwards of 3, 3 and 1 images
    assert features.cpu_forward_size(32, 16) == 3
    rt = Runtime(device=torch.device("cpu"))
    with torch.no_grad():
        whole = model(normalize(images))
        red = model(normalize(images[:, :1].expand(-1, 3, -1, -1)))
    out = features.embed_batch(model, images, rt, views=4)
    assert out.shape == (4, 7, whole.shape[1])
    torch.testing.assert_close(out[0], whole, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out[1], red, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(out[1], out[2])  # the R and G views differ: the slicing kept each view apart
