"""`mcja index build|update|search|info|repair`: a persistent gallery index for archive-scale search (FAISS extra)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from mcja.commands.common import add_mser_options, add_verb, model_size, mser_options, size_help
from mcja.utils.names import printable

EXAMPLES = """
  mcja index build --checkpoint best.pt --images /archive/crops --out archive.idx
  mcja index update archive.idx                     # only new / changed images are extracted
  mcja index search archive.idx --query q.jpg --top-k 20 --modality visible --out results/
  mcja index info archive.idx
  mcja index repair archive.idx                     # rebuild a damaged faiss.index from the stored features
  torchrun --nproc_per_node 4 -m mcja index build --checkpoint best.pt --images /archive/crops --out archive.idx
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add `index` and its sub-verbs to the `mcja` parser."""
    p = add_verb(sub, "index", "A persistent gallery index (SQLite + memory-mapped features + FAISS): build, "
                 "update, search, info, repair.", EXAMPLES)
    verbs = p.add_subparsers(dest="index_verb", metavar="ACTION", required=True)

    b = add_verb(verbs, "build", "Build an index of a folder or list of images (resumes an interrupted build).",
                 EXAMPLES)
    b.add_argument("--checkpoint", required=True, help="ours (best.pt/last.pt) or a reference-code state dict")
    source = b.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", help="a folder of images (searched recursively)")
    source.add_argument("--list", dest="list_file", help="a file of image paths, or a .csv path,pid,camera,modality")
    b.add_argument("--out", required=True, help="the index folder to write")
    b.add_argument("--views", default="1", choices=("1", "mser"), help="mser: also store R/G/B views for --rerank")
    b.add_argument("--kind", default="auto", choices=("auto", "flat", "ivf", "hnsw"),
                   help="auto (default): exact up to 50k images, ivf above")
    b.add_argument("--dtype", default="float16", choices=("float16", "float32"), help="stored features (float16)")
    b.add_argument("--size", type=model_size, default=None, help=size_help("input HxW"))
    _label_options(b)
    _extract_options(b)
    b.set_defaults(func=_build)

    u = add_verb(verbs, "update", "Re-scan an index's source: extract new/changed images, drop deleted ones.",
                 EXAMPLES)
    u.add_argument("index", help="the index folder")
    u.add_argument("--checkpoint", default=None, help="the index's checkpoint if it moved (checked by sha256)")
    _label_options(u)
    _extract_options(u)
    u.set_defaults(func=_update)

    s = add_verb(verbs, "search", "Rank an index for query images: JSON and a contact sheet per query.", EXAMPLES)
    s.add_argument("index", help="the index folder")
    s.add_argument("--query", nargs="+", required=True, help="query image(s), or folders of them")
    s.add_argument("--out", required=True, help="folder for results.json and the PNGs")
    s.add_argument("--checkpoint", default=None, help="the index's checkpoint if it moved (checked by sha256)")
    s.add_argument("--top-k", type=int, default=10, help="results per query (default 10)")
    s.add_argument("--modality", default=None, help="only gallery images of this modality (visible, infrared)")
    s.add_argument("--camera", type=int, nargs="+", default=None, help="only gallery images of these cameras")
    s.add_argument("--rerank", action="store_true", help="MSER re-ranking over the union of the top candidates")
    add_mser_options(s, "--rerank", "RegDB's, neighbours from all items")
    s.add_argument("--size", type=model_size, default=None, help="input HxW (must be the index's)")
    _extract_options(s, chunked=False)
    s.set_defaults(func=_search)

    i = add_verb(verbs, "info", "Print what an index holds (identity, images, search structure).", EXAMPLES)
    i.add_argument("index", help="the index folder")
    i.add_argument("--json", action="store_true", help="print the whole description as JSON")
    i.set_defaults(func=_info)

    r = add_verb(verbs, "repair", "Check an index's files and rebuild its search structure from the stored features.",
                 EXAMPLES)
    r.add_argument("index", help="the index folder")
    _wait_option(r)
    r.set_defaults(func=_repair)


def _label_options(p: argparse.ArgumentParser) -> None:
    """--camera / --modality: labels for the images whose path (layout, folders, name) or list tells none."""
    p.add_argument("--camera", type=int, default=None,
                   help="camera of the images whose path or list tells none (e.g. a folder from one camera)")
    p.add_argument("--modality", default=None,
                   help="modality (visible, infrared) of the images whose path or list tells none")


def _extract_options(p: argparse.ArgumentParser, chunked: bool = True) -> None:
    """Options for embedding images."""
    p.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default 64)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:N")
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable images with a warning instead of failing")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    if chunked:
        p.add_argument("--chunk", type=int, default=1024, help="images per committed chunk (default 1024)")
        _wait_option(p)


def _wait_option(p: argparse.ArgumentParser) -> None:
    """--no-wait, for the verbs that write an index (they hold its writer lock)."""
    p.add_argument("--no-wait", action="store_true",
                   help="refuse (exit 2) instead of waiting while another process writes the index")


def _lock_timeout(args: argparse.Namespace) -> float | None:
    """The writer lock's timeout: 0 with --no-wait, else wait as long as it takes."""
    return 0.0 if args.no_wait else None


def _rank0() -> bool:
    """True outside torchrun and on its rank 0."""
    return os.environ.get("RANK", "0") == "0"


def _report(verb: str, r: dict[str, Any]) -> int:
    """The build/update summary (printed by rank 0 only under torchrun)."""
    if not _rank0():
        return 0
    for line in r["skipped"]:
        print(f"mcja index {verb}: warning: skipped {line}", file=sys.stderr)
    s = r["structure"] or {}
    params = ", ".join(f"{k} {v}" for k, v in (s.get("params") or {}).items())
    engine = f"FAISS {s.get('kind')}" if s.get("faiss") else "exact search in torch (FAISS not installed)"
    relabelled = f", {r['relabelled']} relabelled" if r.get("relabelled") else ""
    print(f"{printable(r['index'])}: {r['images']} images ({r['new']} new, {r['changed']} changed, {r['removed']} removed"
          f"{relabelled}; extracted {r['extracted']} in {r['seconds']:.1f} s)")
    print(f"search: {engine}" + (f" ({params})" if params else ""))
    return 0


def _build(args: argparse.Namespace) -> int:
    from mcja import api

    r = api.index_build(args.out, args.checkpoint, images=args.images, list_file=args.list_file, views=args.views,
                        kind=args.kind, dtype=args.dtype, chunk=args.chunk, batch_size=args.batch_size,
                        image_size=args.size, device=args.device, skip_bad=args.skip_bad, progress=not args.quiet,
                        camera=args.camera, modality=args.modality, lock_timeout=_lock_timeout(args))
    return _report("build", r)


def _update(args: argparse.Namespace) -> int:
    from mcja import api

    r = api.index_update(args.index, checkpoint=args.checkpoint, chunk=args.chunk, batch_size=args.batch_size,
                         device=args.device, skip_bad=args.skip_bad, progress=not args.quiet, camera=args.camera,
                         modality=args.modality, lock_timeout=_lock_timeout(args))
    return _report("update", r)


def _search(args: argparse.Namespace) -> int:
    from mcja import api
    from mcja.index.search import shown_path

    r = api.index_search(args.index, args.query, args.out, checkpoint=args.checkpoint, top_k=args.top_k,
                         modality=args.modality, camera=args.camera, rerank=args.rerank, batch_size=args.batch_size,
                         image_size=args.size, device=args.device, skip_bad=args.skip_bad, progress=not args.quiet,
                         **mser_options(args))
    for line in r["skipped"]:
        print(f"mcja index search: warning: skipped {line}", file=sys.stderr)
    scope = "images allowed by the filters" if args.modality or args.camera else "images"
    if r["top_k"] < r["top_k_requested"]:
        print(f"mcja index search: note: --top-k {r['top_k_requested']} is more than the {r['gallery_images']} "
              f"{scope}: all of them are returned", file=sys.stderr)
    for q in r["queries"]:
        shown = "  ".join(f"{shown_path(x['path'], r['root'])} {x['score']:.3f}" for x in q["results"][:3])
        print(f"{printable(q['query'])}: {shown}")
    print(f"{len(r['queries'])} queries, top {r['top_k']} of {r['gallery_images']} {scope} by {r['score']}: "
          f"{printable(os.path.join(args.out, 'results.json'))} ({r['seconds']:.1f} s)")
    return 0


def _info(args: argparse.Namespace) -> int:
    from mcja import api
    from mcja.index.gallery import describe_source

    r = api.index_info(args.index)
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    ident, s = r["identity"], r["structure"] or {}
    print(f"{printable(r['index'])}: {r['images']} images, {r['pending']} pending, {r['unreadable']} unreadable")
    print(f"source: {describe_source(r['source'])}")
    print(f"checkpoint: {printable(ident['checkpoint'])} (sha256 {ident['checkpoint_sha256'][:12]}), input "
          f"{ident['image_size'][0]}x{ident['image_size'][1]}, {ident['feature_dim']}-d {ident['dtype']} features, "
          f"views {ident['views']}, mcja {ident['mcja_version']}")
    params = ", ".join(f"{k} {v}" for k, v in (s.get("params") or {}).items())
    print(f"search: {s.get('kind', 'none yet')} (requested {r['kind']})" + (f", {params}" if params else ""))
    if r["shards"]:
        done = ", ".join(f"{rank} {n} images" for rank, n in r["shards"].items())
        print(f"interrupted sharded build: {done} extracted (finish it with the same torchrun build, or "
              f"`mcja index update {r['index']}`)")


def _repair(args: argparse.Namespace) -> int:
    from mcja import api

    r = api.index_repair(args.index, lock_timeout=_lock_timeout(args))
    s = r["structure"] or {}
    cut = f"cut {r['cut_bytes']} uncommitted bytes" if r["cut_bytes"] else "nothing uncommitted to cut"
    print(f"{r['index']}: database and feature file checked ({r['feature_rows']} committed rows; {cut})")
    engine = f"faiss.index rebuilt ({s.get('kind')})" if s.get("faiss") else "exact search in torch (no faiss.index)"
    print(f"search: {engine} over {r['images']} images")
    if r["pending"]:
        print(f"{r['pending']} images wait for extraction: run `mcja index update {r['index']}`")
    return 0
