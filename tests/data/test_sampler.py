"""PK sampler: batch shape, epoch coverage, seeding, distributed split and resume."""

from collections import Counter

import numpy as np
import pytest

from mcja.data.sampler import PKSampler
from mcja.errors import ConfigError

# 10 identities with 1..17 images, some fewer than K = 4; indices interleaved across ids.
COUNTS = [1, 3, 4, 5, 8, 9, 12, 2, 7, 17]
LABELS = np.random.default_rng(0).permutation(np.repeat(np.arange(10) * 7 + 3, COUNTS))  # labels need not be 0..N-1
P, K = 3, 4


def epoch(sampler, e):
    sampler.set_epoch(e)
    return list(sampler)


def test_every_batch_has_p_ids_with_k_images_each():
    batches = epoch(PKSampler(LABELS, P, K, seed=1), 0)
    assert batches
    for batch in batches:
        assert len(batch) == P * K
        ids = [LABELS[batch[j * K]] for j in range(P)]
        assert len(set(ids)) == P
        for j, pid in enumerate(ids):  # K consecutive entries of one id
            assert all(LABELS[i] == pid for i in batch[j * K : (j + 1) * K])


def test_an_epoch_covers_every_chunk_until_fewer_than_p_ids_remain():
    for e in range(5):
        batches = epoch(PKSampler(LABELS, P, K, seed=2), e)
        chunks = Counter()
        per_id = {pid: [] for pid in np.unique(LABELS)}
        for batch in batches:
            for j in range(P):
                chunk = batch[j * K : (j + 1) * K]
                chunks[LABELS[chunk[0]]] += 1
                per_id[LABELS[chunk[0]]].extend(chunk)
        expected = {pid: max(1, c // K) for pid, c in zip(np.arange(10) * 7 + 3, COUNTS)}
        assert all(chunks[pid] <= expected[pid] for pid in expected)
        assert sum(chunks[pid] < expected[pid] for pid in expected) < P  # left-overs: fewer than P ids
        for pid, idxs in per_id.items():
            if expected[pid] and Counter(LABELS)[pid] >= K:
                assert len(set(idxs)) == len(idxs)  # no image twice unless the id needed padding
        small = [pid for pid, c in zip(np.arange(10) * 7 + 3, COUNTS) if c < K]
        assert all(chunks[pid] in (0, 1) for pid in small)


def test_ids_with_fewer_than_k_images_are_padded_by_replacement():
    labels = [0] * 2 + [1] * 4 + [2] * 4
    sampler = PKSampler(labels, 3, 4, seed=0)
    (batch,) = epoch(sampler, 0)
    chunk0 = [i for i in batch if labels[i] == 0]
    assert len(chunk0) == 4 and set(chunk0) <= {0, 1}


def test_len_is_known_upfront_and_matches_the_epoch():
    sampler = PKSampler(LABELS, P, K, seed=3)
    for e in range(4):
        sampler.set_epoch(e)
        n = len(sampler)
        assert n == len(list(sampler)) > 0


def test_seeded_repeatability_and_epochs_differ():
    a, b = PKSampler(LABELS, P, K, seed=4), PKSampler(LABELS, P, K, seed=4)
    assert epoch(a, 3) == epoch(b, 3)
    assert epoch(a, 0) != epoch(a, 1)
    assert epoch(a, 0) != epoch(PKSampler(LABELS, P, K, seed=5), 0)
    assert epoch(a, 2) == epoch(a, 2)  # a pure function of (seed, epoch), not of call history


@pytest.mark.parametrize("world", [2, 3])
def test_distributed_ranks_are_disjoint_and_together_equal_one_process(world):
    labels = np.repeat(np.arange(12), [5, 9, 4, 13, 8, 2, 16, 7, 6, 11, 4, 10])
    single = epoch(PKSampler(labels, 2 * world, 4, seed=6), 1)
    ranks = [epoch(PKSampler(labels, 2, 4, seed=6, rank=r, world_size=world), 1) for r in range(world)]
    assert len({len(r) for r in ranks}) == 1 and len(ranks[0]) == len(single)
    for step, whole in enumerate(single):
        ids = [set(labels[r[step]]) for r in ranks]
        assert all(len(s) == 2 for s in ids)
        assert len(set().union(*ids)) == 2 * world  # disjoint at every step
        assert sum((r[step] for r in ranks), []) == whole


def test_resume_from_a_step_is_the_tail_of_the_epoch():
    sampler = PKSampler(LABELS, P, K, seed=7)
    full = epoch(sampler, 5)
    restored = PKSampler(LABELS, P, K, seed=7)  # a resume: the config's seed, the checkpoint's epoch
    restored.set_epoch(5)
    assert list(restored.iter_from(2)) == full[2:]
    assert list(restored.iter_from(len(full))) == []


def test_too_few_ids_is_a_clear_error():
    with pytest.raises(ConfigError, match="at least P x world size = 8 identities"):
        PKSampler([0, 1, 2, 3], 4, 2, world_size=2)
