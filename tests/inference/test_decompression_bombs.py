"""Decompression bombs (huge declared sizes in a tiny file) are refused naming the file, and skipped under --skip-bad."""

import struct
import zlib

import numpy as np
import pytest

from helpers.inference import write_gallery
from mcja.cli import main
from mcja.data.images import load_rgb
from mcja.errors import DatasetError


def _bomb(path, width, height):
    """A tiny PNG declaring width x height 1-bit pixels, written byte by byte (PIL reads the header only)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


# 400 M pixels: PIL raises DecompressionBombError; 100 M: PIL only warns and would decode it
SIZES = [(20000, 20000), (10000, 10000)]


@pytest.mark.parametrize("size", SIZES, ids=["above 2x limit", "above limit"])
def test_loader_refuses_naming_the_file(tmp_path, size):
    path = _bomb(tmp_path / "bomb.png", *size)
    with pytest.raises(DatasetError, match=r"bomb.png: refusing to decode a possible decompression bomb"):
        load_rgb(path)


@pytest.mark.parametrize("size", SIZES, ids=["above 2x limit", "above limit"])
def test_extract_fails_or_skips_it(checkpoint, tmp_path, capsys, size):
    folder = tmp_path / "imgs"
    write_gallery(folder, ids=(5,), per_id=2)
    bomb = _bomb(folder / "0005" / "0005_c1_9.png", *size)
    args = ["extract", "--checkpoint", str(checkpoint), "--images", str(folder), "--out", str(tmp_path / "f.npz"), "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{bomb}: refusing to decode" in err, err
    assert main([*args, "--skip-bad"]) == 0
    assert f"warning: skipped {bomb}: refusing to decode" in capsys.readouterr().err
    with np.load(tmp_path / "f.npz") as data:
        assert len(data["paths"]) == 2 and str(bomb) not in data["paths"].tolist()


def test_data_info_verify_names_it(tmp_path, capsys):
    root = tmp_path / "folder"
    for modality in ("visible", "infrared"):
        write_gallery(root / modality, ids=(1,), per_id=1)
    bomb = _bomb(root / "infrared" / "0001" / "0001_c2_5.png", 20000, 20000)
    assert main(["data-info", "--dataset", "folder", "--root", str(root), "--verify"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("mcja data-info: error: ") and str(bomb) in err


def test_an_image_just_over_the_limit_is_refused_in_one_line_without_pil_s_warning(checkpoint, tmp_path, capsys,
                                                                                    monkeypatch):
    """Between 1x and 2x the limit PIL only warns (and would decode): our line alone, no warning before it."""
    import warnings

    from PIL import Image

    folder = tmp_path / "imgs"
    big = write_gallery(folder, ids=(5,), per_id=1)[0]  # 64 x 32 = 2048 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # 2048 is just above it, below twice it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(DatasetError) as err:
            load_rgb(big)
        code = main(["extract", "--checkpoint", str(checkpoint), "--images", str(folder), "--out",
                     str(tmp_path / "f.npz"), "--quiet"])
    assert str(err.value) == (f"{big}: refusing to decode a possible decompression bomb (32x64 pixels, more than "
                              "PIL's limit of 2000)")
    assert code == 2 and capsys.readouterr().err == f"mcja extract: error: {err.value}\n"
    assert not caught, [str(w.message) for w in caught]
