"""CMR loss: a hand-computed batch, the dropping rules, the reference loop on PK batches, and its pull direction."""

from __future__ import annotations

import math

import pytest
import torch

from helpers.losses import reference_cmr, reference_soft_rank
from mcja.losses import CMRLoss


def _at_degrees(*angles: float) -> torch.Tensor:
    return torch.tensor([[math.cos(math.radians(a)), math.sin(math.radians(a))] for a in angles])


def test_hand_computed_batch():
    # visible A 0deg, B 150deg, C 180deg (C has no infrared image); infrared A 60deg, B 90deg.
    # d = (1 - cos)/2. One block per row, so R = (G+1)/2 + (d - mean d)/0.5.
    # visible queries (G = 2), C dropped (no match):
    #   A: d(iA, iB) = (.25, .5) -> R = (1.25, 1.75), T = (1, 2) -> |R-T| = (.25, .25)
    #   B: d(iA, iB) = (.5, .25) -> R = (1.75, 1.25), T = (2, 1) -> (.25, .25)      loss_0 = 1/4
    # infrared queries (G = 3, gallery vA, vB, vC):
    #   A: d = (.25, .5, .75), mean .5   -> R = (1.5, 2, 2.5),  T = (1, 3, 3) -> sum |R-T| = 2
    #   B: d = (.5, .25, .5), mean 5/12  -> R = (13/6, 5/3, 13/6), T = (3, 1, 3) -> sum 7/3
    #   loss_1 = (2 + 7/3) / 6 = 13/18;   CMR = (1/4 + 13/18) / 2 = 35/72
    embeddings = _at_degrees(0, 150, 180, 60, 90) * torch.tensor([[1.0], [2.0], [0.5], [3.0], [1.0]])
    ids = torch.tensor([0, 1, 2, 0, 1])
    modalities = torch.tensor([0, 0, 0, 1, 1])
    loss = CMRLoss()(embeddings, ids, modalities)
    assert loss.dtype == torch.float32 and loss.dim() == 0
    assert loss.item() == pytest.approx(35 / 72, rel=1e-6)


def _pk_batch(p: int, k: int, dim: int, seed: int, infrared_share: float = 0.5):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.arange(p).repeat_interleave(k)
    modalities = (torch.rand(p * k, generator=generator) < infrared_share).long()
    embeddings = torch.randn(p, dim, generator=generator)[ids] + torch.randn(p * k, dim, generator=generator)
    return embeddings, ids, modalities


def _value_and_grad(loss_fn, embeddings, ids, modalities):
    x = embeddings.clone().requires_grad_()
    loss = loss_fn(x, ids, modalities)
    loss.backward()
    return loss.detach().double(), x.grad.double()


@pytest.mark.parametrize(("p", "k", "seed", "infrared_share"), [(8, 16, 0, 0.5), (8, 16, 1, 0.2), (4, 32, 2, 0.5), (4, 32, 3, 0.9)])
@pytest.mark.parametrize("strength", [0.5, 0.01])  # 0.5: one block per row; 0.01: about three
def test_equals_the_reference_loop_on_pk_batches(p, k, seed, infrared_share, strength):
    embeddings, ids, modalities = _pk_batch(p, k, 32, seed, infrared_share)
    ours, ours_grad = _value_and_grad(CMRLoss(strength), embeddings, ids, modalities)
    ref, ref_grad = _value_and_grad(lambda *a: reference_cmr(*a, strength=strength), embeddings, ids, modalities)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=0)
    torch.testing.assert_close(ours_grad, ref_grad, rtol=1e-4, atol=1e-4 * ref_grad.abs().max().item())


def test_identity_seen_in_one_modality_only_is_dropped_as_query():
    embeddings, ids, modalities = _pk_batch(4, 8, 16, 4)
    ids[modalities == 1] = torch.where(ids[modalities == 1] == 3, 2, ids[modalities == 1])  # id 3: visible only
    assert not ((ids == 3) & (modalities == 1)).any() and ((ids == 3) & (modalities == 0)).any()
    ours, ours_grad = _value_and_grad(CMRLoss(), embeddings, ids, modalities)
    ref, ref_grad = _value_and_grad(reference_cmr, embeddings, ids, modalities)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=0)
    torch.testing.assert_close(ours_grad, ref_grad, rtol=1e-4, atol=1e-4 * ref_grad.abs().max().item())


def test_all_match_gallery_drops_its_queries_and_the_mean_is_over_used_modalities():
    # visible: A, A, B; infrared: A, A. Visible queries: A sees only matches, B none -> modality 0 skipped,
    # so CMR is the infrared loss alone (not halved).
    embeddings = torch.randn(5, 8, generator=torch.Generator().manual_seed(5))
    ids, modalities = torch.tensor([0, 0, 1, 0, 0]), torch.tensor([0, 0, 0, 1, 1])
    query, gallery = embeddings[3:], embeddings[:3]
    cos = torch.nn.functional.cosine_similarity(query[:, None], gallery[None], dim=-1)
    ranks = reference_soft_rank((1 - cos) / 2, 0.5)
    expected = (ranks - torch.tensor([1.0, 1.0, 3.0])).abs().mean()
    assert CMRLoss()(embeddings, ids, modalities).item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("case", ["single_identity", "single_modality"])
def test_nothing_usable_gives_a_zero_that_backpropagates(case):
    embeddings = torch.randn(6, 4, generator=torch.Generator().manual_seed(6))
    embeddings[0] = math.inf  # a zero made as 0 * sum(embeddings) would turn into nan
    embeddings = embeddings.requires_grad_()
    ids = torch.zeros(6, dtype=torch.long) if case == "single_identity" else torch.tensor([0, 0, 1, 1, 2, 2])
    modalities = torch.tensor([0, 1, 0, 1, 0, 1]) if case == "single_identity" else torch.zeros(6, dtype=torch.long)
    loss = CMRLoss()(embeddings, ids, modalities)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(embeddings.grad, torch.zeros_like(embeddings))


def test_half_precision_embeddings_are_computed_in_float32():
    embeddings, ids, modalities = _pk_batch(4, 8, 16, 7)
    low = embeddings.bfloat16()
    loss = CMRLoss()(low.requires_grad_(), ids, modalities)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(float(reference_cmr(low.detach().float(), ids, modalities)), rel=1e-5)
    loss.backward()
    assert low.grad.dtype == torch.bfloat16


def test_zero_embeddings_behave_like_cosine_similarity():
    embeddings, ids, modalities = _pk_batch(4, 4, 8, 8)
    embeddings[0] = 0
    embeddings[5] *= 1e-10  # below the cosine eps: value and gradient follow F.cosine_similarity
    ours, ours_grad = _value_and_grad(CMRLoss(), embeddings, ids, modalities)
    ref, ref_grad = _value_and_grad(reference_cmr, embeddings, ids, modalities)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=0)
    torch.testing.assert_close(ours_grad, ref_grad, rtol=1e-4, atol=1e-4 * ref_grad.abs().max().item())


def test_pulling_matching_pairs_together_lowers_the_loss():
    embeddings, ids, modalities = _pk_batch(4, 8, 16, 9)
    centres = torch.zeros(4, 16).index_add_(0, ids, embeddings) / 8
    losses = [CMRLoss()(embeddings + a * (centres[ids] - embeddings), ids, modalities).item() for a in (0, .3, .6, .9)]
    assert all(later < earlier for earlier, later in zip(losses, losses[1:])), losses


def test_strength_is_kept_and_must_be_positive():
    assert CMRLoss().strength == 0.5 and CMRLoss(0.1).strength == 0.1
    with pytest.raises(ValueError, match="strength"):
        CMRLoss(0)
