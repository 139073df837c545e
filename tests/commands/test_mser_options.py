"""MSER's parameters come from the command: `mcja test` (--mser-preset/-k1/-k2/-lambda over a checkpoint trained with
other eval.mser_* settings) and `mcja index search --rerank` (the same options; `GalleryIndex.search` keywords)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from helpers.index import write_archive
from helpers.inference import SIZE
from mcja.cli import main
from mcja.evaluation import MSER_PRESETS, MserParams, mser_rerank
from mcja.models import checkpoint_payload


@pytest.fixture(scope="module")
def trained_with_k1_7(tmp_path_factory, model):
    """The tiny model in a checkpoint whose training config set eval.mser_k1=7 and eval.mser_lambda=0.9."""
    path = tmp_path_factory.mktemp("k1") / "best.pt"
    torch.save(checkpoint_payload(model, config={"data": {"image_size": list(SIZE)},
                                                 "eval": {"mser_k1": 7, "mser_lambda": 0.9}}), path)
    return path


@pytest.mark.parametrize("options, params", [
    (["--mser-preset", "sysu"], "k1 40, k2 20, lambda 0.3, neighbours from the queries"),  # the preset, not k1 7
    ([], "k1 40, k2 20, lambda 0.3, neighbours from the queries"),  # auto: SYSU-MM01's own
    (["--mser-preset", "sysu", "--mser-k1", "5"], "k1 5, k2 20, lambda 0.3, neighbours from the queries"),
    (["--mser-preset", "regdb", "--mser-k2", "3", "--mser-lambda", "0.5"], "k1 50, k2 3, lambda 0.5, neighbours from all items"),
])
def test_test_takes_mser_parameters_from_the_command_only(trained_with_k1_7, sysu_root, tmp_path, options, params):
    out = tmp_path / "t"
    assert main(["test", "--checkpoint", str(trained_with_k1_7), "--dataset", "sysu", "--root", str(sysu_root),
                 "--out", str(out), "--trials", "1", "--device", "cpu", "--quiet", "--mser", *options]) == 0
    assert json.loads((out / "results.json").read_text())["mser_params"] == params
    assert f"MSER parameters: {params}." in (out / "results.md").read_text()


@pytest.mark.parametrize("argv, words", [
    (["test", "--checkpoint", "x.pt", "--dataset", "sysu", "--root", "r", "--mser-k1", "5"],
     "--mser-k1: MSER's parameters apply only with --mser"),
    (["index", "search", "i.idx", "--query", "q.png", "--out", "o", "--mser-preset", "sysu"],
     "--mser-preset: MSER's parameters apply only with --rerank"),
    (["index", "search", "i.idx", "--query", "q.png", "--out", "o", "--rerank", "--mser-preset", "sysuu"],
     "--mser-preset 'sysuu': expected one of auto, sysu, regdb, llcm"),
])
def test_mser_option_mistakes_are_one_line_before_any_work(capsys, argv, words):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err, err


@pytest.mark.parametrize("argv, words", [
    (["test", "--checkpoint", "x.pt", "--dataset", "sysu", "--root", "r", "--mser", "--mser-lambda", "1.5"],
     "--mser-lambda: expected a number 0..1, got '1.5'"),
    (["index", "search", "i.idx", "--query", "q", "--out", "o", "--rerank", "--mser-k2", "0"],
     "--mser-k2: expected an integer >= 1, got '0'"),
])
def test_mser_option_ranges(capsys, argv, words):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1 and words in err, err


def _reference_scores(checkpoint, paths, query, params):
    """1 - MSER distance of the query to every image, from features embedded directly, best first."""
    from mcja.inference import FeatureExtractor

    extractor = FeatureExtractor(checkpoint, device="cpu")
    gallery, q = extractor([str(p) for p in paths]), extractor([str(query)])
    return np.sort(1.0 - mser_rerank(q[None], gallery[None], **params.as_kwargs()).numpy()[0])[::-1]


def test_index_search_rerank_takes_the_preset_and_values_given(checkpoint, tmp_path):
    from mcja import GalleryIndex

    paths = sorted(write_archive(tmp_path / "archive", ids=(1, 2, 3)))
    idx = tmp_path / "idx"
    assert main(["index", "build", "--checkpoint", str(checkpoint), "--images", str(tmp_path / "archive"),
                 "--out", str(idx), "--dtype", "float32", "--quiet"]) == 0
    query = paths[0]
    reports = {}
    for name, extra in (("default", []), ("sysu", ["--mser-preset", "sysu"]), ("k1", ["--mser-preset", "sysu", "--mser-k1", "3"])):
        out = tmp_path / name
        assert main(["index", "search", str(idx), "--query", str(query), "--top-k", "5", "--rerank", "--out", str(out),
                     "--quiet", *extra]) == 0
        reports[name] = json.loads((out / "results.json").read_text())
    expected = {"default": MSER_PRESETS["regdb"], "sysu": MSER_PRESETS["sysu"],
                "k1": MserParams(k1=3, k2=20, lambda_value=0.3, neighbours="query")}
    reference = {name: _reference_scores(checkpoint, paths, query, params)[:5] for name, params in expected.items()}
    assert not np.allclose(reference["default"], reference["sysu"], atol=1e-3)  # the presets rank differently here
    assert not np.allclose(reference["sysu"], reference["k1"], atol=1e-3)
    for name, params in expected.items():
        assert reports[name]["score"] == f"1 - MSER re-ranked distance ({params.describe()})"
        scores = [r["score"] for r in reports[name]["queries"][0]["results"]]
        np.testing.assert_allclose(scores, reference[name], atol=1e-4)
    index = GalleryIndex.open(idx, checkpoint, device="cpu")
    (hits,) = index.search([str(query)], top_k=5, rerank=True, mser_preset="sysu", mser_k1=3)
    np.testing.assert_allclose([h["score"] for h in hits], reference["k1"], atol=1e-4)
    index.close()
