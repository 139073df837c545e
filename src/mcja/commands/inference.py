"""Verbs of the 'inference' group: `extract` (features to npz), `search` (rank a gallery), `export` (ONNX)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mcja.commands.common import add_amp_option, add_mser_options, add_verb, model_size, mser_options, size_help, trial_number
from mcja.data.registry import DATASET_NAMES

EXTRACT_EXAMPLES = """
  mcja extract --checkpoint best.pt --images photos/ --out photos.npz
  mcja extract --checkpoint best.pt --list images.txt --out feats.npz --skip-bad     # one path per line
  mcja extract --checkpoint best.pt --list labelled.csv --out feats.npz              # path,pid,camera,modality
  mcja extract --checkpoint best.pt --dataset sysu --root /data/SYSU-MM01 --split query --out query.npz
  mcja extract --checkpoint best.pt --dataset sysu --root /data/SYSU-MM01 --split gallery --views mser --out gallery.npz
then in Python:  q, g = np.load("query.npz"), np.load("gallery.npz")
  mcja.evaluation.evaluate_pair(q["features"], q["pids"], q["cameras"], g["features"], g["pids"], g["cameras"])
"""
SEARCH_EXAMPLES = """
  mcja search --checkpoint best.pt --query q1.jpg q2.jpg --gallery gallery/ --out results/
  mcja search --checkpoint best.pt --query queries/ --gallery gallery/ --top-k 5 --rerank --out results/
gallery/<pid>/*.jpg folders or 0001_c1_*.jpg names give ids: contact sheets then mark matches green, others red.
"""
EXPORT_EXAMPLES = """
  mcja export --checkpoint best.pt --onnx mcja.onnx --dynamic-batch
  mcja export --checkpoint regdb_model_best.pth --onnx regdb.onnx --size 288x144 --opset 17
input: float32 [B, 3, H, W], RGB resized to HxW (bilinear), /255, minus mean (0.485, 0.456, 0.406),
divided by std (0.229, 0.224, 0.225); output: [B, D] BN-neck features (L2-normalise before cosine).
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's verbs to the `mcja` parser."""
    p = add_verb(sub, "extract", "Extract MCJA features of many images to an npz file (features, paths, ids).",
                 EXTRACT_EXAMPLES)
    _model_options(p)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", help="a folder of images (searched recursively)")
    source.add_argument("--list", dest="list_file", help="a file of image paths (one per line), or a .csv "
                        "path,pid,camera,modality")
    source.add_argument("--dataset", choices=DATASET_NAMES, help="a dataset in its layout")
    p.add_argument("--root", help="the dataset folder (with --dataset)")
    p.add_argument("--split", default="query", choices=("query", "gallery", "train"),
                   help="with --dataset: query = infrared/thermal test images, gallery = visible, train (default query)")
    p.add_argument("--trial", type=trial_number, default=1, help="RegDB split 1..10 (default 1)")
    p.add_argument("--views", default="1", choices=("1", "mser"), help="mser: [4, N, D] features (image, R, G, B)")
    p.add_argument("--out", required=True, help="the npz file to write")
    p.set_defaults(func=_extract)

    p = add_verb(sub, "search", "Rank a gallery folder for query images: JSON and a contact sheet per query.",
                 SEARCH_EXAMPLES)
    _model_options(p)
    p.add_argument("--query", nargs="+", required=True, help="query image(s), or folders of them")
    p.add_argument("--gallery", required=True, help="the gallery folder (searched recursively)")
    p.add_argument("--top-k", type=int, default=10, help="results per query (default 10)")
    p.add_argument("--rerank", action="store_true", help="MSER k-reciprocal re-ranking (default: RegDB settings, no masking)")
    add_mser_options(p, "--rerank", "RegDB's, neighbours from all items")
    p.add_argument("--out", required=True, help="folder for results.json, the PNGs and the gallery feature cache")
    p.set_defaults(func=_search)

    p = add_verb(sub, "export", "Export the eval network to ONNX and check it against PyTorch (onnx extra).",
                 EXPORT_EXAMPLES)
    p.add_argument("--checkpoint", required=True, help="ours (best.pt/last.pt) or a reference-code state dict")
    p.add_argument("--onnx", required=True, help="the .onnx file to write")
    p.add_argument("--dynamic-batch", action="store_true", help="any batch size (default: batch 1)")
    p.add_argument("--size", type=model_size, default=None, help=size_help("input HxW"))
    p.add_argument("--opset", type=int, default=17, help="ONNX opset 11..20 (default 17)")
    p.set_defaults(func=_export)


def _model_options(p: argparse.ArgumentParser) -> None:
    """Options shared by extract and search."""
    p.add_argument("--checkpoint", required=True, help="ours (best.pt/last.pt) or a reference-code state dict")
    p.add_argument("--size", type=model_size, default=None, help=size_help("input HxW"))
    p.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default 64)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:N")
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable images with a warning instead of failing")
    add_amp_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _common(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments shared by the extract and search functions."""
    return {"batch_size": args.batch_size, "image_size": args.size, "device": args.device,
            "skip_bad": args.skip_bad, "progress": not args.quiet, "amp": args.amp}


def _warn_skipped(verb: str, skipped: list[str]) -> None:
    """One warning line per image left out under --skip-bad."""
    for line in skipped:
        print(f"mcja {verb}: warning: skipped {line}", file=sys.stderr)


def _extract(args: argparse.Namespace) -> int:
    from mcja import api

    s = api.extract(args.checkpoint, args.out, images=args.images, list_file=args.list_file, dataset=args.dataset,
                     root=args.root, split=args.split, trial=args.trial, views=args.views, **_common(args))
    _warn_skipped("extract", s["skipped"])
    labels = ", ".join(s["labels"]) or "no ids (none in folder or file names)"
    print(f"features {s['shape']} of {s['images']} images ({s['image_size'][0]}x{s['image_size'][1]}, {s['device']} {s['precision']}, "
          f"{s['seconds']:.1f} s) -> {s['out']}")
    print(f"stored: features, paths; {labels}" + (f"; skipped {len(s['skipped'])} unreadable" if s["skipped"] else ""))
    return 0


def _search(args: argparse.Namespace) -> int:
    from mcja import api
    from mcja.index.search import shown_path
    from mcja.utils.names import printable

    r = api.search(args.checkpoint, args.query, args.gallery, args.out, top_k=args.top_k, rerank=args.rerank,
                   **_common(args), **mser_options(args))
    _warn_skipped("search", r["skipped"])
    print(f"gallery features: {r['gallery_features']} ({r['gallery']})")
    for q in r["queries"]:
        shown = "  ".join(f"{shown_path(x['path'], r['gallery'])} {x['score']:.3f}{_mark(x)}" for x in q["results"][:3])
        who = "" if q["pid"] is None else f" (id {q['pid']})"
        print(f"{printable(q['query'])}{who}: {shown}")
    judged = [q for q in r["queries"] if q["results"] and "correct" in q["results"][0]]
    if judged:
        print(f"rank-1 correct for {sum(q['results'][0]['correct'] for q in judged)}/{len(judged)} queries with known ids")
    out = Path(args.out)
    print(f"{len(r['queries'])} queries, top {r['top_k']} by {r['score']}: {out / 'results.json'} and "
          f"{len(r['queries'])} contact sheets in {out}/ ({r['seconds']:.1f} s)")
    return 0


def _mark(result: dict[str, Any]) -> str:
    """' ok' / ' x' after a result whose correctness is known."""
    return "" if "correct" not in result else (" ok" if result["correct"] else " x")


def _export(args: argparse.Namespace) -> int:
    from mcja import api

    r = api.export(args.checkpoint, args.onnx, image_size=args.size, dynamic_batch=args.dynamic_batch, opset=args.opset)
    print(f"wrote {r['onnx']} (opset {r['opset']})")
    print(f"input:  {r['input']}")
    print(f"output: {r['output']}")
    parity = r["parity"]
    if "max_abs_diff" in parity:
        print(f"parity: onnxruntime vs PyTorch on batch {parity['batch']}: max abs difference {parity['max_abs_diff']:.2e}")
    else:
        print(f"parity: {parity['status']}")
    return 0
