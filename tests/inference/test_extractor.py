"""FeatureExtractor: the testing preprocessing, input types, normalisation, MSER views, image size, determinism,
numerics (amp). Equality checks run in float32 (amp="off"): amp="auto" is bf16 on CPUs with native bf16."""

import numpy as np
import pytest
import torch
from PIL import Image

from helpers.inference import pattern_image, reference_features
from mcja import errors
from mcja.inference import FeatureExtractor
from mcja.models import to_reference_state_dict
from mcja.models.reader import resolve_image_size


def _images(n=3):
    return np.stack([pattern_image(pid, 0) for pid in range(1, n + 1)])


def test_features_follow_the_testing_preprocessing(model, checkpoint):
    images = _images()
    fx = FeatureExtractor(checkpoint, device="cpu", amp="off", normalize=False)
    expected = reference_features(model, images)
    got = fx(images)
    assert got.dtype == torch.float32 and got.shape == (3, 512)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    normalised = FeatureExtractor(checkpoint, device="cpu", amp="off")(images)
    torch.testing.assert_close(normalised.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(normalised, expected / expected.norm(dim=1, keepdim=True), atol=1e-6, rtol=1e-5)


def test_every_input_type_gives_the_same_features(checkpoint, tmp_path):
    images = _images()
    paths = []
    for i, img in enumerate(images):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(img).save(paths[-1])
    fx = FeatureExtractor(checkpoint, device="cpu", amp="off")
    reference = fx(images)  # uint8 array [B, H, W, 3]
    tensor_u8 = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    variants = {
        "paths": fx(paths),
        "str paths": fx([str(p) for p in paths]),
        "PIL": fx([Image.fromarray(img) for img in images]),
        "list of arrays": fx(list(images)),
        "uint8 tensor": fx(tensor_u8),
        "float tensor 0..1": fx(tensor_u8.float() / 255),
    }
    for name, got in variants.items():
        torch.testing.assert_close(got, reference, atol=1e-5, rtol=1e-5, msg=f"{name} differs")
    torch.testing.assert_close(fx(paths[0]), reference[:1], atol=1e-5, rtol=1e-5)  # one path -> batch of one
    torch.testing.assert_close(fx(images[1]), reference[1:2], atol=1e-5, rtol=1e-5)  # one array [H, W, 3]


def test_other_sizes_are_resized_with_pil_bilinear(checkpoint, tmp_path):
    big = pattern_image(5, 1, size=(150, 70))
    Image.fromarray(big).save(tmp_path / "big.png")
    resized = np.asarray(Image.fromarray(big).resize((32, 64), Image.BILINEAR))  # PIL takes (width, height)
    fx = FeatureExtractor(checkpoint, device="cpu", amp="off")
    expected = fx(resized)
    for got in (fx(tmp_path / "big.png"), fx(big), fx(torch.from_numpy(big).permute(2, 0, 1))):
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_deterministic_and_independent_of_batch_size(checkpoint):
    images = _images(n=5)
    batched = FeatureExtractor(checkpoint, device="cpu", amp="off", batch_size=5)
    assert torch.equal(batched(images), batched(images))
    one_by_one = FeatureExtractor(checkpoint, device="cpu", amp="off", batch_size=1)(images)
    uneven = FeatureExtractor(checkpoint, device="cpu", amp="off", batch_size=2)(images)
    torch.testing.assert_close(one_by_one, batched(images), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(uneven, batched(images), atol=1e-5, rtol=1e-5)


def test_mser_views_are_the_image_then_each_channel(checkpoint):
    images = _images(n=2)
    fx = FeatureExtractor(checkpoint, device="cpu", amp="off", views="mser")
    views = fx(images)
    assert views.shape == (4, 2, 512)
    plain = FeatureExtractor(checkpoint, device="cpu", amp="off")
    torch.testing.assert_close(views[0], plain(images), atol=1e-5, rtol=1e-5)
    for c in range(3):
        grey = np.repeat(images[..., c : c + 1], 3, axis=-1)  # channel c copied to R, G and B
        torch.testing.assert_close(views[1 + c], plain(grey), atol=1e-5, rtol=1e-5)


def test_image_size_comes_from_the_checkpoint_else_384x192(model, checkpoint, tmp_path):
    assert FeatureExtractor(checkpoint, device="cpu", amp="off").image_size == (64, 32)
    assert FeatureExtractor(checkpoint, device="cpu", amp="off", image_size=(128, 64)).image_size == (128, 64)
    reference = tmp_path / "reference.pth"
    torch.save(to_reference_state_dict(model.state_dict()), reference)  # the reference code's format: no config
    fx = FeatureExtractor(reference, device="cpu", amp="off")
    assert fx.image_size == (384, 192) and fx.feature_dim == 512
    assert FeatureExtractor(model, device="cpu", amp="off").image_size == (384, 192)


@pytest.mark.parametrize("size", [(16, 64), (64, 8192), (64,)])
def test_image_sizes_outside_the_config_bounds_are_refused(size):
    with pytest.raises(errors.ConfigError, match=r"each 32\.\.4096"):
        resolve_image_size(None, size)


def test_bad_inputs_are_refused_clearly(checkpoint, tmp_path):
    fx = FeatureExtractor(checkpoint, device="cpu", amp="off")
    with pytest.raises(ValueError, match="0..1"):
        fx(torch.full((1, 3, 64, 32), 200.0))  # 0..255 floats
    with pytest.raises(ValueError, match="must already be 64x32"):
        fx(torch.rand(1, 3, 80, 40))
    with pytest.raises(ValueError, match="uint8 RGB"):
        fx(np.zeros((64, 32, 3), dtype=np.float32))
    with pytest.raises(errors.DatasetError, match="missing.jpg: image file not found"):
        fx([tmp_path / "missing.jpg"])
    with pytest.raises(errors.ConfigError, match="views"):
        FeatureExtractor(checkpoint, device="cpu", amp="off", views=3)


def test_extract_skips_unreadable_files_only_when_asked(checkpoint, tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(pattern_image(1, 0)).save(good)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    fx = FeatureExtractor(checkpoint, device="cpu", amp="off")
    with pytest.raises(errors.DatasetError, match="broken.jpg: cannot read image"):
        fx.extract([good, broken])
    result = fx.extract([broken, good], skip_bad=True)
    assert result.kept == [1] and len(result.skipped) == 1 and "broken.jpg" in result.skipped[0]
    torch.testing.assert_close(result.features, fx([good]))


def test_amp_auto_is_bf16_only_on_cpus_with_native_bf16(checkpoint, monkeypatch):
    import mcja.engine.runtime as runtime

    images = _images()
    exact = FeatureExtractor(checkpoint, device="cpu", amp="off")(images)
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: False)
    plain = FeatureExtractor(checkpoint, device="cpu")
    assert plain.runtime.amp_dtype is None
    torch.testing.assert_close(plain(images), exact, atol=1e-6, rtol=1e-5)
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: True)
    fast = FeatureExtractor(checkpoint, device="cpu")
    assert fast.runtime.amp_dtype == torch.bfloat16 and fast.runtime.channels_last
    got = fast(images)
    assert got.dtype == torch.float32
    # bf16 keeps 8 mantissa bits: unit features stay within a few 1e-3 of float32, cosine near 1
    assert float((got * exact).sum(1).min()) > 0.999
    assert not torch.equal(got, exact)  # it did run in bf16
