"""Config files and values that cannot work are refused when the config loads, in one line naming the file
position or the key: a non-UTF-8 file, a YAML syntax error (file:line:column), out-of-range settings."""

import pytest

from mcja.cli import main
from mcja.config import load_config
from mcja.errors import ConfigError


@pytest.mark.parametrize("override, key, expected", [
    ("optim.lr=0", "optim.lr", "> 0"),
    ("optim.lr=-1e-3", "optim.lr", "> 0"),
    ("optim.lr=nan", "optim.lr", "finite"),
    ("optim.lr=inf", "optim.lr", "finite"),
    ("optim.weight_decay=-0.1", "optim.weight_decay", ">= 0"),
    ("optim.lr_gamma=0", "optim.lr_gamma", "> 0"),
    ("loss.cmr_strength=0", "loss.cmr_strength", "> 0"),
    ("loss.cmr_strength=-2", "loss.cmr_strength", "> 0"),
    ("data.num_workers=-1", "data.num_workers", ">= 0"),
    ("augment.padding=-3", "augment.padding", ">= 0"),
    ("eval.trials=0", "eval.trials", "1..10"),
    ("eval.trials=11", "eval.trials", "1..10"),
    ("eval.every=-1", "eval.every", ">= 0"),
    ("train.log_every=0", "train.log_every", ">= 1"),
    ("data.image_size=100000x100000", "data.image_size", "32..4096"),
    ("data.image_size=[16,8]", "data.image_size", "32..4096"),
    ("data.image_size=[384,192,3]", "data.image_size", "[height, width]"),
])
def test_out_of_range_values_name_the_key(override, key, expected):
    with pytest.raises(ConfigError) as err:
        load_config("sysu", [override])
    message = str(err.value)
    assert f"'{key}'" in message and expected in message and "\n" not in message


def test_edges_of_the_ranges_are_accepted():
    cfg = load_config("sysu", ["optim.weight_decay=0", "data.num_workers=0", "augment.padding=0", "eval.trials=1",
                               "eval.every=0", "data.image_size=[4096,32]", "loss.id=false"])
    assert cfg.eval.every == 0 and cfg.data.image_size == [4096, 32] and cfg.loss.cmr
    assert load_config("sysu", ["eval.trials=10", "loss.cmr=false"]).eval.trials == 10


def test_both_losses_off():
    with pytest.raises(ConfigError, match="'loss.id' and 'loss.cmr' are both false"):
        load_config("sysu", ["loss.id=false", "loss.cmr=false"])


def test_values_in_a_file_are_checked_too(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("optim:\n  lr: -0.1\n")
    with pytest.raises(ConfigError, match=r"'optim.lr' must be a finite number > 0; got -0.1"):
        load_config(path)


@pytest.mark.parametrize("text, line, column", [
    ("name: x\ndata:\n  root: [1, 2\n  p_size: 4\n", 4, 9),  # unclosed list: found where the parser gives up
    ("name: x\noptim:\n\tlr: 1\n", 3, 1),  # a tab indent
    ("name: a: b\n", 1, 8),
])
def test_yaml_syntax_error_is_one_line_with_position(tmp_path, capsys, text, line, column):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"^{path}:{line}:{column}: not valid YAML: "):
        load_config(path)
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}:{line}:{column}" in err
    assert not (tmp_path / "run").exists()


def test_non_utf8_config_is_one_line(tmp_path, capsys):
    path = tmp_path / "latin.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    assert main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}: not UTF-8 text (byte 0xe9 at offset 9)" in err
    path.write_bytes(b"\xef\xbb\xbfname: bom\n")  # a UTF-8 byte-order mark is fine
    assert load_config(path).name == "bom"
