"""Soft rank against a sequential pool-adjacent-violators reference: values, gradients, limits, dtypes, tiling."""

from __future__ import annotations

import pytest
import torch

from helpers.losses import pav_block_ids, reference_soft_rank
from mcja.losses import SoftRank, soft_rank
from mcja.losses.softrank import pav_gaps


def _rows(kind: str, generator: torch.Generator) -> torch.Tensor:
    """Test rows of one kind, float64, 5 rows of 9 values."""
    x = torch.randn(5, 9, generator=generator, dtype=torch.float64)
    if kind == "ties":
        x = torch.randint(0, 3, (5, 9), generator=generator).double() * 0.3
    elif kind == "constant":
        x = torch.full((5, 9), 0.7, dtype=torch.float64)
    elif kind == "equal_means":  # integer steps of exactly the strength: every y equal, one pooled block
        x = torch.stack([torch.randperm(9, generator=generator) for _ in range(5)]).double() * 0.25
    elif kind == "large":
        x = x * 1e3
    return x


def _check_against_reference(x, strength, generator, rtol=1e-9, atol=1e-9):
    ours_in = x.clone().requires_grad_()
    ref_in = x.double().clone().requires_grad_()
    ours, ref = soft_rank(ours_in, strength), reference_soft_rank(ref_in, strength)
    torch.testing.assert_close(ours.double(), ref.detach(), rtol=rtol, atol=atol)
    upstream = torch.randn(x.shape, generator=generator, dtype=torch.float64)
    (ours.double() * upstream).sum().backward()
    (ref * upstream).sum().backward()
    torch.testing.assert_close(ours_in.grad.double(), ref_in.grad, rtol=rtol, atol=atol * max(1.0, 1 / strength))


@pytest.mark.parametrize("kind", ["random", "ties", "constant", "equal_means", "large"])
@pytest.mark.parametrize("strength", [0.02, 0.25, 0.5, 3.0])
def test_matches_sequential_pav_in_float64(kind, strength):
    generator = torch.Generator().manual_seed(len(kind) * 1000 + int(strength * 100))
    _check_against_reference(_rows(kind, generator), strength, generator)


@pytest.mark.parametrize("kind", ["random", "ties", "large"])
def test_matches_sequential_pav_in_float32(kind):
    generator = torch.Generator().manual_seed(7)
    x = _rows(kind, generator).float()
    ours = soft_rank(x, 0.1)
    assert ours.dtype == torch.float32
    _check_against_reference(x, 0.1, generator, rtol=1e-5, atol=1e-5)


def test_multi_block_rows_actually_occur():
    # guards the tests above against only ever seeing one block per row
    x = _rows("random", torch.Generator().manual_seed(1))[0] / 0.25
    s = x.sort(descending=True).values
    ids = pav_block_ids((s - torch.arange(9, 0, -1)).tolist())
    assert 1 < len(set(ids)) < 9


@pytest.mark.parametrize("kind", ["random", "ties", "constant", "equal_means", "large"])
def test_gap_criterion_gives_the_pav_block_starts(kind):
    generator = torch.Generator().manual_seed(3)
    for strength in (0.05, 0.5, 2.0):
        s = (_rows(kind, generator) / strength).sort(dim=-1, descending=True).values
        y = s - torch.arange(9, 0, -1, dtype=torch.float64)
        starts = pav_gaps(y) > 0
        for row, row_starts in zip(y, starts):
            ids = pav_block_ids(row.tolist())
            expected = [ids[k] != ids[k - 1] for k in range(1, len(ids))]
            assert row_starts.tolist() == expected


def test_gap_criterion_on_long_rows_with_different_block_counts():
    x = torch.randn(6, 300, dtype=torch.float64, generator=torch.Generator().manual_seed(11))
    x = x * torch.tensor([1e-3, 100.0, 200.0, 400.0, 1e3, 1e5], dtype=torch.float64)[:, None]
    y = x.sort(dim=-1, descending=True).values - torch.arange(300, 0, -1, dtype=torch.float64)
    starts = pav_gaps(y) > 0
    counts = []
    for row, row_starts in zip(y, starts):
        ids = pav_block_ids(row.tolist())
        assert row_starts.tolist() == [ids[k] != ids[k - 1] for k in range(1, len(ids))]
        counts.append(ids[-1] + 1)
    assert counts[0] == 1 and counts[-1] == 300 and len(set(counts)) == 6, counts


def test_tiling_does_not_change_the_gaps():
    y = torch.randn(3, 30, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).cumsum(-1)
    whole = pav_gaps(y)
    for tile_elements in (1, 7, 100, 31 * 31, 2 * 31 * 31):
        torch.testing.assert_close(pav_gaps(y, tile_elements), whole, rtol=0, atol=0)


def test_gradcheck_float64():
    x = torch.randn(3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(5), requires_grad=True)
    for strength in (0.1, 0.5, 2.0):
        assert torch.autograd.gradcheck(lambda t: soft_rank(t, strength), (x,), eps=1e-7, atol=1e-6)


def test_small_strength_gives_hard_ranks():
    x = torch.randn(4, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    hard = x.argsort(dim=-1).argsort(dim=-1).double() + 1
    torch.testing.assert_close(soft_rank(x, 1e-6), hard, rtol=0, atol=1e-9)


def test_rows_sum_to_n_n_plus_1_over_2_and_leading_dims_are_rows():
    x = torch.randn(2, 3, 10, generator=torch.Generator().manual_seed(4))
    ranks = soft_rank(x, 0.3)
    assert ranks.shape == (2, 3, 10)
    torch.testing.assert_close(ranks.sum(-1), torch.full((2, 3), 55.0))
    torch.testing.assert_close(ranks, torch.stack([soft_rank(row, 0.3) for row in x.reshape(6, 10)]).reshape(2, 3, 10))


def test_single_block_is_the_closed_form():
    # spread of x well under the strength: one block, R = (n+1)/2 + (x - mean x)/strength (MCJA-SPEC)
    x = torch.rand(3, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(6)) * 0.1
    torch.testing.assert_close(soft_rank(x, 0.5), 4.5 + (x - x.mean(-1, keepdim=True)) / 0.5)


def test_near_equal_blocks_share_a_gradient_block_like_torchsort():
    # two blocks whose means differ by 1e-12: values split, gradient pooled (torchsort's 1e-9 partition)
    x = torch.tensor([0.0, 1.0 + 1e-12], dtype=torch.float64, requires_grad=True)
    ranks = soft_rank(x, 1.0)
    torch.testing.assert_close(ranks.detach(), torch.tensor([1.0, 2.0], dtype=torch.float64))
    ranks[0].backward()
    torch.testing.assert_close(x.grad, torch.tensor([0.5, -0.5], dtype=torch.float64))


def test_low_precision_inputs_compute_in_float32():
    x = torch.randn(4, 16, generator=torch.Generator().manual_seed(8)).bfloat16().requires_grad_()
    ranks = soft_rank(x, 0.2)
    assert ranks.dtype == torch.float32
    torch.testing.assert_close(ranks.double(), reference_soft_rank(x.detach().double(), 0.2), rtol=1e-6, atol=1e-5)
    ranks.sum().backward()
    assert x.grad.dtype == torch.bfloat16


def test_edge_shapes_and_bad_arguments():
    assert soft_rank(torch.tensor([[3.0]]), 0.5).tolist() == [[1.0]]
    assert soft_rank(torch.zeros(4, 0)).shape == (4, 0)
    assert SoftRank.apply(torch.tensor([2.0, 1.0]), 1e-3).tolist() == [2.0, 1.0]
    with pytest.raises(ValueError, match="strength"):
        soft_rank(torch.ones(3), 0.0)
    with pytest.raises(TypeError):
        soft_rank(torch.arange(3))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    x = torch.randn(6, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    upstream = torch.randn(6, 40, dtype=torch.float64)
    results = []
    for device in ("cpu", "cuda"):
        xd = x.to(device).requires_grad_()
        ranks = soft_rank(xd, 0.05)
        (ranks * upstream.to(device)).sum().backward()
        results.append((ranks.detach().cpu(), xd.grad.cpu()))
    torch.testing.assert_close(results[0], results[1])
