"""ImageNet initialisation: torch hub cache under torchvision's names, explicit paths, and the offline error."""

import urllib.error

import pytest
import torch

from helpers.models import random_state, torchvision_resnet_shapes
from mcja.errors import CheckpointError
from mcja.models import MCJA


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub folder, with downloads failing as on an offline machine."""
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))

    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("offline (test)")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    yield tmp_path / "hub" / "checkpoints"
    torch.hub.set_dir(old)


def test_no_weights_anywhere_gives_one_clear_error(hub):
    with pytest.raises(CheckpointError) as err:
        MCJA(10, depth=50, pretrained="imagenet")
    message = str(err.value)
    assert "\n" not in message
    assert f"{hub}/" in message and "resnet50-19c8e357.pth" in message
    assert "https://download.pytorch.org/models/resnet50-19c8e357.pth" in message
    assert "model.pretrained=none" in message


def test_hub_cache_file_under_a_torchvision_name_initialises_the_backbone(hub):
    state = random_state(torchvision_resnet_shapes(18), seed=4)
    hub.mkdir(parents=True)
    torch.save(state, hub / "resnet18-5c106cde.pth")  # the older of the two accepted names
    model = MCJA(10, depth=18, pretrained="imagenet")
    trunk = model.backbone.state_dict()
    assert set(trunk) == {k for k in state if not k.startswith("fc.")}
    assert all(torch.equal(trunk[k], state[k]) for k in trunk)


def test_explicit_path_and_wrong_layout(hub, tmp_path):
    state = random_state(torchvision_resnet_shapes(18), seed=6)
    torch.save(state, tmp_path / "r18.pth")
    model = MCJA(3, depth=18, pretrained=str(tmp_path / "r18.pth"))
    assert torch.equal(model.backbone.conv1.weight, state["conv1.weight"])
    with pytest.raises(CheckpointError, match=r"r18.pth: does not fit ResNet-34; missing keys: layer1.2"):
        MCJA(3, depth=34, pretrained=str(tmp_path / "r18.pth"))
    with pytest.raises(CheckpointError, match="no such file"):
        MCJA(3, depth=18, pretrained=str(tmp_path / "absent.pth"))


def test_none_means_random_init(hub):
    a, b = MCJA(3, depth=18, pretrained="none"), MCJA(3, depth=18, pretrained=None)
    assert not torch.equal(a.backbone.conv1.weight, b.backbone.conv1.weight)  # two independent random draws
