"""16-bit, 32-bit integer and float images (thermal cameras) load scaled from their own range, not solid white."""

import math

import numpy as np
import pytest
from PIL import Image

from mcja.cli import main
from mcja.data.cache import ImageCache
from mcja.data.images import load_resized, load_rgb


def _expected_8bit(values):
    """The min..max -> 0..255 mapping written out one pixel at a time, rounding halves up."""
    flat = [float(v) for v in np.asarray(values).ravel()]
    lo, hi = min(flat), max(flat)
    out = [0 if hi == lo else math.floor((v - lo) * 255 / (hi - lo) + 0.5) for v in flat]
    return np.array(out, dtype=np.uint8).reshape(np.asarray(values).shape)


def _thermal(h=64, w=32):
    """A radiometric-looking frame: values around 29000..31000 with a warm figure in the middle."""
    rng = np.random.default_rng(0)
    frame = 29000 + rng.integers(0, 400, size=(h, w))
    frame[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] += 1600
    return frame


# (description, array written, file suffix): each gives a distinct PIL mode on reading
CASES = [
    ("I;16 png", _thermal().astype(np.uint16), ".png"),
    ("I;16 tiff", _thermal().astype(np.uint16), ".tif"),
    ("I;16B tiff", _thermal().astype(">u2"), ".tif"),
    ("I tiff", (_thermal() - 30000).astype(np.int32), ".tif"),
    ("F tiff", (_thermal() / 100.0 - 273.15).astype(np.float32), ".tif"),
]


@pytest.mark.parametrize("name, array, suffix", CASES, ids=[c[0] for c in CASES])
def test_wide_modes_scale_from_their_own_range(tmp_path, name, array, suffix):
    path = tmp_path / f"frame{suffix}"
    Image.fromarray(array).save(path)
    assert Image.open(path).mode == name.split()[0]  # the file really is in that mode
    rgb = np.asarray(load_rgb(path))
    expected = _expected_8bit(array)
    assert rgb.shape == (64, 32, 3) and (rgb == expected[..., None]).all()
    assert rgb.min() == 0 and rgb.max() == 255  # the full range is used, nothing is clipped white


def test_constant_and_nan_frames(tmp_path):
    Image.fromarray(np.full((8, 8), 40000, dtype=np.uint16)).save(tmp_path / "flat.png")
    assert (np.asarray(load_rgb(tmp_path / "flat.png")) == 0).all()
    values = np.array([[1.0, np.nan], [3.0, 2.0]], dtype=np.float32)
    Image.fromarray(values).save(tmp_path / "nan.tif")
    assert np.asarray(load_rgb(tmp_path / "nan.tif"))[..., 0].tolist() == [[0, 0], [255, 128]]


def test_cache_extractor_and_verify_see_the_scaled_image(tmp_path, capsys):
    from mcja.inference import FeatureExtractor
    from mcja.models import MCJA

    wide, narrow = tmp_path / "wide.png", tmp_path / "narrow.png"
    Image.fromarray(_thermal().astype(np.uint16)).save(wide)
    Image.fromarray(_expected_8bit(_thermal())).convert("RGB").save(narrow)
    cache = ImageCache.build([str(wide), str(narrow)], (32, 16), tmp_path / "cache", progress=False)
    np.testing.assert_array_equal(cache[0], cache[1])
    np.testing.assert_array_equal(cache[0], load_resized(narrow, (32, 16)))
    extractor = FeatureExtractor(MCJA(num_classes=2, depth=18, pretrained=None), device="cpu", image_size=(64, 32))
    feats = extractor([str(wide), str(narrow)])
    np.testing.assert_allclose(feats[0], feats[1], atol=1e-6)
    # data-info --verify decodes through the same loader: a 16-bit dataset verifies
    root = tmp_path / "folder"
    for modality, pid in (("visible", 1), ("infrared", 1)):
        (root / modality / f"{pid:04d}").mkdir(parents=True)
        Image.fromarray(_thermal().astype(np.uint16)).save(root / modality / f"{pid:04d}" / "0001_c1_0.png")
    assert main(["data-info", "--dataset", "folder", "--root", str(root), "--verify"]) == 0
    assert "every image decoded" in capsys.readouterr().out
