"""Image cache: contents equal load_resized, built once and reused, rebuilt on any change, safe on errors."""

import os
import pickle
import threading

import numpy as np
import pytest
import torch
from PIL import Image

import mcja.data.cache as cache_module
from mcja.data.cache import ImageCache
from mcja.data.images import load_resized
from mcja.errors import DatasetError

SIZE = (16, 8)


@pytest.fixture
def images(tmp_path):
    """Five small PNGs of different sizes."""
    rng = np.random.default_rng(0)
    paths = []
    for i, (h, w) in enumerate([(30, 14), (24, 12), (16, 8), (41, 20), (10, 7)]):
        path = tmp_path / "img" / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


@pytest.fixture
def decodes(monkeypatch):
    """Counts the images decoded by cache builds."""
    calls = []

    def counting(path, size):
        calls.append(path)
        return load_resized(path, size)

    monkeypatch.setattr(cache_module, "load_resized", counting)
    return calls


def build(paths, tmp_path, **kw):
    size = kw.pop("size", SIZE)
    return ImageCache.build(paths, size, cache_dir=tmp_path / "cache", tag="t-train", progress=False, **kw)


def test_contents_equal_load_resized(images, tmp_path):
    cache = build(images, tmp_path)
    assert len(cache) == 5 and cache.array.shape[1:3] == SIZE and cache.file.suffix == ".npy"
    for i, path in enumerate(images):
        assert np.array_equal(cache[i], load_resized(path, SIZE))
    assert np.array_equal(cache[np.array([3, 1])], np.stack([cache[3], cache[1]]))
    batch = cache.batch([4, 0, 4])
    assert batch.dtype == torch.uint8 and batch.shape == (3, 3, 16, 8) and batch.is_contiguous()
    assert np.array_equal(batch[1].permute(1, 2, 0).numpy(), load_resized(images[0], SIZE))


def test_second_build_reuses_the_file_without_decoding(images, tmp_path, decodes):
    first = build(images, tmp_path)
    assert len(decodes) == 5
    stamp = first.file.stat().st_mtime_ns
    second = build(images, tmp_path)
    assert len(decodes) == 5 and second.file == first.file and second.file.stat().st_mtime_ns == stamp


@pytest.mark.parametrize("change", ["drop", "reorder", "rewrite", "touch", "size", "tag"])
def test_rebuilt_when_an_input_changes(images, tmp_path, decodes, change):
    first = build(images, tmp_path)
    kw = {}
    if change == "drop":
        images = images[:-1]
    elif change == "reorder":
        images = images[::-1]
    elif change == "rewrite":  # new content (a new size on disk as well)
        Image.fromarray(np.zeros((30, 14, 3), np.uint8)).save(images[0])
    elif change == "touch":
        st = os.stat(images[2])
        os.utime(images[2], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    elif change == "size":
        kw["size"] = (12, 6)
    second = ImageCache.build(images, kw.get("size", SIZE), cache_dir=tmp_path / "cache",
                              tag="t-query" if change == "tag" else "t-train", progress=False)
    assert len(decodes) == 5 + len(images) and second.file != first.file
    for i, path in enumerate(images):
        assert np.array_equal(second[i], load_resized(path, kw.get("size", SIZE)))


def test_corrupt_image_fails_the_build_naming_it_and_leaves_no_file(images, tmp_path):
    with open(images[3], "wb") as f:
        f.write(b"not an image at all")
    with pytest.raises(DatasetError, match=str(images[3])):
        build(images, tmp_path, num_workers=2)
    assert not list((tmp_path / "cache").glob("*.npy")) and not list((tmp_path / "cache").glob("*.tmp"))


def test_missing_image_is_named(images, tmp_path):
    os.remove(images[1])
    with pytest.raises(DatasetError, match=str(images[1])):
        build(images, tmp_path)


def test_a_damaged_cache_file_is_rebuilt(images, tmp_path, decodes):
    cache = build(images, tmp_path)
    cache.file.write_bytes(b"\x93NUMPY truncated")
    assert np.array_equal(build(images, tmp_path)[2], load_resized(images[2], SIZE))
    assert len(decodes) == 10


def test_threads_and_concurrent_builders_give_the_same_cache(images, tmp_path, decodes):
    results = []
    job = lambda: results.append(build(images, tmp_path, num_workers=2))  # noqa: E731
    threads = [threading.Thread(target=job) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and len({r.file for r in results}) == 1
    assert len(decodes) == 5  # the lock let one builder decode; the others reused its file
    assert all(np.array_equal(r[i], load_resized(p, SIZE)) for r in results for i, p in enumerate(images))


def test_default_dir_honours_mcja_cache_dir(images, tmp_path, monkeypatch):
    monkeypatch.setenv("MCJA_CACHE_DIR", str(tmp_path / "env-cache"))
    cache = ImageCache.build(images, SIZE, tag="x", progress=False)
    assert cache.file.parent == tmp_path / "env-cache"


def test_pickles_as_a_path_and_reopens(images, tmp_path):
    cache = build(images, tmp_path)
    cache.batch([0])  # opens the memory map
    blob = pickle.dumps(cache)
    assert len(blob) < 1000
    assert np.array_equal(pickle.loads(blob)[np.arange(5)], cache[np.arange(5)])


def test_empty_list_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="empty"):
        ImageCache.build([], SIZE, cache_dir=tmp_path, tag="t", progress=False)
