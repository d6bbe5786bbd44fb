"""Decode-once image cache for the ``device`` input pipeline.

Every image of a split is decoded once, resized so that its short side is the evaluation
resize of the model's input (torchvision ``Resize(img_size * 256 // 224)``, the same PIL
call as the ``pil`` pipeline's test transform) and stored as uint8 in one flat array. For
image files the array is a memory-mapped file in a cache folder, named by a hash of the file
list (paths, sizes, modification times) and the resize: a changed list gets a new cache, never
an old one. A cache is built in a temporary folder and renamed into place when complete, so an
interrupted build leaves nothing a later run trusts (the next build removes the temporary
folder of a killed one); its ``meta.json`` repeats the key and the sizes, and a cache that does
not match them is rebuilt. The decoding workers end with the process that started them
(:mod:`janus.data.workers`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import functional as TF
from tqdm import tqdm

from janus.core.errors import ConfigError, DataNotFoundError, JanusError
from janus.data.base import FileSource, ImageSet
from janus.data.workers import process_alive, worker_init

CACHE_ENV = "JANUS_CACHE"
FORMAT = 1
"""Version of the cache layout; part of the key."""
CHUNK = 64
"""Images decoded per worker request."""


@dataclass(frozen=True)
class DecodedImages:
    """Decoded uint8 images of different sizes in one flat array; image ``i`` is
    ``pixels[offsets[i]:offsets[i + 1]]`` reshaped to ``shapes[i] + (3,)``."""

    pixels: np.ndarray
    offsets: np.ndarray
    shapes: np.ndarray
    """(N, 2) int64: height and width of each image."""

    def __len__(self) -> int:
        return len(self.shapes)

    def __reduce__(self):
        """A memory-mapped cache travels to worker processes as its file name, not its bytes."""
        if isinstance(self.pixels, np.memmap) and self.pixels.filename:
            return (_reopen, (self.pixels.filename, self.offsets, self.shapes))
        return (DecodedImages, (np.asarray(self.pixels), self.offsets, self.shapes))

    def array(self, i: int) -> np.ndarray:
        h, w = self.shapes[i]
        return self.pixels[self.offsets[i] : self.offsets[i + 1]].reshape(h, w, 3)


def _reopen(filename: str, offsets: np.ndarray, shapes: np.ndarray) -> DecodedImages:
    return DecodedImages(np.memmap(filename, dtype=np.uint8, mode="r"), offsets, shapes)


def default_cache_dir() -> Path:
    """``$JANUS_CACHE``, else ``$XDG_CACHE_HOME/janus``, else ``~/.cache/janus``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "janus"


def file_stamp(path: str) -> str:
    """``<size>\\0<mtime in ns>`` of the file at ``path``: what tells a file replaced under
    the same name (the cache key, the data fingerprint)."""
    try:
        st = os.stat(path)
    except OSError as err:
        raise DataNotFoundError(f"cannot read image {path!r}: {err.strerror}") from None
    return f"{st.st_size}\0{st.st_mtime_ns}"


def file_list_key(paths: Sequence[str], short_side: int) -> str:
    """SHA-256 of the cache format, the resize and every file's path, size and mtime."""
    h = hashlib.sha256(f"janus-decoded-v{FORMAT}\0{short_side}\n".encode())
    for p in paths:
        h.update(f"{p}\0{file_stamp(p)}\n".encode())
    return h.hexdigest()


class _Decode(Dataset):
    """Chunks of images decoded and resized; a failure comes back as its message."""

    def __init__(self, images: ImageSet, short_side: int) -> None:
        self.images, self.short_side = images, short_side

    def __len__(self) -> int:
        return -(-len(self.images) // CHUNK)

    def __getitem__(self, chunk: int) -> list[np.ndarray | str]:
        out: list[np.ndarray | str] = []
        for i in range(chunk * CHUNK, min((chunk + 1) * CHUNK, len(self.images))):
            try:
                out.append(np.asarray(TF.resize(self.images.image(i), self.short_side)))
            except DataNotFoundError as err:
                out.append(str(err))
        return out


def _as_is(batch):
    return batch


def decoded_stream(images: ImageSet, short_side: int, workers: int, progress: bool):
    """Yield the images of ``images`` in order, decoded and resized, with ``workers`` processes."""
    loader = DataLoader(  # its own generator: building a cache leaves torch's global RNG as is
        _Decode(images, short_side), batch_size=None, num_workers=workers, collate_fn=_as_is,
        generator=torch.Generator(), worker_init_fn=worker_init(),
    )
    with tqdm(total=len(images), desc="decoding images once", disable=not progress,
              leave=False) as bar:
        for chunk in loader:
            for item in chunk:
                if isinstance(item, str):
                    raise DataNotFoundError(item)
                yield item
            bar.update(len(chunk))


def decode_in_memory(
    images: ImageSet, short_side: int, workers: int = 0, progress: bool = False
) -> DecodedImages:
    """All images of ``images`` decoded and resized into memory."""
    arrays = list(decoded_stream(images, short_side, workers, progress))
    return pack(arrays)


def pack(arrays: list[np.ndarray]) -> DecodedImages:
    shapes = np.array([a.shape[:2] for a in arrays], dtype=np.int64).reshape(-1, 2)
    offsets = np.concatenate([[0], np.cumsum(shapes[:, 0] * shapes[:, 1] * 3)]).astype(np.int64)
    pixels = np.concatenate([a.reshape(-1) for a in arrays]) if arrays else np.zeros(0, np.uint8)
    return DecodedImages(pixels, offsets, shapes)


def decode_cached(
    images: ImageSet,
    short_side: int,
    cache_dir: str | os.PathLike | None = None,
    workers: int = 0,
    progress: bool = False,
) -> DecodedImages:
    """The images of a file-backed ``images``, from the disk cache (built first if needed)."""
    if not isinstance(images.source, FileSource):
        raise TypeError("only image files are cached on disk")
    paths = [images.source.paths[i] for i in _positions(images)]
    key = file_list_key(paths, short_side)
    folder = Path(cache_dir) if cache_dir else default_cache_dir()
    final = folder / f"decoded-{key[:32]}"
    if final.exists():
        found = open_cache(final, key, len(paths))
        if found is not None:
            return found
        warnings.warn(f"the image cache {final} does not match its files; rebuilding it",
                      stacklevel=2)
        shutil.rmtree(final, ignore_errors=True)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        remove_stale_builds(folder)
        build(final, key, images, short_side, workers, progress)
    except JanusError:
        raise
    except OSError as err:  # a read-only or full folder: not an unreadable image (JanusError)
        raise ConfigError(
            f"cannot write the image cache in {str(folder)!r} ({err.strerror or err}): "
            f"data.cache_dir (or ${CACHE_ENV}) must be a writable folder with room for the "
            f"decoded images; choose another with --set data.cache_dir=DIR, or keep them in "
            f"memory with --set data.cache=memory"
        ) from None
    found = open_cache(final, key, len(paths))
    if found is None:
        raise DataNotFoundError(f"the image cache {final} could not be read back after writing")
    return found


def _positions(images: ImageSet) -> np.ndarray:
    return np.arange(len(images)) if images.index is None else images.index


TMP_NAME = re.compile(r"decoded-[0-9a-f]+\.tmp-(?P<pid>\d+)-[0-9a-f]{8}(@(?P<host>.+))?")
"""A cache being built: ``decoded-<key>.tmp-<pid>-<random>@<host>`` (without the host before
it was recorded)."""


def remove_stale_builds(folder: Path) -> None:
    """Remove the temporary folders of builds in ``folder`` whose process ended without
    removing its own (killed with SIGKILL, a power cut): those started on this host (or
    unmarked, as before hosts were recorded) by a process that no longer runs. Builds of other
    hosts sharing the folder are left alone."""
    host = socket.gethostname()
    with contextlib.suppress(OSError):
        for entry in folder.iterdir():
            found = TMP_NAME.fullmatch(entry.name)
            if (found and found["host"] in (None, host) and int(found["pid"]) != os.getpid()
                    and not process_alive(int(found["pid"]))):
                shutil.rmtree(entry, ignore_errors=True)


def build(
    final: Path, key: str, images: ImageSet, short_side: int, workers: int, progress: bool
) -> None:
    """Write the cache into a temporary folder beside ``final`` and rename it into place."""
    tmp = final.with_name(
        f"{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}@{socket.gethostname()}")
    tmp.mkdir()
    try:
        shapes, total = [], 0
        with open(tmp / "pixels.u8", "wb") as f:
            for a in decoded_stream(images, short_side, workers, progress):
                f.write(np.ascontiguousarray(a, dtype=np.uint8).tobytes())
                shapes.append(a.shape[:2])
                total += a.size
            f.flush()
            os.fsync(f.fileno())
        shape_array = np.array(shapes, dtype=np.int64).reshape(-1, 2)
        np.save(tmp / "shapes.npy", shape_array)
        meta = {"format": FORMAT, "key": key, "count": len(shapes), "bytes": int(total),
                "short_side": short_side}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        try:
            os.rename(tmp, final)
        except OSError:  # another process finished the same cache first: keep theirs
            if not (final / "meta.json").exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def open_cache(folder: Path, key: str, count: int) -> DecodedImages | None:
    """The cache in ``folder`` if its meta data match ``key`` and ``count``, else None."""
    with contextlib.suppress(OSError, ValueError, KeyError):
        meta = json.loads((folder / "meta.json").read_text())
        shapes = np.load(folder / "shapes.npy")
        total = int((shapes[:, 0] * shapes[:, 1] * 3).sum()) if len(shapes) else 0
        pixels_path = folder / "pixels.u8"
        if (meta["format"], meta["key"], meta["count"], meta["bytes"]) != (
            FORMAT, key, count, total
        ) or len(shapes) != count or pixels_path.stat().st_size != total:
            return None
        pixels = (np.memmap(pixels_path, dtype=np.uint8, mode="r") if total
                  else np.zeros(0, np.uint8))
        offsets = np.concatenate([[0], np.cumsum(shapes[:, 0] * shapes[:, 1] * 3)])
        return DecodedImages(pixels, offsets.astype(np.int64), shapes.astype(np.int64))
    return None


def decode(
    images: ImageSet,
    short_side: int,
    *,
    store: str,
    cache_dir: str | os.PathLike | None,
    workers: int,
    progress: bool,
) -> DecodedImages:
    """``images`` decoded once: from the disk cache (``store='disk'``, image files only) or
    into memory (``store='memory'``, and for images that are not files)."""
    if store == "disk" and isinstance(images.source, FileSource):
        return decode_cached(images, short_side, cache_dir, workers, progress)
    return decode_in_memory(images, short_side, workers, progress)

