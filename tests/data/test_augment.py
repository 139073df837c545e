"""Batched augmentation: each op's defining property, a per-image reference of the whole pipeline,
randomness from the generator only, and the spec's choice frequencies."""

import colorsys
import math

import numpy as np
import pytest
import torch

from mcja.data.augment import (
    CC,
    HUE,
    IMAGENET_MEAN,
    IMAGENET_STD,
    NO_COLOUR,
    SJ,
    WG,
    TrainAugment,
    adjust_hue,
    channel_cutmix,
    erase,
    hflip,
    normalize,
    pad_crop,
    sample_boxes,
    spectral_views,
    spectrum_jitter,
    weighted_grayscale,
)

LEVEL = 1 / 255 / min(IMAGENET_STD)  # one uint8 step, in normalised units


def rand_images(n, h=24, w=12, seed=0):
    return torch.randint(0, 256, (n, 3, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------ colour ops
def test_weighted_grayscale_is_a_truncated_convex_combination():
    x = rand_images(6)
    w = torch.rand(6, 3, generator=torch.Generator().manual_seed(1))
    out = weighted_grayscale(x, w)
    assert out.dtype == torch.uint8 and out.shape == x.shape
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 0], out[:, 2])
    lo, hi = x.min(1).values.int(), x.max(1).values.int()
    assert ((out[:, 0].int() >= lo - 1) & (out[:, 0].int() <= hi)).all()
    # numpy in float64, as the reference computes it, then uint8 truncation
    wn = (w / w.sum(1, keepdim=True)).double().numpy()
    ref = np.einsum("nc,nchw->nhw", wn, x.double().numpy()).astype(np.uint8)
    assert np.abs(out[:, 0].numpy().astype(int) - ref).max() <= 1


def test_weighted_grayscale_by_hand():
    px = torch.tensor([30, 60, 91], dtype=torch.uint8).view(3, 1, 1)
    assert weighted_grayscale(px, [1.0, 0.0, 0.0]).flatten().tolist() == [30, 30, 30]
    assert weighted_grayscale(px, [0.0, 0.0, 2.0]).flatten().tolist() == [91, 91, 91]
    assert weighted_grayscale(px, [1.0, 1.0, 0.0]).flatten().tolist() == [45, 45, 45]  # 45.0
    assert weighted_grayscale(px, [0.0, 1.0, 1.0]).flatten().tolist() == [75, 75, 75]  # 75.5 truncates


def test_channel_cutmix_background_outside_foreground_inside():
    x = rand_images(1, 20, 8)[0]
    out = channel_cutmix(x, (13, 2, 5, 4), 0, 2)  # a box below row 8: H and W must not be swapped
    inside = torch.zeros(20, 8, dtype=torch.bool)
    inside[13:18, 2:6] = True
    assert torch.equal(out[0], out[1]) and torch.equal(out[0], out[2])
    assert torch.equal(out[0][inside], x[2][inside])
    assert torch.equal(out[0][~inside], x[0][~inside])


def test_channel_cutmix_empty_box_is_the_background_channel():
    x = rand_images(2)
    out = channel_cutmix(x, (0, 0, 0, 0), torch.tensor([1, 2]), torch.tensor([0, 0]))
    assert torch.equal(out[0, 2], x[0, 1]) and torch.equal(out[1, 0], x[1, 2])


def test_spectrum_jitter_endpoints_and_midpoint():
    x = rand_images(3)
    assert torch.equal(spectrum_jitter(x, 1, 1.0), x)
    zero = spectrum_jitter(x, 2, 0.0)
    assert all(torch.equal(zero[:, c], x[:, 2]) for c in range(3))
    px = torch.tensor([10, 20, 31], dtype=torch.uint8).view(3, 1, 1)
    assert spectrum_jitter(px, 0, 0.5).flatten().tolist() == [10, 15, 20]  # 10 + 0.5*(21) = 20.5 truncates


def test_hue_shift_zero_is_identity_and_half_twice_is_nearly_identity():
    x = rand_images(4)
    assert torch.equal(adjust_hue(x, 0.0), x)
    twice = adjust_hue(adjust_hue(x, 0.5), 0.5).int()
    assert (twice - x.int()).abs().max() <= 1


def test_hue_shift_by_hand_and_grey_unchanged():
    red = torch.tensor([255, 0, 0], dtype=torch.uint8).view(3, 1, 1)
    assert adjust_hue(red, 1 / 3).flatten().tolist() == [0, 255, 0]
    assert adjust_hue(red, -1 / 3).flatten().tolist() == [0, 0, 255]
    grey = torch.full((3, 4, 4), 77, dtype=torch.uint8)
    assert torch.equal(adjust_hue(grey, 0.2), grey)


def _colorsys_hue(img, f):
    """Per-pixel reference with Python's colorsys (float HSV)."""
    out = np.empty(img.shape, dtype=np.uint8)
    arr = img.numpy() / 255.0
    for i in range(arr.shape[1]):
        for j in range(arr.shape[2]):
            h, s, v = colorsys.rgb_to_hsv(*arr[:, i, j])
            out[:, i, j] = np.round(np.array(colorsys.hsv_to_rgb((h + f) % 1.0, s, v)) * 255)
    return out


@pytest.mark.parametrize("f", [-0.2, 0.07, 0.2])
def test_hue_matches_a_colorsys_reference(f):
    x = rand_images(1, 12, 10, seed=5)[0]
    diff = np.abs(adjust_hue(x, f).numpy().astype(int) - _colorsys_hue(x, f).astype(int))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.98


# ------------------------------------------------------------------------------------------ geometry, erasing
def test_flip_twice_is_identity():
    x = rand_images(2)
    assert torch.equal(hflip(hflip(x)), x)
    assert torch.equal(hflip(x)[..., 0], x[..., -1])


def test_pad_crop_keeps_size_and_shows_the_pad_value():
    x = rand_images(1, 24, 12)[0]
    assert torch.equal(pad_crop(x, 10, 10, 10), x)  # the centred crop is the image
    corner = pad_crop(x, 0, 0, 10)
    assert corner.shape == x.shape
    assert (corner[:, :10] == 127).all() and (corner[:, :, :10] == 127).all()
    assert torch.equal(corner[:, 10:, 10:], x[:, :14, :2])
    far = pad_crop(x, 20, 20, 10)
    assert (far[:, -10:] == 127).all() and torch.equal(far[:, :14, :2], x[:, 10:, 10:])


def test_pad_crop_matches_numpy_flip_pad_slice_per_image():
    x = rand_images(5, 16, 8)
    top, left = torch.tensor([0, 3, 8, 1, 6]), torch.tensor([8, 0, 4, 2, 7])
    flip = torch.tensor([True, False, True, True, False])
    out = pad_crop(x, top, left, 4, flip=flip)
    for i in range(5):
        img = x[i].numpy()[:, :, ::-1] if flip[i] else x[i].numpy()
        padded = np.pad(img, ((0, 0), (4, 4), (4, 4)), constant_values=127)
        assert np.array_equal(out[i].numpy(), padded[:, top[i] : top[i] + 16, left[i] : left[i] + 8])


def test_erase_writes_value_inside_the_box_only():
    x = normalize(rand_images(1)[0]) + 5.0  # nothing is 0 before erasing
    out = erase(x, (3, 2, 6, 4))
    box = torch.zeros(24, 12, dtype=torch.bool)
    box[3:9, 2:6] = True
    assert (out[:, box] == 0).all() and torch.equal(out[:, ~box], x[:, ~box])


def test_sample_boxes_fit_strictly_inside_and_follow_the_area_range():
    boxes = sample_boxes(2000, (40, 20), (0.02, 0.33), (0.3, 3.3), torch.Generator().manual_seed(0))
    top, left, h, w = boxes.T
    assert ((h < 40) & (w < 20) & (top >= 0) & (left >= 0) & (top + h <= 40) & (left + w <= 20)).all()
    found = h > 0
    assert found.float().mean() > 0.99
    frac = (h * w)[found].double() / 800
    assert frac.min() > 0.01 and frac.max() < 0.40  # rounding of h, w widens the range a little
    assert (boxes[found, 0] + boxes[found, 2] == 40).any() and (boxes[found, 0] == 0).any()


def test_sample_boxes_when_nothing_fits_and_cutmix_does_not_crash():
    boxes = sample_boxes(8, (3, 3), (0.9, 0.99), (0.3, 3.3), torch.Generator().manual_seed(0))
    assert (boxes[:, 2:] == 0).all()
    x = rand_images(8, 3, 3)
    assert torch.equal(channel_cutmix(x, boxes, 0, 1)[:, 1], x[:, 0])


# ------------------------------------------------------------------------------------------ normalise, views
def test_normalize_by_hand():
    x = torch.tensor([0, 255], dtype=torch.uint8).view(1, 1, 2).expand(3, 1, 2)
    out = normalize(x)
    for c in range(3):
        assert out[c, 0, 0].item() == pytest.approx(-IMAGENET_MEAN[c] / IMAGENET_STD[c], abs=1e-6)
        assert out[c, 0, 1].item() == pytest.approx((1 - IMAGENET_MEAN[c]) / IMAGENET_STD[c], abs=1e-6)


def test_spectral_views():
    x = rand_images(2)
    views = spectral_views(x)
    assert views.shape == (4, 2, 3, 24, 12) and views.dtype == torch.uint8
    assert torch.equal(views[0], x)
    for c in range(3):
        assert all(torch.equal(views[c + 1][:, k], x[:, c]) for k in range(3))


# ------------------------------------------------------------------------------------------ the pipeline
def _reference_pipeline(x, modality, p, padding):
    """Per-image numpy/colorsys version of the spec's steps with the same drawn parameters."""
    mean, std = np.array(IMAGENET_MEAN)[:, None, None], np.array(IMAGENET_STD)[:, None, None]
    out = []
    for i in range(len(x)):
        img = x[i].numpy().astype(np.float64)
        code = int(p.colour[i]) if modality[i] == 0 else NO_COLOUR
        if code == HUE:
            img = _colorsys_hue(x[i], float(p.hue[i])).astype(np.float64)
        elif code == WG:
            w = (p.weights[i] / p.weights[i].sum()).double().numpy()
            img = np.repeat(np.tensordot(w, img, 1).astype(np.uint8)[None], 3, 0).astype(np.float64)
        elif code == CC:
            top, left, h, w = p.cc_box[i].tolist()
            bg, fg = p.cc_channels[i].tolist()
            plane = img[bg].copy()
            plane[top : top + h, left : left + w] = img[fg][top : top + h, left : left + w]
            img = np.repeat(plane[None], 3, 0)
        elif code == SJ:
            d, a = img[int(p.sj_channel[i])][None], np.float32(p.sj_alpha[i])
            img = np.floor((d + a * (img - d)).astype(np.float32)).astype(np.float64)
        if p.flip[i]:
            img = img[:, :, ::-1]
        H, W = img.shape[1:]
        img = np.pad(img, ((0, 0), (padding, padding), (padding, padding)), constant_values=127)
        img = img[:, p.offset[i, 0] : p.offset[i, 0] + H, p.offset[i, 1] : p.offset[i, 1] + W]
        img = (img / 255.0 - mean) / std
        top, left, h, w = p.erase_box[i].tolist()
        img[:, top : top + h, left : left + w] = 0
        out.append(img)
    return np.stack(out)


def test_pipeline_matches_a_per_image_reference():
    aug = TrainAugment(size=(24, 12), padding=4)
    x = rand_images(40, 24, 12, seed=3)
    modality = torch.arange(40) % 3 == 0  # one third infrared
    params = aug.draw(40, torch.Generator().manual_seed(7))
    assert set(params.colour.tolist()) == {NO_COLOUR, HUE, WG, CC, SJ}
    out = aug.apply(x, modality.long(), params)
    ref = _reference_pipeline(x, modality.long(), params, 4)
    diff = np.abs(out.double().numpy() - ref)
    assert out.dtype == torch.float32 and out.shape == x.shape
    assert diff.max() <= LEVEL + 1e-5 and (diff > 1e-5).mean() < 0.01  # float32 vs float64 truncation


def test_infrared_images_never_get_a_colour_op():
    aug = TrainAugment(size=(24, 12), padding=4)
    x = rand_images(8)  # colourful "infrared" input
    params = aug.draw(8, torch.Generator().manual_seed(0))
    params.colour[:] = WG
    ir = aug.apply(x, torch.ones(8, dtype=torch.long), params)
    params.colour[:] = NO_COLOUR
    assert torch.equal(ir, aug.apply(x, torch.ones(8, dtype=torch.long), params))
    params.colour[:] = WG
    vis = aug.apply(x, torch.zeros(8, dtype=torch.long), params)
    assert not torch.equal(vis, ir)


def test_same_seed_same_output_other_seed_differs():
    aug = TrainAugment(size=(24, 12), padding=4)
    x, m = rand_images(16), torch.arange(16) % 2
    a = aug(x, m, torch.Generator().manual_seed(3))
    assert torch.equal(a, aug(x, m, torch.Generator().manual_seed(3)))
    assert not torch.equal(a, aug(x, m, torch.Generator().manual_seed(4)))


def test_one_image_and_batch_forms_agree():
    x = rand_images(4)
    g = torch.Generator().manual_seed(2)
    w, f = torch.rand(4, 3, generator=g), torch.rand(4, generator=g) - 0.5
    boxes = sample_boxes(4, (24, 12), (0.02, 0.33), (0.3, 3.3), g)
    ch, a = torch.tensor([0, 1, 2, 1]), torch.rand(4, generator=g)
    top, left, flip = torch.tensor([0, 3, 8, 5]), torch.tensor([8, 1, 2, 4]), torch.tensor([1, 0, 1, 0]).bool()
    batched = [weighted_grayscale(x, w), adjust_hue(x, f), channel_cutmix(x, boxes, ch, (ch + 1) % 3),
               spectrum_jitter(x, ch, a), pad_crop(x, top, left, 4, flip=flip), erase(x, boxes)]
    for i in range(4):
        single = [weighted_grayscale(x[i], w[i]), adjust_hue(x[i], f[i]),
                  channel_cutmix(x[i], boxes[i], ch[i], (ch[i] + 1) % 3), spectrum_jitter(x[i], ch[i], a[i]),
                  pad_crop(x[i], top[i], left[i], 4, flip=flip[i]), erase(x[i], boxes[i])]
        assert all(torch.equal(b[i], s) for b, s in zip(batched, single))
    aug = TrainAugment(size=(24, 12), padding=4)
    params = aug.draw(4, torch.Generator().manual_seed(9))
    out = aug.apply(x, torch.tensor([0, 1, 0, 1]), params)
    idx = torch.tensor([2])
    assert torch.equal(aug.apply(x[2], 0, params.select(idx)), out[2])


def test_choice_frequencies_follow_the_spec():
    n = 40000
    params = TrainAugment().draw(n, torch.Generator().manual_seed(0))
    counts = torch.bincount(params.colour, minlength=5).double() / n
    tol = 5 * math.sqrt(0.125 * 0.875 / n)  # five standard deviations
    assert abs(counts[NO_COLOUR] - 0.5) < 5 * math.sqrt(0.25 / n)
    assert all(abs(counts[c] - 0.125) < tol for c in (HUE, WG, CC, SJ))
    assert abs(params.flip.double().mean() - 0.5) < 0.01
    assert abs((params.erase_box[:, 2] > 0).double().mean() - 0.5) < 0.01
    assert (params.cc_channels[:, 0] != params.cc_channels[:, 1]).all()
    assert len({tuple(c) for c in params.cc_channels.tolist()}) == 6
    assert params.offset.min() == 0 and params.offset.max() == 20
    assert params.hue.abs().max() <= 0.2 and params.hue.min() < -0.19


def test_disabled_ops_become_no_ops_in_the_choice():
    n = 40000
    aug = TrainAugment(wg=False, cc=False, flip=False, crop=False, erase=False)
    params = aug.draw(n, torch.Generator().manual_seed(1))
    counts = torch.bincount(params.colour, minlength=5).double() / n
    assert counts[WG] == 0 and counts[CC] == 0
    assert abs(counts[NO_COLOUR] - 0.75) < 0.015 and abs(counts[HUE] - 0.125) < 0.01
    assert not params.flip.any() and (params.offset == 10).all() and (params.erase_box == 0).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: CPU/GPU equality needs a GPU")
def test_cpu_and_cuda_give_the_same_output():
    aug = TrainAugment()
    x = rand_images(32, 384, 192)
    m = torch.arange(32) % 2
    cpu = aug(x, m, torch.Generator().manual_seed(5))
    gpu = aug(x.cuda(), m.cuda(), torch.Generator().manual_seed(5)).cpu()
    diff = (cpu - gpu).abs()
    # Equal up to float rounding; an x.5 in hue's rounding may flip one level on a rare pixel.
    assert diff.max() <= LEVEL + 1e-5 and (diff > 1e-5).double().mean() < 1e-4


# ------------------------------------------------------------------------------------------ show-augmentations
def _run_show_augmentations(argv):
    import argparse

    from mcja.commands import augment as command

    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers(dest="verb"))
    args = parser.parse_args(["show-augmentations", *argv])
    return args.func(args)


def test_show_augmentations_writes_a_labelled_grid(tmp_path, capsys):
    from PIL import Image

    rng = np.random.default_rng(0)
    for modality in ("visible", "infrared"):
        for pid in (1, 2):
            (tmp_path / "data" / modality / str(pid)).mkdir(parents=True)
            for j in range(2):
                pixels = rng.integers(0, 256, (40, 20, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(tmp_path / "data" / modality / str(pid) / f"c{1 + j}_{j}.png")
    out = tmp_path / "grid.png"
    argv = ["--dataset", "folder", "--root", str(tmp_path / "data"), "--out", str(out), "--size", "48x24"]
    assert _run_show_augmentations(argv) == 0
    grid = Image.open(out)
    assert grid.width >= 9 * 24 and grid.height >= 4 * 48
    assert "4 images x 9 columns" in capsys.readouterr().out


def test_show_augmentations_missing_root_is_a_dataset_error(tmp_path):
    from mcja.errors import DatasetError

    with pytest.raises(DatasetError, match="nowhere"):
        _run_show_augmentations(["--dataset", "sysu", "--root", str(tmp_path / "nowhere"), "--out", "g.png"])
