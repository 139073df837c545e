"""A persistent gallery index for archive-scale search: SQLite rows, memory-mapped features, FAISS (optional).

`GalleryIndex` is the Python API; `build_index` / `update_index` / `repair_index` are what `mcja index
build|update|repair` run.
"""

from mcja.index.api import build_index, index_info, repair_index, search_index, update_index
from mcja.index.gallery import GalleryIndex
from mcja.index.writer import IndexBusy

__all__ = ["GalleryIndex", "IndexBusy", "build_index", "index_info", "repair_index", "search_index", "update_index"]
