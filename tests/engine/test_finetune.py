"""Fine-tuning (`model.init_from`): a trained model's weights start training on a folder dataset with other ids."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from mcja.engine.logger import read_metrics
from mcja.engine.run import train
from mcja.errors import ConfigError
from mcja.models import MCJA, load_model, to_reference_state_dict
from mcja.models.finetune import init_from_checkpoint


def folder_dataset(sysu_root: Path, out: Path, train_ids: int, test_ids: int) -> Path:
    """A `folder` dataset (train/ and test/, visible/ and infrared/ per person) from the synthetic SYSU set's images."""
    people = sorted({p.name for p in (sysu_root / "cam1").iterdir()})
    for split, ids in (("train", people[:train_ids]), ("test", people[train_ids:train_ids + test_ids])):
        for pid in ids:
            for cam, modality in (("cam1", "visible"), ("cam2", "visible"), ("cam3", "infrared"), ("cam6", "infrared")):
                for img in sorted((sysu_root / cam / pid).glob("*.jpg")):
                    dest = out / split / modality / pid / f"{cam}_{img.name}"
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(img, dest)
    return out


@pytest.fixture(scope="module")
def trained(sysu_root, tmp_path_factory) -> Path:
    """best.pt of a tiny run on the synthetic SYSU set (16 training ids)."""
    from mcja.config import load_config

    tmp = tmp_path_factory.mktemp("finetune")
    cfg = load_config("demo", [f"data.root={sysu_root}", f"data.cache_dir={tmp / 'c'}", "data.image_size=[64,32]",
                               "data.p_size=4", "data.k_size=4", "augment.padding=2", "train.device=cpu",
                               "optim.epochs=1", "train.steps_per_epoch=3", "eval.start=1", "eval.every=0",
                               "eval.trials=2", "eval.mser=false", "train.deterministic=true"])
    return train(cfg, run_dir=tmp / "run", progress=False).run_dir / "best.pt"


def test_init_copies_trunk_and_reinitialises_the_classifier(trained, tmp_path):
    source = load_model(trained)
    model = MCJA(5, depth=18)
    notes = init_from_checkpoint(model, trained)
    assert any("classifier re-initialised" in n and f"{source.arch['num_classes']} ids" in n for n in notes)
    new_sd, src_sd = model.state_dict(), source.state_dict()
    for key, value in src_sd.items():
        if key != "classifier.weight":
            assert torch.equal(new_sd[key], value), key
    assert new_sd["classifier.weight"].shape == (5, model.feature_dim)
    ref = tmp_path / "ref.pth"  # the reference code's key names load the same way
    torch.save(to_reference_state_dict(src_sd), ref)
    other = MCJA(5, depth=18)
    init_from_checkpoint(other, ref)
    assert torch.equal(other.state_dict()["mda.layer2.0.mask_conv.weight"], src_sd["mda.layer2.0.mask_conv.weight"])


def test_context_mismatch_is_an_error_unless_mda_is_reset(trained):
    with pytest.raises(ConfigError, match=r"model.mda_contexts=2 to keep them, or model.reset_mda=true"):
        init_from_checkpoint(MCJA(5, depth=18, mda_contexts=12), trained)
    model = MCJA(5, depth=18, mda_contexts=12)
    notes = init_from_checkpoint(model, trained, reset_mda=True)
    assert any("MDA masks re-initialised: 2 -> 12" in n for n in notes)
    src = load_model(trained).state_dict()
    assert torch.equal(model.state_dict()["mda.layer2.0.out_bn.weight"], src["mda.layer2.0.out_bn.weight"])


def test_finetune_on_a_folder_dataset_with_other_ids_runs_and_learns(trained, sysu_root, tmp_path, capsys):
    from mcja.config import load_config

    root = folder_dataset(sysu_root, tmp_path / "mine", train_ids=6, test_ids=4)
    cfg = load_config("demo", ["data.dataset=folder", f"data.root={root}", f"data.cache_dir={tmp_path / 'c'}",
                               "data.image_size=[64,32]", "data.p_size=3", "data.k_size=4", "augment.padding=2",
                               "train.device=cpu", "optim.epochs=4", "optim.lr_steps=[10]", "train.steps_per_epoch=4",
                               "augment.color_jitter=false", "augment.vimc_wg=false", "augment.vimc_cc=false",
                               "augment.vimc_sj=false", "augment.random_erase=false", "loss.cmr=false",
                               "train.log_every=1", "eval.start=0", "eval.every=0", "eval.mser=false",
                               "train.deterministic=true", f"model.init_from={trained}"])
    summary = train(cfg, run_dir=tmp_path / "ft", progress=False)
    printed = capsys.readouterr().out
    assert "init_from: classifier re-initialised: the checkpoint has 16 ids, the training set 6" in printed
    assert load_model(summary.run_dir / "last.pt").arch["num_classes"] == 6
    epochs = [r for r in read_metrics(summary.run_dir) if r.get("kind") == "epoch"]
    assert len(epochs) == 4
    late = (epochs[-1]["loss_id"] + epochs[-2]["loss_id"]) / 2
    assert late < 0.8 * epochs[0]["loss_id"], [e["loss_id"] for e in epochs]  # the new classifier learns the new ids
