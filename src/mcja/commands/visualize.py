"""`mcja visualize`: figures and verification from feature files, or activation maps of images."""

from __future__ import annotations

import argparse

from mcja.commands.common import add_verb, int_range, model_size
from mcja.errors import ConfigError

EXAMPLES = """
  mcja extract --checkpoint best.pt --dataset sysu --root /data/SYSU-MM01 --split query --out q.npz
  mcja extract --checkpoint best.pt --dataset sysu --root /data/SYSU-MM01 --split gallery --out g.npz
  mcja visualize q.npz g.npz --out figures/ --figures 5        # any model's features: ROC, histograms, t-SNE, ...
  mcja visualize --checkpoint best.pt --images a.jpg b.jpg --out maps.png   # activation maps (Grad-CAM, layer4)
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add `visualize`."""
    p = add_verb(sub, "visualize", "figures and verification from `mcja extract` files, or activation maps of images",
                 EXAMPLES)
    p.add_argument("features", nargs="*", metavar="FEATURES.npz", help="`mcja extract` outputs (both modalities in all)")
    p.add_argument("--out", required=True, help="a folder for results.md + figures/, or the PNG of activation maps")
    p.add_argument("--figures", type=int_range(0), default=5, metavar="N",
                   help="ranked lists of N random and N hardest queries (default 5; 0: verification only)")
    p.add_argument("--fpr", type=float, nargs="+", default=[1e-4, 1e-3, 1e-2], metavar="F",
                   help="verification: the false positive rates to report TPR and threshold at")
    p.add_argument("--checkpoint", help="with --images: draw activation maps of these images")
    p.add_argument("--images", nargs="+", help="image files for activation maps")
    p.add_argument("--size", type=model_size, default=None, help="input HxW (default: the checkpoint's)")
    p.set_defaults(func=_visualize)


def _visualize(args: argparse.Namespace) -> int:
    from mcja import api

    if args.checkpoint or args.images:
        if not (args.checkpoint and args.images) or args.features:
            raise ConfigError("activation maps take --checkpoint and --images (and no feature files)")
        path = api.activation_maps(args.checkpoint, args.images, args.out, image_size=args.size)
        print(f"activation maps of {len(args.images)} images written to {path}")
        return 0
    if not args.features:
        raise ConfigError("give FEATURES.npz files (from `mcja extract`), or --checkpoint with --images")
    from mcja.evaluation.report import print_results, print_verification

    out = api.visualize_features(args.features, args.out, figures=args.figures, fprs=args.fpr)
    print_results({"label": "infrared->visible", "plain": out["plain"]})
    print_verification(out["verification"])
    print(f"report       {out['out'] / 'results.md'} ({len(out['figures'])} figures)")
    for note in out["notes"]:
        print(f"note         {note}")
    return 0
