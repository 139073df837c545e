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


def test_one_column_strided_convs_leave_bf16_autocast_and_others_stay_in_it():
    # oneDNN's AMX bf16 kernel gets a 3x3 stride-2 conv with a one-column output wrong (NaN or ~100 % error):
    # those convs must compute in float32 (then cast), wider ones stay plain bf16 convolutions.
    from mcja.models.resnet import StridedConv2d

    net = build_resnet(18, with_fc=False).eval().to(memory_format=torch.channels_last)
    strided = [m for m in net.modules() if isinstance(m, StridedConv2d)]
    assert len(strided) == 3  # layer2..4's first 3x3 conv; 1x1 shortcuts and 3x3 stride-1 convs stay nn.Conv2d
    conv = strided[-1]
    torch.manual_seed(0)
    narrow = torch.randn(2, 256, 4, 2).to(memory_format=torch.channels_last)
    wide = torch.randn(2, 256, 8, 4).to(memory_format=torch.channels_last)
    with torch.no_grad():
        want = torch.nn.functional.conv2d(narrow, conv.weight, stride=2, padding=1).to(torch.bfloat16)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got, low = conv(narrow), conv(wide)
        plain_bf16 = torch.nn.functional.conv2d(wide.bfloat16(), conv.weight.bfloat16(), stride=2, padding=1)
        ref = conv(narrow)  # outside autocast: a plain float32 conv
    assert got.dtype == torch.bfloat16 and torch.equal(got, want)
    assert low.dtype == torch.bfloat16 and torch.isfinite(low).all()
    assert torch.allclose(low.float(), plain_bf16.float(), rtol=0.05, atol=0.05)
    assert torch.isfinite(ref).all() and ref.dtype == torch.float32
