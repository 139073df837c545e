"""Synthetic VI-ReID datasets in the published layouts (SYSU-MM01, RegDB, LLCM), for tests and the demo."""

from mcja.data.synthetic.generate import DEFAULT_IDS, DEFAULT_IMAGES_PER_CAMERA, LAYOUTS, make_synthetic

__all__ = ["DEFAULT_IDS", "DEFAULT_IMAGES_PER_CAMERA", "LAYOUTS", "make_synthetic"]
