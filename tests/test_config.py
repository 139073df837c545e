"""Configuration: shipped configs hold the paper's settings, overrides, clear errors, reference-config mapping."""

import pytest
import yaml

from mcja.config import Config, config_from_dict, load_config
from mcja.errors import ConfigError


def test_shipped_configs_hold_the_papers_settings():
    sysu, regdb, llcm = load_config("sysu.yaml"), load_config("regdb"), load_config("llcm")
    assert (sysu.data.p_size, sysu.data.k_size, sysu.optim.epochs, sysu.optim.lr_steps) == (8, 16, 140, [80, 120])
    assert (regdb.data.p_size, regdb.data.k_size, regdb.optim.epochs) == (4, 32, 300)
    assert sysu.model.mda_contexts == 2 and regdb.model.mda_contexts == 12 and llcm.model.mda_contexts == 2
    for cfg in (sysu, regdb, llcm):
        assert cfg.data.image_size == [384, 192]
        assert (cfg.optim.lr, cfg.optim.weight_decay) == (3.5e-4, 5e-4)
        assert cfg.model.depth == 50 and cfg.model.mda_layers == [0, 2, 3, 0] and cfg.model.last_stride == 2
        assert cfg.loss.cmr_strength == 0.5 and cfg.loss.id and cfg.loss.cmr
        assert cfg.data.p_size * cfg.data.k_size == 128


def test_demo_config_is_cpu_sized():
    demo = load_config("demo")
    assert demo.model.depth == 18 and demo.model.pretrained == "none"
    assert demo.data.image_size == [128, 64]


def test_dotted_overrides_are_typed():
    cfg = load_config("sysu", ["optim.lr=1e-4", "data.root=/data/SYSU", "model.mda_layers=[0,1,1,0]",
                               "eval.mser=false", "data.image_size=256x128"])
    assert cfg.optim.lr == pytest.approx(1e-4) and isinstance(cfg.optim.lr, float)
    assert cfg.data.root == "/data/SYSU"
    assert cfg.model.mda_layers == [0, 1, 1, 0]
    assert cfg.eval.mser is False
    assert cfg.data.image_size == [256, 128]


@pytest.mark.parametrize(
    "override, words",
    [
        ("optim.lrr=1", ["optim.lrr", "optim.lr"]),
        ("lr=1", ["'lr'", "optim.lr"]),
        ("data.p_size=abc", ["data.p_size", "integer"]),
        ("eval.mser=maybe", ["eval.mser", "true or false"]),
        ("model.depth=101", ["model.depth", "18, 34, 50"]),
        ("data=3", ["'data' is a section"]),
        ("optim.lr", ["section.key=value"]),
    ],
)
def test_bad_settings_name_the_key(override, words):
    with pytest.raises(ConfigError) as err:
        load_config("sysu", [override])
    for word in words:
        assert word in str(err.value)


def _every_choice_word():
    from mcja.config import choices

    return [(key, word) for key, words in choices().items() for word in words]


@pytest.mark.parametrize("key, word", _every_choice_word())
def test_every_documented_choice_word_is_accepted_on_the_command_line(key, word):
    """YAML reads some words as other types (off: false); a choice setting takes the word itself."""
    extra = ["data.val_ids=2"] if (key, word) == ("eval.select_on", "val") else []  # val selection needs held-out ids
    cfg = load_config("sysu", [f"{key}={word}", *extra])
    section, name = key.split(".")
    value = getattr(getattr(cfg, section), name)
    assert value == word and type(value) is type(word)


def test_a_choice_word_yaml_reads_as_a_boolean_in_a_config_file(tmp_path):
    (tmp_path / "c.yaml").write_text("train:\n  amp: off\n")
    assert load_config(str(tmp_path / "c.yaml")).train.amp == "off"
    with pytest.raises(ConfigError, match="'train.amp' expects a string, got True"):  # 'on' is no choice: refused
        load_config("sysu", ["train.amp=on"])


def test_unknown_key_in_file_names_file_and_closest_key(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("optim:\n  weight_decy: 0.1\n")
    with pytest.raises(ConfigError, match=r"mine\.yaml: unknown setting 'optim\.weight_decy' \(did you mean 'optim\.weight_decay'\?\)"):
        load_config(path)


def test_missing_config_file_lists_shipped_ones():
    with pytest.raises(ConfigError, match="sysu.yaml"):
        load_config("no-such-config.yaml")


def test_reference_config_maps_onto_ours(tmp_path):
    # The reference repository's configs/RegDB_MCJA.yml, written out key by key.
    ref = {
        "prefix": "RegDB", "dataset": "regdb", "image_size": "(384, 192)", "sample_method": "norm_triplet",
        "p_size": 4, "k_size": 32, "batch_size": 128, "random_flip": True, "random_crop": True,
        "random_erase": True, "color_jitter": False, "padding": 10, "vimc_wg": True, "vimc_cc": False,
        "vimc_sj": True, "drop_last_stride": True, "mda_ratio": 2, "mda_m": 12, "loss_id": True,
        "loss_cmr": True, "lr": 0.00035, "wd": 0.0005, "num_epoch": 300, "lr_step": [300], "fp16": True,
        "start_eval": 5, "log_period": 5, "eval_interval": 2, "resume": "", "mser": True, "test_only": False,
    }
    path = tmp_path / "RegDB_MCJA.yml"
    path.write_text(yaml.safe_dump(ref))
    cfg = load_config(path)
    assert cfg.name == "RegDB" and cfg.data.dataset == "regdb"
    assert cfg.data.image_size == [384, 192]
    assert (cfg.data.p_size, cfg.data.k_size) == (4, 32)
    assert cfg.augment.color_jitter is False and cfg.augment.vimc_cc is False and cfg.augment.vimc_wg is True
    assert cfg.model.last_stride == 1  # drop_last_stride: true
    assert cfg.model.mda_contexts == 12
    assert (cfg.optim.epochs, cfg.optim.lr_steps, cfg.optim.weight_decay) == (300, [300], 0.0005)
    assert (cfg.eval.start, cfg.eval.every, cfg.train.log_every) == (5, 2, 5)
    assert cfg.train.amp == "auto"


def test_reference_config_errors(tmp_path):
    path = tmp_path / "ref.yml"
    path.write_text("p_size: 8\nk_sise: 16\n")
    with pytest.raises(ConfigError, match="unknown reference-config key 'k_sise' \\(did you mean 'k_size'\\?\\)"):
        load_config(path)
    path.write_text("p_size: 8\nsample_method: cross_modality_random\n")
    with pytest.raises(ConfigError, match="cross_modality_random"):
        load_config(path)


def test_round_trip_through_dict():
    cfg = load_config("regdb", ["data.trial=3"])
    again = config_from_dict(cfg.to_dict())
    assert again == cfg and isinstance(again, Config)


def test_validation_split_needs_ids():
    with pytest.raises(ConfigError, match="data.val_ids"):
        load_config("sysu", ["eval.select_on=val"])
