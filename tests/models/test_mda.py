"""MDA: identity at initialisation, the spec's computation once its output norm is non-zero."""

import torch

from helpers.models import reference_mda
from mcja.models import MDA


def _randomise(mda: MDA, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in mda.state_dict().items():
            if t.is_floating_point():
                positive = name.endswith(("running_var", "bn.weight"))
                t.copy_(0.5 + torch.rand(t.shape, generator=g) if positive else torch.randn(t.shape, generator=g) * 0.3)


def test_fresh_mda_is_identity_in_both_modes():
    mda = MDA(16, contexts=3)
    x = torch.randn(4, 16, 6, 5)
    assert torch.equal(mda.train()(x), x)
    assert torch.equal(mda.eval()(x), x)


def test_not_identity_once_output_norm_weight_changes():
    mda = MDA(16, contexts=3).eval()
    with torch.no_grad():
        mda.out_bn.weight.fill_(1.0)
    x = torch.randn(2, 16, 6, 5)
    assert (mda(x) - x).abs().max() > 1e-3


def test_matches_spec_reference_in_eval_mode():
    mda = MDA(8, contexts=4).eval()
    _randomise(mda, seed=3)
    names = {"mask_conv": "sc_conv", "context_conv": "ca_conv", "gate_bn": "ca_bn", "out_bn": "norm_bn"}
    sd = {f"m.{names[k.split('.')[0]]}.{k.split('.', 1)[1]}": v for k, v in mda.state_dict().items()}
    x = torch.randn(3, 8, 5, 7)
    with torch.no_grad():
        torch.testing.assert_close(mda(x), reference_mda(sd, "m", x), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(mda(x.to(memory_format=torch.channels_last)), mda(x), rtol=1e-5, atol=1e-5)


def test_gate_gets_gradients_when_active():
    mda = MDA(8, contexts=2).train()
    with torch.no_grad():
        mda.out_bn.weight.fill_(1.0)
    mda(torch.randn(4, 8, 5, 3)).square().sum().backward()
    assert mda.mask_conv.weight.grad.abs().sum() > 0
    assert mda.context_conv.weight.grad.abs().sum() > 0
