"""Bad option values are one line and exit 2 before any work, for `mcja test` and the verbs sharing its parsers."""

import pytest

from mcja import api
from mcja.cli import main
from mcja.errors import ConfigError

TEST = ["test", "--checkpoint", "never-read.pt", "--dataset", "sysu", "--root", "never-read"]


@pytest.mark.parametrize("extra, words", [
    (["--size", "128"], ["--size", "expected HxW such as 384x192, got '128'"]),
    (["--size", "abc"], ["--size", "got 'abc'"]),
    (["--size", "0x0"], ["--size", "each side 32..4096, got '0x0'"]),
    (["--size", "100000x100000"], ["--size", "each side 32..4096"]),
    (["--trials", "0"], ["--trials", "an integer 1..10, got '0'"]),
    (["--trials", "11"], ["--trials", "1..10"]),
    (["--batch-size", "0"], ["--batch-size", "an integer >= 1, got '0'"]),
    (["--batch-size", "x"], ["--batch-size", "got 'x'"]),
    (["--trial", "12"], ["--trial", "1..10"]),
    (["--figures", "-1"], ["--figures", "an integer >= 0, got '-1'"]),
])
def test_test_verb_option_values(capsys, extra, words):
    with pytest.raises(SystemExit) as stop:
        main([*TEST, *extra])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mcja test: error: argument ") and "--help" in err, err
    assert all(w in err for w in words), err


@pytest.mark.parametrize("argv, words", [
    (["model-info", "--size", "8x8"], ["--size", "32..4096"]),
    (["extract", "--checkpoint", "x.pt", "--images", "d", "--out", "f.npz", "--size", "64"], ["--size", "HxW"]),
    (["make-synthetic", "--layout", "sysu", "--out", "d", "--size", "5000x64"], ["--size", "8..4096"]),
    (["test", "--checkpoint", "x.pt"], ["required", "--dataset"]),
    (["visualize", "f.npz", "--out", "o", "--figures", "-1"], ["--figures", "an integer >= 0, got '-1'"]),
])
def test_other_verbs_share_the_one_line_form(capsys, argv, words):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1 and all(w in err for w in words), err


@pytest.mark.parametrize("options, key", [
    ({"image_size": (0, 0)}, "data.image_size"),
    ({"batch_size": 0}, "eval.batch_size"),
    ({"trials": 0}, "eval.trials"),
])
def test_api_test_checks_the_same_values(tmp_path, options, key):
    with pytest.raises(ConfigError, match=f"'{key}'"):  # before the (missing) checkpoint is read
        api.test(tmp_path / "m.pt", "regdb", tmp_path / "no-root", **options)


def test_every_dataset_option_offers_the_registry():
    # One table feeds every --dataset option and the config's choices: a new dataset row shows up everywhere.
    import argparse

    from mcja.cli import build_parser
    from mcja.config import CHOICES
    from mcja.data.registry import DATASET_NAMES

    verbs = build_parser()._subparsers._group_actions[0].choices
    offered = {name: action.choices for name, p in verbs.items() for action in p._actions
               if isinstance(action, argparse._StoreAction) and "--dataset" in action.option_strings}
    assert set(offered) == {"test", "extract", "data-info", "show-augmentations"}
    assert all(tuple(choices) == DATASET_NAMES for choices in offered.values())
    assert CHOICES["data.dataset"] == DATASET_NAMES == ("sysu", "regdb", "llcm", "folder")
