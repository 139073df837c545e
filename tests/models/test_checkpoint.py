"""Checkpoints: our payload, the reference code's state dicts (names both ways, inferred arch, same features), errors."""

import random

import numpy as np
import pytest
import torch

from helpers.models import BLOCKS, expected_param_count, random_state, reference_features, reference_mcja_shapes, torchvision_resnet_shapes
from mcja.errors import CheckpointError
from mcja.models import (
    MCJA,
    checkpoint_payload,
    count_parameters,
    from_reference_state_dict,
    load_model,
    to_reference_state_dict,
)

X = torch.randn(2, 3, 96, 48, generator=torch.Generator().manual_seed(5))


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize(
    "depth, classes, contexts, mda",
    [(50, 395, 2, (0, 2, 3, 0)), (50, 206, 12, (0, 2, 3, 0)), (18, 9, 5, (1, 2, 3, 0))],
    ids=["sysu", "regdb", "resnet18-clipped"],
)
def test_reference_state_dict_loads_with_reference_features(tmp_path, depth, classes, contexts, mda):
    sd = random_state(reference_mcja_shapes(depth, classes, contexts, mda), seed=depth + contexts)
    torch.save(sd, tmp_path / "ref.pth")
    model = load_model(tmp_path / "ref.pth")
    clipped = [min(n, b) for n, b in zip(mda, BLOCKS[depth])]
    assert not model.training
    assert model.arch == {"num_classes": classes, "depth": depth, "last_stride": 2, "mda_layers": clipped, "mda_contexts": contexts}
    assert count_parameters(model) == expected_param_count(depth, classes, contexts, mda)
    with torch.no_grad():
        ours, theirs = model(X), reference_features(sd, X)
    assert _rel_err(ours, theirs) < 1e-4


def test_reference_names_round_trip_without_loss():
    sd = random_state(reference_mcja_shapes(50, 395, 2), seed=2)
    arch, ours = from_reference_state_dict(sd)
    with torch.device("meta"):
        model_keys = set(MCJA(**arch).state_dict())
    assert set(ours) == model_keys  # every reference tensor has a home in our model; fc is dropped
    back = to_reference_state_dict(ours)
    expected = {k: v for k, v in sd.items() if not k.startswith("backbone.fc.")}
    assert set(back) == set(expected)
    assert all(back[k] is expected[k] for k in expected)
    again = from_reference_state_dict(back)[1]
    assert set(again) == set(ours) and all(again[k] is ours[k] for k in ours)


def test_our_model_exports_the_reference_key_set():
    with torch.device("meta"):
        model = MCJA(206, mda_contexts=12)
    exported = to_reference_state_dict(model.state_dict())
    shapes = {k: tuple(v.shape) for k, v in exported.items()}
    expected = {k: v for k, v in reference_mcja_shapes(50, 206, 12).items() if not k.startswith("backbone.fc.")}
    assert shapes == expected


def test_wrapped_and_prefixed_reference_files_load(tmp_path):
    sd = random_state(reference_mcja_shapes(18, 4, 2), seed=9)
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}}, tmp_path / "a.pth")
    torch.save({"model": sd, "epoch": 3}, tmp_path / "b.pth")
    expected = reference_features(sd, X)
    for name in ("a.pth", "b.pth"):
        with torch.no_grad():
            assert _rel_err(load_model(tmp_path / name)(X), expected) < 1e-4


def test_payload_round_trip_with_training_extras(tmp_path):
    model = MCJA(5, depth=18, last_stride=1, mda_contexts=3)
    model.train()(torch.randn(4, 3, 64, 32))  # move the running statistics away from their init
    opt = torch.optim.Adam(model.parameters())
    rng = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    extras = {"optimizer": opt.state_dict(), "epoch": 4, "config": {"model": {"depth": 18}}, "rng": rng}
    payload = checkpoint_payload(model, **extras, metrics={"mAP": np.float64(51.5)})
    assert payload["format"] == "mcja-checkpoint" and payload["version"] == 1 and payload["epoch"] == 4
    torch.save(payload, tmp_path / "ours.pt")
    loaded = load_model(tmp_path / "ours.pt")
    assert loaded.arch == model.arch and not loaded.training
    with torch.no_grad():
        torch.testing.assert_close(loaded(X), model.eval()(X), rtol=0, atol=0)


def test_not_a_checkpoint_errors_name_the_file(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    torch.save({"lr": 0.1}, tmp_path / "dict.pt")
    cases = {"missing.pt": "no such file", "notes.txt": "not a PyTorch checkpoint (a text file)", "list.pt": "not a checkpoint",
             "dict.pt": "lr"}
    for name, needle in cases.items():
        with pytest.raises(CheckpointError) as err:
            load_model(tmp_path / name)
        assert str(tmp_path / name) in str(err.value) and needle in str(err.value)


def _not_checkpoints(folder):
    """name -> (a file or folder that is no PyTorch checkpoint, what the error must say it is)."""
    import pickle

    (folder / "run").mkdir()
    (folder / "notes.pt").write_text("epoch: 3\n")
    (folder / "raw.pkl").write_bytes(pickle.dumps({"w": [0.0]}))  # protocol 5: torch would warn, then fail
    (folder / "raw2.pkl").write_bytes(pickle.dumps({"w": [0.0]}, protocol=2))
    (folder / "empty.pt").write_bytes(b"")
    (folder / "noise.pt").write_bytes(bytes(range(256)))
    return {"run": "a directory, expected a checkpoint file (.pt)",
            "notes.pt": "not a PyTorch checkpoint (a text file)",
            "raw.pkl": "a raw pickle, not a PyTorch zip checkpoint (mcja never unpickles files)",
            "raw2.pkl": "a raw pickle, not a PyTorch zip checkpoint (mcja never unpickles files)",
            "empty.pt": "not a PyTorch checkpoint (an empty file)",
            "noise.pt": "not a PyTorch checkpoint (neither a zip archive nor torch's legacy format)"}


def test_what_a_non_checkpoint_is_is_said_without_torch_warnings(tmp_path):
    import warnings

    for name, says in _not_checkpoints(tmp_path).items():
        with warnings.catch_warnings(record=True) as caught, pytest.raises(CheckpointError) as err:
            warnings.simplefilter("always")
            load_model(tmp_path / name)
        assert str(err.value) == f"{tmp_path / name}: {says}"
        assert not caught, [str(w.message) for w in caught]


def test_the_legacy_torch_format_is_still_read(tmp_path, model):
    torch.save(model.state_dict(), tmp_path / "old.pth", _use_new_zipfile_serialization=False)
    assert load_model(tmp_path / "old.pth").arch == model.arch


def test_other_architecture_lists_missing_and_unexpected_keys(tmp_path):
    torch.save(random_state(torchvision_resnet_shapes(18)), tmp_path / "resnet18.pth")
    with pytest.raises(CheckpointError, match="missing keys: backbone.conv1.weight, classifier.weight.*conv1.weight") as err:
        load_model(tmp_path / "resnet18.pth")
    assert str(tmp_path / "resnet18.pth") in str(err.value)

    sd = random_state(reference_mcja_shapes(18, 4, 2))
    del sd["bn_neck.running_var"]
    sd["head.extra.weight"] = torch.zeros(3)
    torch.save(sd, tmp_path / "edited.pth")
    with pytest.raises(CheckpointError, match=r"missing keys: bn_neck.running_var; unexpected keys: head.extra.weight"):
        load_model(tmp_path / "edited.pth")


def test_payload_whose_weights_do_not_fit_its_arch(tmp_path):
    payload = checkpoint_payload(MCJA(5, depth=18, mda_layers=(0, 0, 0, 0)))
    payload["arch"]["depth"] = 34
    torch.save(payload, tmp_path / "mixed.pt")
    with pytest.raises(CheckpointError, match=r"mixed.pt: does not fit MCJA ResNet-34.*missing keys: backbone.layer1.2"):
        load_model(tmp_path / "mixed.pt")
    payload["version"] = 2
    torch.save(payload, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="future.pt: checkpoint format version 2"):
        load_model(tmp_path / "future.pt")
