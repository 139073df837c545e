"""`mcja extract`: npz contents from a folder, a list file or a dataset split; the file feeds mcja.evaluation."""

import os

import numpy as np
import pytest
import torch

from helpers.inference import write_gallery
from mcja.cli import main
from mcja.evaluation import evaluate_pair
from mcja.inference import FeatureExtractor


def test_extract_a_folder_keeps_ids_from_folder_names(checkpoint, gallery, tmp_path, capsys):
    out = tmp_path / "feats.npz"
    assert main(["extract", "--checkpoint", str(checkpoint), "--images", str(gallery), "--out", str(out), "--quiet",
                 "--amp", "off"]) == 0
    assert "features [6, 512] of 6 images (64x32, cpu float32" in capsys.readouterr().out
    with np.load(out) as data:  # no allow_pickle: plain arrays only
        assert set(data.files) == {"features", "paths", "pids", "cameras"}  # cameras from the c1 token
        assert data["features"].dtype == np.float32 and data["features"].shape == (6, 512)
        assert data["pids"].tolist() == [1, 1, 2, 2, 3, 3] and data["cameras"].tolist() == [1] * 6
        paths = data["paths"].tolist()
        np.testing.assert_allclose(np.linalg.norm(data["features"], axis=1), 1.0, rtol=1e-5)
        expected = FeatureExtractor(checkpoint, device="cpu", amp="off")(paths).numpy()
        np.testing.assert_allclose(data["features"], expected, atol=1e-5)
    assert [p.split("/")[-1] for p in paths] == [f"{pid:04d}_c1_{n}.png" for pid in (1, 2, 3) for n in (0, 1)]


def test_dataset_splits_feed_evaluate_pair(checkpoint, synthetic_root, tmp_path):
    root = synthetic_root("sysu", ids=6, images_per_camera=1)
    common = ["extract", "--checkpoint", str(checkpoint), "--dataset", "sysu", "--root", str(root), "--quiet"]
    assert main([*common, "--split", "query", "--out", str(tmp_path / "q.npz")]) == 0
    assert main([*common, "--split", "gallery", "--views", "mser", "--out", str(tmp_path / "g.npz")]) == 0
    q, g = np.load(tmp_path / "q.npz"), np.load(tmp_path / "g.npz")
    assert set(q["modalities"].tolist()) == {1} and set(g["modalities"].tolist()) == {0}  # infrared queries
    assert set(q["cameras"].tolist()) <= {3, 6} and set(g["cameras"].tolist()) <= {1, 2, 4, 5}
    assert g["features"].shape == (4, len(g["paths"]), 512) and q["features"].shape == (len(q["paths"]), 512)
    plain = evaluate_pair(q["features"], q["pids"], q["cameras"], g["features"], g["pids"], g["cameras"])
    reranked = evaluate_pair(q["features"], q["pids"], q["cameras"], g["features"], g["pids"], g["cameras"],
                             rerank="mser", k1=3, k2=2)
    assert 0 <= plain["mAP"] <= 100 and 0 <= reranked["mAP"] <= 100


def test_list_files_plain_and_csv(checkpoint, gallery, tmp_path):
    images = sorted(gallery.rglob("*.png"))
    plain = tmp_path / "images.txt"
    plain.write_text("\n".join(os.path.relpath(p, tmp_path) for p in images) + "\n")  # relative to the list's folder
    assert main(["extract", "--checkpoint", str(checkpoint), "--list", str(plain), "--out", str(tmp_path / "a.npz"),
                 "--quiet"]) == 0
    with np.load(tmp_path / "a.npz") as data:
        assert set(data.files) == {"features", "paths"} and len(data["paths"]) == 6
    csv = tmp_path / "labelled.csv"
    csv.write_text("path,pid,camera,modality\n" + "".join(f"{p},{7 + i},{i % 2 + 1},infrared\n"
                                                          for i, p in enumerate(images[:3])))
    assert main(["extract", "--checkpoint", str(checkpoint), "--list", str(csv), "--out", str(tmp_path / "b.npz"),
                 "--quiet"]) == 0
    with np.load(tmp_path / "b.npz") as data:
        assert data["pids"].tolist() == [7, 8, 9] and data["cameras"].tolist() == [1, 2, 1]
        assert data["modalities"].tolist() == [1, 1, 1]


def test_bad_images_fail_or_are_skipped(checkpoint, tmp_path, capsys):
    folder = tmp_path / "imgs"
    write_gallery(folder, ids=(4,), per_id=2)
    (folder / "0004" / "0004_c2_9.jpg").write_bytes(b"\xff\xd8 truncated jpeg")
    args = ["extract", "--checkpoint", str(checkpoint), "--images", str(folder), "--out", str(tmp_path / "f.npz"), "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "0004_c2_9.jpg: cannot read image" in err
    assert not (tmp_path / "f.npz").exists()
    assert main([*args, "--skip-bad"]) == 0
    captured = capsys.readouterr()
    assert "warning: skipped" in captured.err and "0004_c2_9.jpg" in captured.err
    with np.load(tmp_path / "f.npz") as data:
        assert len(data["paths"]) == 2 and data["features"].shape == (2, 512)
        assert "cameras" not in data.files or data["cameras"].tolist() == [1, 1]


@pytest.mark.parametrize("make_source, message", [
    (lambda d: d, "no images found"),                                  # an empty folder
    (lambda d: d / "absent", "image folder not found"),
])
def test_empty_or_missing_folder_is_one_clear_line(checkpoint, tmp_path, capsys, make_source, message):
    source = make_source(tmp_path)
    assert main(["extract", "--checkpoint", str(checkpoint), "--images", str(source), "--out", str(tmp_path / "x.npz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and str(source) in err


def test_checkpoint_that_is_not_a_model(gallery, tmp_path, capsys):
    not_model = tmp_path / "notes.pt"
    torch.save({"epoch": 3, "notes": "hello"}, not_model)
    text = tmp_path / "readme.pt"
    text.write_text("just text")
    for path, message in ((not_model, "not a checkpoint"), (text, "not a PyTorch checkpoint (a text file)")):
        assert main(["extract", "--checkpoint", str(path), "--images", str(gallery), "--out", str(tmp_path / "x.npz")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err and str(path) in err


def test_option_mistakes_are_one_clear_line(checkpoint, gallery, tmp_path, capsys):
    base = ["extract", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "x.npz")]
    cases = [
        (["--images", str(gallery), "--root", str(gallery)], "--root names a dataset's folder"),
        (["--dataset", "sysu"], "--dataset sysu needs --root"),
        (["--images", str(gallery), "--device", "tpu"], "device 'tpu'"),
        (["--images", str(gallery), "--batch-size", "0"], "batch size"),
    ]
    for args, message in cases:
        assert main([*base, *args]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
