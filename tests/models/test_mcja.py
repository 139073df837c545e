"""The MCJA network: output shapes per mode, MDA placement, BN-neck/classifier, parameter counts, precision."""

import pytest
import torch

from helpers.models import expected_param_count
from mcja.errors import ConfigError
from mcja.models import MCJA, MCJAOutput, count_parameters

SIZES = [(384, 192), (128, 64)]


@pytest.fixture(scope="module")
def nets():
    return {depth: MCJA(11, depth=depth) for depth in (18, 50)}


@pytest.mark.parametrize("depth, dim", [(18, 512), (50, 2048)])
@pytest.mark.parametrize("size", SIZES)
def test_output_shapes_in_train_and_eval(nets, depth, dim, size):
    net = nets[depth]
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        features = net.eval()(x)
        out = net.train()(x)
    assert net.feature_dim == dim
    assert isinstance(features, torch.Tensor) and tuple(features.shape) == (2, dim)
    assert isinstance(out, MCJAOutput)
    assert tuple(out.features.shape) == (2, dim) and tuple(out.logits.shape) == (2, 11)


def test_feature_map_is_input_over_32():
    net = MCJA(5, depth=18).eval()
    with torch.no_grad():
        assert tuple(net.feature_map(torch.randn(1, 3, 384, 192)).shape) == (1, 512, 12, 6)
        wide = MCJA(5, depth=18, last_stride=1).eval()
        assert tuple(wide.feature_map(torch.randn(1, 3, 384, 192)).shape) == (1, 512, 24, 12)


def test_mda_placement_default_and_clipped():
    with torch.device("meta"):  # structure only: skip allocating and initialising weights
        assert MCJA(5, depth=50).mda_placement == {"layer2": [2, 3], "layer3": [3, 4, 5]}
    shallow = MCJA(5, depth=18)  # ResNet-18 has 2 blocks per stage: 3 MDAs in layer3 clip to 2
    assert shallow.mda_placement == {"layer2": [0, 1], "layer3": [0, 1]}
    assert shallow.arch["mda_layers"] == [0, 2, 2, 0]
    assert MCJA(5, depth=18, mda_layers=(1, 0, 0, 1)).mda_placement == {"layer1": [1], "layer4": [1]}


def test_arch_rebuilds_the_same_model():
    net = MCJA(7, depth=18, last_stride=1, mda_layers=[0, 1, 2, 0], mda_contexts=3)
    assert net.arch == {"num_classes": 7, "depth": 18, "last_stride": 1, "mda_layers": [0, 1, 2, 0], "mda_contexts": 3}
    twin = MCJA(**net.arch)
    assert {k: v.shape for k, v in twin.state_dict().items()} == {k: v.shape for k, v in net.state_dict().items()}


def test_neck_and_classifier_as_specified():
    net = MCJA(9, depth=18)
    assert torch.equal(net.bn_neck.bias, torch.zeros(512)) and not net.bn_neck.bias.requires_grad
    assert net.bn_neck.weight.requires_grad and torch.equal(net.bn_neck.weight, torch.ones(512))
    assert net.classifier.bias is None and tuple(net.classifier.weight.shape) == (9, 512)


@pytest.mark.parametrize("classes, contexts, expected", [(395, 2, 24_353_866), (206, 12, 24_048_764)])
def test_parameter_counts_of_reference_settings(classes, contexts, expected):
    assert expected_param_count(50, classes, contexts) == expected  # the formula agrees with the issue
    with torch.device("meta"):  # structure only: skip allocating and initialising weights
        assert count_parameters(MCJA(classes, mda_contexts=contexts)) == expected


def test_channels_last_and_bf16_autocast():
    net = MCJA(6, depth=18, mda_layers=(1, 1, 1, 0)).eval()
    with torch.no_grad():
        for mda in net.mda.modules():
            if hasattr(mda, "out_bn"):
                mda.out_bn.weight.fill_(0.5)  # make the MDAs do something
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        plain = net(x)
        cl = net.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = net(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(cl, plain, rtol=1e-4, atol=1e-4)
    assert low.dtype == torch.float32  # GeM and the neck run in float32
    assert torch.nn.functional.cosine_similarity(low, plain).min() > 0.98


def test_train_step_under_autocast_gives_finite_gradients():
    # Same input shape as the test above: CPU bf16 kernels are built once per shape, and that costs seconds.
    net = MCJA(4, depth=18, mda_layers=(1, 1, 1, 0)).train().to(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 64, 32).to(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(x)
    loss = torch.nn.functional.cross_entropy(out.logits.float(), torch.tensor([0, 3])) + out.features.mean()
    loss.backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert net.bn_neck.bias.grad is None


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="model.mda_layers"):
        MCJA(5, depth=18, mda_layers=(0, 2, 3))
    with pytest.raises(ConfigError, match="model.num_classes"):
        MCJA(0, depth=18)
    with pytest.raises(ConfigError, match="model.mda_contexts"):
        MCJA(5, depth=18, mda_contexts=0)
