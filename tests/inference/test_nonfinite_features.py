"""`extract` and `search` never write NaN: images whose features are not finite are refused (or skipped under
--skip-bad), and results.json is always strict JSON."""

import copy
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

import mcja.inference.extractor as extractor_module
from helpers.inference import pattern_image, save_checkpoint, write_gallery
from mcja.cli import main
from mcja.errors import NonFiniteError
from mcja.inference import FeatureExtractor
from mcja.utils.io import atomic_write_json


@pytest.fixture(scope="module")
def broken_checkpoint(tmp_path_factory, model):
    """A checkpoint whose BN-neck holds a NaN weight: every feature is NaN."""
    broken = copy.deepcopy(model)
    with torch.no_grad():
        broken.bn_neck.weight[3] = float("nan")
    return save_checkpoint(broken, tmp_path_factory.mktemp("broken") / "nan.pt")


@pytest.fixture
def black_frames_break_the_model(monkeypatch):
    """The real forward, except that all-black images give NaN features (as some broken models do)."""
    real = extractor_module.embed_batch

    def embed(model, images, rt, views=1):
        out = real(model, images, rt, views)
        out[:, images.flatten(1).amax(1) == 0] = float("nan")
        return out

    monkeypatch.setattr(extractor_module, "embed_batch", embed)


def _black(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((64, 32, 3), dtype=np.uint8)).save(path)
    return path


def test_extract_refuses_a_nan_checkpoint_in_one_line(broken_checkpoint, gallery, tmp_path, capsys):
    out = tmp_path / "f.npz"
    args = ["extract", "--checkpoint", str(broken_checkpoint), "--images", str(gallery), "--out", str(out), "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "NaN or infinite features for 6 of 6 images" in err, err
    assert main([*args, "--skip-bad"]) == 2  # nothing left to write
    assert "all 6 readable images" in capsys.readouterr().err
    assert not out.exists()


def test_search_refuses_a_nan_checkpoint(broken_checkpoint, gallery, tmp_path, capsys):
    query = gallery / "0001" / "0001_c1_0.png"
    out = tmp_path / "out"
    assert main(["search", "--checkpoint", str(broken_checkpoint), "--query", str(query), "--gallery", str(gallery),
                 "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "0001_c1_0.png" in err and "NaN" in err
    assert not (out / "results.json").exists()


def test_extract_names_or_skips_the_images_with_nan_features(checkpoint, tmp_path, capsys,
                                                             black_frames_break_the_model):
    folder = tmp_path / "imgs"
    write_gallery(folder, ids=(4,), per_id=2)
    black = _black(folder / "0004" / "0004_c1_7.png")
    args = ["extract", "--checkpoint", str(checkpoint), "--images", str(folder), "--out", str(tmp_path / "f.npz"), "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "1 of 3 images" in err and str(black) in err
    assert main([*args, "--skip-bad"]) == 0
    captured = capsys.readouterr()
    assert f"skipped {black}: NaN or infinite features" in captured.err
    with np.load(tmp_path / "f.npz") as data:
        assert np.isfinite(data["features"]).all() and data["features"].shape == (2, 512)
        assert str(black) not in data["paths"].tolist() and len(data["paths"]) == 2


def test_search_skips_gallery_images_with_nan_features(checkpoint, tmp_path, capsys,
                                                       black_frames_break_the_model):
    gallery = tmp_path / "gallery"
    paths = write_gallery(gallery, ids=(1, 2), per_id=2)
    black = _black(gallery / "0002" / "0002_c1_9.png")
    out = tmp_path / "out"
    base = ["search", "--checkpoint", str(checkpoint), "--query", str(paths[0]), "--gallery", str(gallery),
            "--out", str(out), "--quiet"]
    assert main(base) == 2
    assert str(black) in capsys.readouterr().err
    for extra in (["--skip-bad"], ["--skip-bad", "--rerank"]):
        assert main([*base, *extra]) == 0
        capsys.readouterr()
        text = (out / "results.json").read_text()
        report = json.loads(text, parse_constant=lambda c: pytest.fail(f"results.json holds {c}"))
        assert report["gallery_images"] == 4 and any("NaN" in s for s in report["skipped"])
        scores = [r["score"] for q in report["queries"] for r in q["results"]]
        assert all(math.isfinite(s) for s in scores) and str(black) not in text.split('"skipped"')[0]


def test_extractor_api_skip_bad_keeps_the_rest_in_order(model, tmp_path):
    good = [pattern_image(1, 0), pattern_image(2, 0)]
    sick = copy.deepcopy(model)
    real_forward = sick.forward

    def forward(x):  # NaN for the second image of every batch only
        out = real_forward(x).clone()
        out[1::2] = float("nan")
        return out

    sick.forward = forward
    ex = FeatureExtractor(sick, device="cpu", batch_size=2)
    with pytest.raises(NonFiniteError, match="1 of 2 images .*image 1"):
        ex.extract(good)
    result = ex.extract(good, skip_bad=True)
    assert result.kept == [0] and result.skipped == ["image 1: NaN or infinite features"]
    np.testing.assert_allclose(result.features, FeatureExtractor(model, device="cpu")(good[:1]), atol=1e-6)


def test_atomic_json_refuses_nan(tmp_path):
    with pytest.raises(ValueError, match="refusing to write NaN"):
        atomic_write_json(tmp_path / "r.json", {"score": float("nan")})
    assert not (tmp_path / "r.json").exists()
    atomic_write_json(tmp_path / "r.json", {"score": np.float32(0.5)})
    assert json.loads((tmp_path / "r.json").read_text()) == {"score": 0.5}
