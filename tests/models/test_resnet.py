"""ResNet backbones: torchvision's key names/shapes, strict loading of torchvision-layout weights, strides."""

import pytest
import torch

from helpers.models import TORCHVISION_PARAMS, random_state, torchvision_resnet_shapes
from mcja.errors import ConfigError
from mcja.models import build_resnet, count_parameters


@pytest.mark.parametrize("depth", [18, 34, 50])
def test_keys_shapes_and_counts_match_torchvision(depth):
    net = build_resnet(depth, with_fc=True)
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert shapes == torchvision_resnet_shapes(depth)
    assert count_parameters(net) == TORCHVISION_PARAMS[depth]


def test_without_fc_has_no_head_keys():
    keys = set(build_resnet(18, with_fc=False).state_dict())
    assert keys == {k for k in torchvision_resnet_shapes(18) if not k.startswith("fc.")}


def test_torchvision_state_dict_loads_strictly():
    state = random_state(torchvision_resnet_shapes(18), seed=1)
    net = build_resnet(18, with_fc=True)
    net.load_state_dict(state, strict=True)
    loaded = net.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())


@pytest.mark.parametrize("last_stride, expected_hw", [(2, (4, 2)), (1, (8, 4))])
def test_last_stride_sets_output_resolution(last_stride, expected_hw):
    net = build_resnet(18, last_stride=last_stride, with_fc=False).eval()
    with torch.no_grad():
        out = net(torch.randn(1, 3, 128, 64))
    assert tuple(out.shape) == (1, 512, *expected_hw)


def test_unsupported_depth_and_stride_are_config_errors():
    with pytest.raises(ConfigError, match="model.depth"):
        build_resnet(101)
    with pytest.raises(ConfigError, match="model.last_stride"):
        build_resnet(18, last_stride=3)
