"""`mcja index` on tiny images: build + search (== brute force on independently extracted features), filters,
update (add / change / delete with stable ids), resuming a killed build, refusing to mix, one-line errors."""

from __future__ import annotations

import json
import os
import sqlite3
import sys

import numpy as np
import pytest
from PIL import Image

from helpers.index import features_of, rows_by_path
from helpers.inference import pattern_image
from mcja import GalleryIndex
from mcja.cli import main
from mcja.index.store import Store
from mcja.inference import FeatureExtractor


def build(checkpoint, images, out, *extra):
    return main(["index", "build", "--checkpoint", str(checkpoint), "--images", str(images), "--out", str(out),
                 "--quiet", *extra])


def test_search_equals_brute_force_on_independent_features(checkpoint, archive, tmp_path, capsys):
    assert build(checkpoint, archive, tmp_path / "idx", "--dtype", "float32") == 0
    assert "12 images (12 new" in capsys.readouterr().out
    paths = sorted(str(p) for p in archive.rglob("*.png"))
    ref = FeatureExtractor(checkpoint, device="cpu")(paths)  # the reference: every image embedded directly
    query = archive / "visible" / "0002" / "0002_c1_0.png"
    q = FeatureExtractor(checkpoint, device="cpu")([str(query)])
    scores = (q @ ref.T)[0].numpy()
    expected = [paths[j] for j in np.argsort(-scores, kind="stable")[:5]]
    out = tmp_path / "res"
    assert main(["index", "search", str(tmp_path / "idx"), "--query", str(query), "--top-k", "5", "--out", str(out),
                 "--quiet"]) == 0
    (entry,) = json.loads((out / "results.json").read_text())["queries"]
    assert [r["path"] for r in entry["results"]] == expected
    np.testing.assert_allclose([r["score"] for r in entry["results"]], np.sort(scores)[::-1][:5], atol=1e-5)
    first = entry["results"][0]
    assert first["path"] == str(query) and first["correct"] and first["pid"] == 2 and first["modality"] == "visible"
    assert Image.open(entry["picture"]).format == "PNG"


def test_filters_by_modality_and_camera(checkpoint, archive, tmp_path):
    assert build(checkpoint, archive, tmp_path / "idx") == 0
    index = GalleryIndex.open(tmp_path / "idx", checkpoint, device="cpu")
    query = [str(archive / "visible" / "0001" / "0001_c1_0.png")]
    (ir,) = index.search(query, top_k=20, modality="infrared")
    assert len(ir) == 6 and all("/infrared/" in h["path"] and h["modality"] == 1 for h in ir)
    (cams,) = index.search(query, top_k=20, camera=[2, 3])
    assert len(cams) == 9 and {h["camera"] for h in cams} == {2, 3}  # 3 visible on c2 + 6 infrared on c3
    (both,) = index.search(query, top_k=20, modality="visible", camera=1)
    assert {h["path"].rsplit("/", 1)[1] for h in both} == {"0001_c1_0.png", "0002_c1_0.png", "0003_c1_0.png"}
    with pytest.raises(Exception, match="--modality"):
        index.search(query, modality="ultraviolet")


def test_update_adds_changes_and_deletes_with_stable_ids(checkpoint, archive, tmp_path, capsys, monkeypatch):
    idx = tmp_path / "idx"
    assert build(checkpoint, archive, idx) == 0
    before, feats_before = rows_by_path(idx), features_of(idx)
    changed = archive / "visible" / "0001" / "0001_c1_0.png"
    Image.fromarray(pattern_image(7, 7)).save(changed)
    os.utime(changed, ns=(1, 1))
    deleted = archive / "infrared" / "0003" / "0003_c3_1.png"
    deleted.unlink()
    added = archive / "visible" / "0004" / "0004_c2_0.png"
    added.parent.mkdir()
    Image.fromarray(pattern_image(4, 0)).save(added)
    seen = []
    real = FeatureExtractor.extract
    monkeypatch.setattr(FeatureExtractor, "extract", lambda self, items, **kw: seen.extend(items) or real(self, items, **kw))
    assert main(["index", "update", str(idx), "--quiet"]) == 0
    assert "(1 new, 1 changed, 1 removed; extracted 2" in capsys.readouterr().out
    assert sorted(seen) == sorted([str(changed), str(added)])  # only what is new or changed is extracted
    after, feats_after = rows_by_path(idx), features_of(idx)
    assert str(deleted) not in after and after[str(added)][0] > max(i for i, _ in before.values())
    for path, (i, _) in before.items():
        if path != str(deleted):
            assert after[path][0] == i  # ids are stable
            same = np.array_equal(feats_after[path], feats_before[path])
            assert same == (path != str(changed)), path
    q = FeatureExtractor(checkpoint, device="cpu")([str(changed)])
    index = GalleryIndex.open(idx, checkpoint, device="cpu")
    (hits,) = index.search(q.numpy(), top_k=1)
    assert hits[0]["path"] == str(changed) and hits[0]["id"] == before[str(changed)][0]
    assert str(deleted) not in [h["path"] for h in index.search(q.numpy(), top_k=20)[0]]
    assert index.remove([str(added)]) == 1 and len(index) == 11


def test_killed_build_resumes_without_re_extracting(checkpoint, archive, tmp_path, monkeypatch):
    assert build(checkpoint, archive, tmp_path / "whole", "--chunk", "3") == 0
    calls = {"n": 0}
    real_commit = Store.commit_rows

    def dying_commit(self, *args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # killed while committing the third chunk: it must roll back
        return real_commit(self, *args)

    monkeypatch.setattr(Store, "commit_rows", dying_commit)
    assert build(checkpoint, archive, tmp_path / "idx", "--chunk", "3") == 130
    monkeypatch.setattr(Store, "commit_rows", real_commit)
    waiting = sorted(p for p, (_, r) in rows_by_path(tmp_path / "idx").items() if r is None)
    assert len(waiting) == 6  # two chunks of 3 kept, the third rolled back
    seen = []
    real = FeatureExtractor.extract
    monkeypatch.setattr(FeatureExtractor, "extract", lambda self, items, **kw: seen.extend(items) or real(self, items, **kw))
    assert build(checkpoint, archive, tmp_path / "idx", "--chunk", "3") == 0
    assert sorted(seen) == waiting  # only the images not committed are extracted again
    whole, resumed = rows_by_path(tmp_path / "whole"), rows_by_path(tmp_path / "idx")
    assert whole == resumed  # same ids, same rows
    fw, fr = features_of(tmp_path / "whole"), features_of(tmp_path / "idx")
    assert all(np.array_equal(fw[p], fr[p]) for p in fw)
    size = (tmp_path / "idx" / "features.float16").stat().st_size
    assert size == 12 * 512 * 2  # the rolled-back chunk's bytes were cut off


def test_mixing_checkpoints_or_sizes_is_refused_in_one_line(checkpoint, other_checkpoint, archive, tmp_path, capsys):
    idx = tmp_path / "idx"
    assert build(checkpoint, archive, idx) == 0
    capsys.readouterr()
    query = str(archive / "visible" / "0001" / "0001_c1_0.png")
    cases = [
        ["index", "search", str(idx), "--query", query, "--out", str(tmp_path / "r"), "--checkpoint",
         str(other_checkpoint)],
        ["index", "update", str(idx), "--checkpoint", str(other_checkpoint)],
        ["index", "build", "--checkpoint", str(other_checkpoint), "--images", str(archive), "--out", str(idx)],
        ["index", "search", str(idx), "--query", query, "--out", str(tmp_path / "r"), "--size", "128x64"],
    ]
    for argv in cases:
        assert main([*argv, "--quiet"]) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "built with another" in err, err


def test_corrupt_or_foreign_folders_are_one_line_errors(checkpoint, archive, tmp_path, capsys):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("hello")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "index.sqlite").write_bytes(b"this is not a database" * 100)
    other_db = tmp_path / "otherdb"
    other_db.mkdir()
    with sqlite3.connect(other_db / "index.sqlite") as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('format', '\"something else\"')")
    truncated = tmp_path / "truncated"
    assert build(checkpoint, archive, truncated) == 0
    with open(truncated / "features.float16", "r+b") as f:
        f.truncate(100)
    for folder, message in [(tmp_path / "missing", "index folder not found"), (foreign, "not an mcja index"),
                            (broken, "not a readable index database"), (other_db, "not an mcja gallery index"),
                            (truncated, "damaged or foreign")]:
        capsys.readouterr()
        assert main(["index", "info", str(folder)]) == 2, folder
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err


def test_unreadable_images_are_named_or_skipped(checkpoint, archive, tmp_path, capsys):
    bad = archive / "visible" / "0002" / "0002_c1_broken.png"
    bad.write_bytes(b"\x89PNG broken")
    assert build(checkpoint, archive, tmp_path / "idx") == 2
    assert "0002_c1_broken.png: cannot read image" in capsys.readouterr().err
    assert build(checkpoint, archive, tmp_path / "idx", "--skip-bad") == 0
    captured = capsys.readouterr()
    assert "warning: skipped" in captured.err and "12 images" in captured.out
    assert main(["index", "info", str(tmp_path / "idx")]) == 0
    assert "12 images, 0 pending, 1 unreadable" in capsys.readouterr().out


def test_without_faiss_build_and_search_work_exactly(checkpoint, archive, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "faiss", None)
    assert build(checkpoint, archive, tmp_path / "idx") == 0
    assert "exact search in torch (FAISS not installed)" in capsys.readouterr().out
    assert not (tmp_path / "idx" / "faiss.index").exists()
    index = GalleryIndex.open(tmp_path / "idx", checkpoint, device="cpu")
    query = str(archive / "infrared" / "0003" / "0003_c3_0.png")
    (hits,) = index.search([query], top_k=3)
    assert hits[0]["path"] == query and abs(hits[0]["score"] - 1) < 2e-3
    assert build(checkpoint, archive, tmp_path / "ivf", "--kind", "ivf") == 2
    assert "pip install 'mcja[index]'" in capsys.readouterr().err


def test_ivf_index_is_updated_in_place(checkpoint, archive, tmp_path, capsys):
    pytest.importorskip("faiss")
    idx = tmp_path / "idx"
    assert build(checkpoint, archive, idx, "--kind", "ivf") == 0
    assert "search: FAISS ivf (nprobe" in capsys.readouterr().out
    trained = json.loads(sqlite3.connect(idx / "index.sqlite").execute(
        "SELECT value FROM meta WHERE key = 'structure'").fetchone()[0])
    assert trained["kind"] == "ivf" and trained["params"]["recall@10"] >= 0.95
    added = archive / "visible" / "0009" / "0009_c1_0.png"
    added.parent.mkdir()
    Image.fromarray(pattern_image(9, 0)).save(added)
    (archive / "visible" / "0001" / "0001_c1_0.png").unlink()
    assert main(["index", "update", str(idx), "--quiet"]) == 0
    after = json.loads(sqlite3.connect(idx / "index.sqlite").execute(
        "SELECT value FROM meta WHERE key = 'structure'").fetchone()[0])
    assert after["trained_on"] == 12 and after["images"] == 12  # updated in place, not retrained
    index = GalleryIndex.open(idx, checkpoint, device="cpu")
    (hits,) = index.search([str(added)], top_k=12)
    assert hits[0]["path"] == str(added) and len(hits) == 12
    assert not any(h["path"].endswith("0001_c1_0.png") for h in hits)


def test_rerank_with_mser_views_and_a_csv_list(checkpoint, archive, tmp_path):
    images = sorted(archive.rglob("*.png"))
    csv = tmp_path / "list.csv"  # labels from the list (here: every image's pid + 10, camera 7, modality infrared)
    csv.write_text("".join(f"{p},{int(p.parent.name) + 10},7,infrared\n" for p in images))
    idx = tmp_path / "idx"
    assert main(["index", "build", "--checkpoint", str(checkpoint), "--list", str(csv), "--out", str(idx),
                 "--views", "mser", "--quiet"]) == 0
    raw = np.fromfile(idx / "features.float16", dtype=np.float16)
    assert raw.size == len(images) * 4 * 512  # the image and its R, G, B views
    out = tmp_path / "res"
    query = images[0]
    assert main(["index", "search", str(idx), "--query", str(query), "--top-k", "3", "--rerank", "--camera", "7",
                 "--out", str(out), "--quiet"]) == 0
    report = json.loads((out / "results.json").read_text())
    assert report["score"].startswith("1 - MSER re-ranked distance")
    results = report["queries"][0]["results"]
    assert len(results) == 3 and all(r["camera"] == 7 and r["modality"] == "infrared" for r in results)
    assert results[0]["pid"] == int(query.parent.name) + 10 and "cosine" in results[0]
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
