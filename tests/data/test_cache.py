"""The decode-once cache: what it stores, when it is reused, rebuilt, and what a failure leaves."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from torchvision.transforms import functional as TF

from janus.core.errors import ConfigError, DataNotFoundError
from janus.data import cache
from janus.data.base import FileSource, ImageSet


def write_photos(folder: Path, sizes: list[tuple[int, int]], seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, (w, h) in enumerate(sizes):
        path = folder / f"img{k}.jpg"
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def file_set(paths: list[str], index=None) -> ImageSet:
    n = len(paths) if index is None else len(index)
    return ImageSet(FileSource(tuple(paths)), np.zeros(n, np.int64), index)


@pytest.fixture
def counted(monkeypatch):
    """How many images the cache decodes."""
    calls = {"n": 0}
    original = cache._Decode.__getitem__

    def counting(self, chunk):
        out = original(self, chunk)
        calls["n"] += len(out)
        return out

    monkeypatch.setattr(cache._Decode, "__getitem__", counting)
    return calls


def test_cache_stores_the_eval_resize_and_is_reused(tmp_path, counted):
    paths = write_photos(tmp_path / "img", [(50, 40), (30, 60), (40, 40)])
    images = file_set(paths, np.array([2, 0]))
    first = cache.decode_cached(images, 36, tmp_path / "c")
    assert isinstance(first.pixels, np.memmap) and counted["n"] == 2
    for k, i in enumerate([2, 0]):  # the same PIL resize as the pil pipeline's test transform
        with Image.open(paths[i]) as img:
            expected = np.asarray(TF.resize(img.convert("RGB"), 36))
        assert np.array_equal(first.array(k), expected)
    assert [tuple(s) for s in first.shapes] == [(36, 36), (36, 45)]
    again = cache.decode_cached(images, 36, tmp_path / "c")
    assert counted["n"] == 2 and np.array_equal(again.pixels, first.pixels)
    assert len(list((tmp_path / "c").iterdir())) == 1
    # in memory: the same pixels, no files
    memory = cache.decode(images, 36, store="memory", cache_dir=tmp_path / "m", workers=0,
                          progress=False)
    assert np.array_equal(memory.pixels, first.pixels) and not (tmp_path / "m").exists()


def test_a_different_file_list_or_changed_file_gets_a_new_cache(tmp_path, counted):
    paths = write_photos(tmp_path / "img", [(50, 40), (30, 60), (40, 40)])
    c = tmp_path / "c"
    cache.decode_cached(file_set(paths[:2]), 36, c)
    cache.decode_cached(file_set(paths), 36, c)  # another list
    assert counted["n"] == 5 and len(list(c.iterdir())) == 2
    cache.decode_cached(file_set(paths), 40, c)  # another resize
    assert counted["n"] == 8
    write_photos(tmp_path / "img", [(64, 64)], seed=1)  # img0.jpg rewritten in place
    os.utime(paths[0], ns=(1, 1))
    fresh = cache.decode_cached(file_set(paths), 36, c)
    assert counted["n"] == 11 and tuple(fresh.shapes[0]) == (36, 36)


def test_a_cache_that_does_not_match_its_meta_data_is_rebuilt(tmp_path, counted):
    paths = write_photos(tmp_path / "img", [(50, 40), (30, 60)])
    c = tmp_path / "c"
    good = np.array(cache.decode_cached(file_set(paths), 36, c).pixels)  # a copy, not the map
    (folder,) = c.iterdir()
    (folder / "pixels.u8").write_bytes(b"\0" * 10)  # truncated
    with pytest.warns(UserWarning, match="does not match"):
        rebuilt = cache.decode_cached(file_set(paths), 36, c)
    assert counted["n"] == 4 and np.array_equal(rebuilt.pixels, good)
    meta = json.loads((folder / "meta.json").read_text())
    meta["key"] = "0" * 64  # written for another list under this name
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match="does not match"):
        cache.decode_cached(file_set(paths), 36, c)
    assert counted["n"] == 6


def test_an_interrupted_build_leaves_nothing_that_is_trusted(tmp_path, monkeypatch):
    paths = write_photos(tmp_path / "img", [(50, 40)] * 3)
    c = tmp_path / "c"
    original = cache._Decode.__getitem__

    def killed(self, chunk):
        raise KeyboardInterrupt("killed while decoding")

    monkeypatch.setattr(cache._Decode, "__getitem__", killed)
    with pytest.raises(KeyboardInterrupt):
        cache.decode_cached(file_set(paths), 36, c)
    assert list(c.iterdir()) == []
    monkeypatch.setattr(cache._Decode, "__getitem__", original)
    # a half-written folder of a process killed with -9 is never read: it has a .tmp name
    key = cache.file_list_key(paths, 36)
    stale = c / f"decoded-{key[:32]}.tmp-999-deadbeef"
    stale.mkdir()
    (stale / "pixels.u8").write_bytes(b"\0" * 7)
    decoded = cache.decode_cached(file_set(paths), 36, c)
    assert len(decoded) == 3 and (c / f"decoded-{key[:32]}" / "meta.json").exists()


def test_an_unreadable_image_names_its_file(tmp_path):
    paths = write_photos(tmp_path / "img", [(50, 40), (50, 40)])
    Path(paths[1]).write_bytes(Path(paths[1]).read_bytes()[:200])  # truncated JPEG
    with pytest.raises(DataNotFoundError, match=f"cannot read image '{paths[1]}'"):
        cache.decode_cached(file_set(paths), 36, tmp_path / "c")
    assert list((tmp_path / "c").iterdir()) == []
    os.remove(paths[0])
    with pytest.raises(DataNotFoundError, match=f"cannot read image '{paths[0]}'"):
        cache.decode_cached(file_set(paths), 36, tmp_path / "c")


def test_workers_decode_the_same_pixels_and_the_memmap_travels_by_name(tmp_path):
    import pickle

    paths = write_photos(tmp_path / "img", [(50, 40), (30, 60), (41, 43)] * 30)
    one = cache.decode_in_memory(file_set(paths), 36, workers=0)
    two = cache.decode_cached(file_set(paths), 36, tmp_path / "c", workers=2)
    assert np.array_equal(one.pixels, two.pixels) and np.array_equal(one.shapes, two.shapes)
    assert len(pickle.dumps(two)) < 10_000 < len(pickle.dumps(one))
    assert np.array_equal(pickle.loads(pickle.dumps(two)).array(5), one.array(5))


def test_an_unwritable_cache_folder_says_what_to_do(tmp_path):
    paths = write_photos(tmp_path / "img", [(50, 40)])
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match=f"cannot write the image cache in '{blocker}/sub' "
                                          r"\(Not a directory\).*data.cache=memory"):
        cache.decode_cached(file_set(paths), 36, blocker / "sub")


def test_a_read_only_cache_folder_is_one_error_saying_what_to_do(tmp_path, monkeypatch):
    paths = write_photos(tmp_path / "img", [(50, 40)])
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):  # root writes anyway: refuse as a read-only mount would
        make = Path.mkdir

        def read_only(self, *args, **kwargs):
            if self.parent == folder:
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
            return make(self, *args, **kwargs)

        monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(ConfigError, match=f"cannot write the image cache in '{folder}' "
                                          r"\(Read-only file system|Permission denied\).*"
                                          r"--set data.cache_dir=DIR.*--set data.cache=memory"):
        cache.decode_cached(file_set(paths), 36, folder)
    folder.chmod(0o755)


KILLED_BUILD = """
import os, sys, time
from pathlib import Path
from janus.data import cache
from tests.data.test_cache import file_set

def slow(self, chunk):
    (Path(sys.argv[2]) / str(os.getpid())).touch()
    time.sleep(60)

cache._Decode.__getitem__ = slow
cache.decode_cached(file_set(sys.argv[3:]), 16, sys.argv[1], workers=2)
"""


def running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (Linux ``/proc``)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal: Linux")
def test_a_build_killed_with_sigkill_leaves_no_worker_and_the_next_build_cleans_up(tmp_path):
    paths = write_photos(tmp_path / "img", [(20, 20)] * (2 * cache.CHUNK))  # a chunk per worker
    c, started = tmp_path / "c", tmp_path / "started"
    started.mkdir()
    build = subprocess.Popen([sys.executable, "-c", KILLED_BUILD, str(c), str(started), *paths],
                             cwd=Path(__file__).resolve().parents[2])
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while len(workers) < 2:
            assert build.poll() is None and time.monotonic() < deadline, "the build did not start"
            time.sleep(0.05)
            workers = [int(p.name) for p in started.iterdir()]
        assert len(list(c.glob("decoded-*.tmp-*"))) == 1
        build.send_signal(signal.SIGKILL)
        build.wait()
        deadline = time.monotonic() + 5
        while any(map(running, workers)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(map(running, workers)), "a decode worker outlived its killed parent"
    finally:
        build.kill()
        for pid in workers:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    decoded = cache.decode_cached(file_set(paths), 16, c)
    assert len(decoded) == len(paths) and not list(c.glob("decoded-*.tmp-*"))
