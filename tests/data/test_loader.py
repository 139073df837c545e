"""Training batches gathered from the cache by the PK sampler; test-time chunks in order."""

import numpy as np
import pytest
import torch
from PIL import Image

from mcja.data.cache import ImageCache
from mcja.data.loader import TrainLoader, iterate_batches
from mcja.data.records import Sample
from mcja.data.sampler import PKSampler

SIZE = (12, 6)


@pytest.fixture
def data(tmp_path):
    """Six identities x 2..7 images (cameras 1..6, modality from the camera), cached."""
    rng = np.random.default_rng(1)
    samples = []
    for pid, count in enumerate([2, 5, 7, 4, 6, 3]):
        for j in range(count):
            path = tmp_path / f"{pid}_{j}.png"
            Image.fromarray(rng.integers(0, 256, (20, 9, 3), dtype=np.uint8)).save(path)
            camera = 1 + (pid + j) % 6
            samples.append(Sample(str(path), 100 + pid, camera, int(camera in (3, 6)), pid))
    cache = ImageCache.build([s.path for s in samples], SIZE, cache_dir=tmp_path / "cache", tag="l", progress=False)
    return samples, cache


def check_batch(batch, samples, cache):
    idx = batch["indices"].numpy()
    assert torch.equal(batch["images"], cache.batch(idx))
    assert batch["labels"].tolist() == [samples[i].label for i in idx]
    assert batch["modalities"].tolist() == [samples[i].modality for i in idx]
    assert batch["cameras"].tolist() == [samples[i].camera for i in idx]
    assert all(t.dtype == torch.int64 for k, t in batch.items() if k != "images")


def test_batches_follow_the_sampler_and_carry_the_records(data):
    samples, cache = data
    sampler = PKSampler([s.label for s in samples], 2, 3, seed=0)
    loader = TrainLoader(samples, cache, sampler)
    sampler.set_epoch(1)
    batches = list(loader)
    assert len(batches) == len(loader) == len(sampler) > 0
    assert [b["indices"].tolist() for b in batches] == list(sampler)
    for b in batches:
        check_batch(b, samples, cache)
        assert b["images"].shape == (6, 3, *SIZE)


def test_resume_from_a_step_and_workers_give_the_same_batches(data):
    samples, cache = data
    labels = [s.label for s in samples]
    plain = TrainLoader(samples, cache, PKSampler(labels, 2, 3, seed=4))
    full = [b["indices"].tolist() for b in plain]
    assert [b["indices"].tolist() for b in plain.iter_from(1)] == full[1:]
    worker = TrainLoader(samples, cache, PKSampler(labels, 2, 3, seed=4), num_workers=1)
    got = list(worker.iter_from(1))
    assert [b["indices"].tolist() for b in got] == full[1:]
    check_batch(got[0], samples, cache)
    assert [b["indices"].tolist() for b in worker] == full  # workers persist; a new pass starts over


def test_mismatched_samples_and_cache_is_an_error(data):
    samples, cache = data
    with pytest.raises(ValueError, match="holds 27 images"):
        TrainLoader(samples[:-1], cache, PKSampler([s.label for s in samples[:-1]], 2, 3))


def test_iterate_batches_covers_the_cache_in_order(data):
    _, cache = data
    chunks = list(iterate_batches(cache, 10))
    assert [start for start, _ in chunks] == [0, 10, 20]
    assert [len(x) for _, x in chunks] == [10, 10, 7]
    assert torch.equal(torch.cat([x for _, x in chunks]), cache.batch(np.arange(len(cache))))
