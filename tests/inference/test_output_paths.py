"""A read-only or impossible output path is one line and exit 2, found before any image is decoded or embedded."""

import os
from pathlib import Path

import pytest

from helpers.cli import one_line_error
from mcja.cli import main
from mcja.errors import ConfigError
from mcja.utils.io import ensure_writable_dir, ensure_writable_file


@pytest.fixture
def read_only(tmp_path):
    """A folder this process cannot write in: chmod 555 for a normal user; root ignores permission bits, so
    there a read-only system folder (/sys) stands in."""
    if os.geteuid() != 0:
        folder = tmp_path / "locked"
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if os.access("/sys", os.W_OK) and _writable(Path("/sys")):
        pytest.skip("running as root on a machine where /sys is writable")
    yield Path("/sys")


def _writable(folder):
    try:
        ensure_writable_dir(folder, "probe")
        return True
    except ConfigError:
        return False


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "plain.txt"
    path.write_text("not a folder\n")
    return path


@pytest.fixture
def no_decoding(monkeypatch, tmp_path):
    """A fresh image cache folder (must stay empty) and an image loader that fails the test if called."""
    import mcja.data.images
    import mcja.inference.extractor

    def forbidden(*args, **kwargs):
        pytest.fail("an image was decoded before the output path was checked")

    monkeypatch.setattr(mcja.data.images, "load_rgb", forbidden)
    monkeypatch.setattr(mcja.inference.extractor, "load_rgb", forbidden)
    monkeypatch.setenv("MCJA_CACHE_DIR", str(tmp_path / "fresh-cache"))
    return tmp_path / "fresh-cache"


def test_helpers(tmp_path, a_file, read_only):
    assert ensure_writable_dir(tmp_path / "new" / "deeper", "--out") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # checking creates nothing
    assert list(tmp_path.iterdir()) == [a_file]  # and leaves no probe file behind
    with pytest.raises(ConfigError, match=r"--out .*plain.txt is a file, not a folder"):
        ensure_writable_dir(a_file / "sub", "--out")
    with pytest.raises(ConfigError, match="--out .*cannot write in"):
        ensure_writable_dir(read_only / "out", "--out")
    with pytest.raises(ConfigError, match="is a folder; expected a file name"):
        ensure_writable_file(tmp_path, "--onnx")


@pytest.mark.parametrize("kind", ["under a file", "read-only"])
def test_search_and_extract(checkpoint, gallery, a_file, read_only, no_decoding, capsys, kind):
    base = a_file if kind == "under a file" else read_only
    query = str(gallery / "0001" / "0001_c1_0.png")
    assert main(["search", "--checkpoint", str(checkpoint), "--query", query, "--gallery", str(gallery),
                 "--out", str(base / "results"), "--quiet"]) == 2
    one_line_error(capsys, "--out", str(base / "results"))
    assert main(["extract", "--checkpoint", str(checkpoint), "--images", str(gallery), "--out", str(base / "f.npz"),
                 "--quiet"]) == 2
    one_line_error(capsys, "--out", "f.npz")


def test_export(checkpoint, a_file, read_only, capsys):
    pytest.importorskip("onnx")
    for path in (a_file / "m.onnx", read_only / "m.onnx"):
        assert main(["export", "--checkpoint", str(checkpoint), "--onnx", str(path)]) == 2
        one_line_error(capsys, "--onnx", str(path))


def test_test_out_and_cache_folder(checkpoint, synthetic_root, a_file, read_only, no_decoding, tmp_path, capsys,
                                   monkeypatch):
    root = synthetic_root("regdb")
    base = ["test", "--checkpoint", str(checkpoint), "--dataset", "regdb", "--root", str(root), "--quiet"]
    for out in (a_file / "res", read_only / "res"):
        assert main([*base, "--out", str(out)]) == 2
        one_line_error(capsys, "--out", str(out))
    assert not no_decoding.exists()
    monkeypatch.setenv("MCJA_CACHE_DIR", str(a_file / "cache"))
    assert main([*base, "--out", str(tmp_path / "res")]) == 2
    one_line_error(capsys, "image cache folder", "plain.txt is a file")
    assert not (tmp_path / "res").exists()


def test_other_writers_check_first(synthetic_root, a_file, read_only, tmp_path, capsys):
    for out in (a_file / "x", read_only / "x"):
        assert main(["make-synthetic", "--layout", "regdb", "--out", str(out), "--ids", "2"]) == 2
        one_line_error(capsys, "--out", str(out))
        assert main(["demo", "--out", str(out)]) == 2
        one_line_error(capsys, "--out", str(out))
    root = synthetic_root("regdb")
    assert main(["show-augmentations", "--dataset", "regdb", "--root", str(root), "--out", str(a_file / "g.png")]) == 2
    one_line_error(capsys, "--out", "g.png")
