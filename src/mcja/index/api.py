"""What `mcja index build|update|search|info|repair` run: sources, the torchrun runtime, the writer lock,
summaries."""

from __future__ import annotations

import os
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Sequence

from mcja.data.records import MODALITY_BY_CODE
from mcja.errors import ConfigError
from mcja.index.build import remove_index_files
from mcja.index.gallery import GalleryIndex, parse_modality
from mcja.index.search import rerank_params, search_to_folder
from mcja.index.store import DB_NAME
from mcja.index.writer import WriterLock
from mcja.inference.sources import find_images, image_labels, list_file_images


def source_images(source: dict[str, Any], exclude: Path | None = None) -> tuple[list[str], dict[str, tuple]]:
    """(paths, path -> (pid, camera, modality)) of an index's source: {"images": DIR} or {"list": FILE}, with
    optional "camera" / "modality" for the images whose path (or list) tells none."""
    if source.get("images"):
        root = source["images"]
        paths = find_images(root, exclude=exclude)
        labels = {p: image_labels(p, root) for p in paths}
    else:
        images = list_file_images(source["list"])
        paths = [str(Path(p).absolute()) for p in images.paths]
        labels = {}
        for i, p in enumerate(paths):
            parsed = image_labels(p)
            labels[p] = tuple(col[i] if col is not None else guess
                              for col, guess in zip((images.pids, images.cameras, images.modalities), parsed))
    fill = (None, source.get("camera"), parse_modality(source.get("modality")))
    return paths, {p: tuple(v if v is not None else f for v, f in zip(found, fill)) for p, found in labels.items()}


def source_root(source: dict[str, Any], paths: Sequence[str]) -> str:
    """The folder results are shown relative to: the image folder, else the list's folder when every image lies
    below it, else the images' common parent."""
    if source.get("images"):
        return source["images"]
    folder = str(Path(source["list"]).parent)
    if not paths or all(Path(p).is_relative_to(folder) for p in paths):
        return folder
    common = os.path.commonpath(paths)
    return common if len(paths) > 1 else os.path.dirname(common)


def _source(images: str | None, list_file: str | None, camera: int | None = None,
            modality: str | None = None) -> dict[str, Any]:
    """The source record for exactly one of --images / --list, with the labels --camera / --modality give."""
    if bool(images) == bool(list_file):
        raise ConfigError("give exactly one image source: --images DIR or --list FILE")
    if images:
        source = {"images": str(Path(images).expanduser().absolute())}
    else:
        source = {"list": str(Path(list_file).expanduser().absolute())}  # type: ignore[arg-type]
    return _with_labels(source, camera, modality)


def _with_labels(source: dict[str, Any], camera: int | None, modality: str | int | None) -> dict[str, Any]:
    """`source` with the given --camera / --modality (checked) recorded for images whose path tells none."""
    out = dict(source)
    if camera is not None:
        if int(camera) < 0:
            raise ConfigError(f"--camera: expected a camera number (0 or more), got {camera}")
        out["camera"] = int(camera)
    if modality is not None:
        out["modality"] = MODALITY_BY_CODE[parse_modality(modality)]
    return out


def _runtime(device: str | None) -> Any:
    """The torchrun runtime (gloo on CPU, NCCL on GPU) when launched by torchrun, else None."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    from mcja.engine.runtime import setup_runtime

    return setup_runtime(device or "auto", amp="off")


def _check_chunk(chunk: int) -> None:
    """A ConfigError unless `chunk` is a positive number of images."""
    if int(chunk) < 1:
        raise ConfigError(f"--chunk: expected a positive number of images, got {chunk}")


def _sync(index: GalleryIndex, source: dict[str, Any], runtime: Any, chunk: int, skip_bad: bool,
          progress: bool, listed: tuple[list[str], dict[str, tuple]] | None = None) -> dict[str, Any]:
    """Scan the source (unless `listed` already) and bring the index up to date; the summary of what changed."""
    start = time.perf_counter()
    paths, labels = listed or source_images(source, exclude=index.folder)
    if runtime is None or runtime.rank == 0:
        with index.store.transaction():
            index.store.set("source", source)  # an update's new --camera / --modality
            index.store.set("root", source_root(source, paths))
    counts = index.sync(paths, drop_missing=True, chunk=chunk, skip_bad=skip_bad, progress=progress,
                        runtime=runtime, labels=labels.get)
    return {**counts, **index.info(), "skipped": index.store.errors(), "seconds": round(time.perf_counter() - start, 3)}


def build_index(out: str | os.PathLike, checkpoint: str | os.PathLike, images: str | None = None,
                list_file: str | None = None, views: int | str = 1, kind: str = "auto", dtype: str = "float16",
                chunk: int = 1024, batch_size: int = 64, image_size: Sequence[int] | None = None,
                device: str | None = None, skip_bad: bool = False, progress: bool = True, camera: int | None = None,
                modality: str | None = None, lock_timeout: float | None = None) -> dict[str, Any]:
    """Build (or resume building) an index folder of a folder or list of images; returns its summary. `camera` /
    `modality` label the images whose path (or list) tells none. Holds the folder's writer lock throughout
    (`lock_timeout`: see GalleryIndex). A build that indexed nothing (a failed first chunk, a wrong checkpoint,
    Ctrl-C) removes what it created."""
    from mcja.engine.runtime import teardown_runtime

    source = _source(images, list_file, camera, modality)
    _check_chunk(chunk)
    folder = Path(out).expanduser().absolute()
    listed = source_images(source, exclude=folder)  # a missing or empty source is refused before anything is made
    runtime = _runtime(device)
    dev = str(runtime.device) if runtime is not None else device
    rank0 = runtime is None or runtime.rank == 0
    made = not folder.exists()
    lock = WriterLock(folder, lock_timeout, enabled=rank0)  # rank 0 writes for every rank
    try:
        with lock.hold("mcja index build"):
            fresh = not (folder / DB_NAME).is_file() or (folder / DB_NAME).stat().st_size == 0
            index = None
            try:
                index = GalleryIndex.create(folder, checkpoint, views=views, dtype=dtype, kind=kind, source=source,
                                            lock=lock, device=dev, batch_size=batch_size, image_size=image_size)
                return _sync(index, source, runtime, chunk, skip_bad, progress, listed)
            except BaseException:
                if rank0 and fresh:
                    _discard_if_empty(folder, made, index)
                raise
            finally:
                if index is not None:
                    index.close()
    finally:
        if runtime is not None:
            teardown_runtime(runtime)


def _discard_if_empty(folder: Path, made: bool, index: GalleryIndex | None) -> None:
    """Remove the index files a failed build created, unless it committed something (then it resumes); the folder
    too when the build made it and nothing else is in it."""
    if index is not None:
        counts = index.store.counts()
        if index.store.get("rows", 0) or counts["images"] or counts["unreadable"]:
            return
        index.close()
    remove_index_files(folder)
    if made:
        try:
            folder.rmdir()
        except OSError:
            pass  # something else was put there meanwhile: it stays


def update_index(index_dir: str | os.PathLike, checkpoint: str | os.PathLike | None = None, chunk: int = 1024,
                 batch_size: int = 64, device: str | None = None, skip_bad: bool = False,
                 progress: bool = True, camera: int | None = None, modality: str | None = None,
                 lock_timeout: float | None = None) -> dict[str, Any]:
    """Re-scan an index's source: extract new and changed images only, drop deleted ones (ids stay stable); also
    rebuilds a damaged search structure. `camera` / `modality` replace the labels recorded for images whose path
    tells none (relabelled in place). Holds the writer lock from the scan to the end (`lock_timeout`: see
    GalleryIndex)."""
    from mcja.engine.runtime import teardown_runtime

    _check_chunk(chunk)
    probe = GalleryIndex.open(index_dir)
    ckpt = checkpoint or probe.identity["checkpoint"]
    source = probe.store.get("source")
    probe.close()
    if not source:
        raise ConfigError(f"{index_dir}: this index records no image folder or list to re-scan (it was filled "
                          "through the Python API): add images with GalleryIndex.add")
    source = _with_labels(source, camera, modality)
    runtime = _runtime(device)
    dev = str(runtime.device) if runtime is not None else device
    try:
        index = GalleryIndex.open(index_dir, ckpt, lock_timeout=lock_timeout, device=dev, batch_size=batch_size)
        try:
            with index.writing("mcja index update") if runtime is None or runtime.rank == 0 else nullcontext():
                return _sync(index, source, runtime, chunk, skip_bad, progress)
        finally:
            index.close()
    finally:
        if runtime is not None:
            teardown_runtime(runtime)


def repair_index(index_dir: str | os.PathLike, lock_timeout: float | None = None) -> dict[str, Any]:
    """Check an index's database and feature file, cut uncommitted feature bytes and rebuild its search structure
    from the stored features (no checkpoint needed); what it found and did."""
    index = GalleryIndex.open(index_dir, lock_timeout=lock_timeout)
    try:
        with index.writing("mcja index repair"):
            return index.repair()
    finally:
        index.close()


def search_index(index_dir: str | os.PathLike, queries: Sequence[str | os.PathLike], out: str | os.PathLike,
                 checkpoint: str | os.PathLike | None = None, top_k: int = 10, modality: str | None = None,
                 camera: Sequence[int] | None = None, rerank: bool = False, batch_size: int = 64,
                 image_size: Sequence[int] | None = None, device: str | None = None, skip_bad: bool = False,
                 progress: bool = True, mser_preset: str | None = None, mser_k1: int | None = None,
                 mser_k2: int | None = None, mser_lambda: float | None = None) -> dict[str, Any]:
    """Search query images in an index (with its own checkpoint unless another, refused if different, is given);
    the mser_* keywords as in `GalleryIndex.search`."""
    params = rerank_params(rerank, mser_preset, mser_k1, mser_k2, mser_lambda)  # bad values fail before any work
    probe = GalleryIndex.open(index_dir)
    ckpt = checkpoint or probe.identity["checkpoint"]
    probe.close()
    index = GalleryIndex.open(index_dir, ckpt, device=device, batch_size=batch_size, image_size=image_size)
    return search_to_folder(index, queries, out, top_k, modality, camera, params or False, skip_bad, progress,
                            extra={"checkpoint": str(ckpt)})


def index_info(index_dir: str | os.PathLike) -> dict[str, Any]:
    """What an index holds (no checkpoint needed)."""
    return GalleryIndex.open(index_dir).info()
