"""Data that used to pass silently and wrongly: tasks without test images, 16-bit images,
files a tree skips, and ``.npz`` images of different sizes."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from janus.core.config import apply_overrides, profile
from janus.core.errors import ConfigError, DataNotFoundError
from janus.data.base import FileSource, rgb
from janus.data.stream import build_stream
from janus.data.trees import SkippedFilesWarning
from tests.data.test_loaders import GREEN, RED, blob_arrays, jpeg_bytes, write_image
from tests.data.test_own_data import load, tree


def stream_of(*overrides: str):
    """The smoke profile's stream (pil pipeline, 2 tasks) with ``overrides``."""
    cfg = apply_overrides(profile("smoke"), ["data.num_tasks=2", "data.num_classes=None",
                                             "data.pipeline=pil", "data.num_workers=0",
                                             *overrides])
    return build_stream(cfg, seed=0)


def write_blobs(path: Path, classes: list[str], train: list[tuple[bytes, int]],
                test: list[tuple[bytes, int]]) -> Path:
    np.savez(path, **blob_arrays(classes, {"train": train, "test": test}))
    return path


# --------------------------------------------------------------------------- tasks without tests


def test_test_per_class_0_is_refused_when_the_stream_is_built():
    with pytest.raises(ConfigError, match=r"task 1 \(classes .*\) and task 2 \(classes .*\) "
                                          r"have no test images.*data.test_per_class=0"):
        stream_of("data.num_classes=4", "data.test_per_class=0")


def test_an_npz_whose_test_labels_miss_a_task_is_refused(tmp_path):
    path = write_blobs(tmp_path / "own.npz", ["a", "b", "c", "d"],
                       [(jpeg_bytes(RED), y) for y in (0, 1, 2, 3)],
                       [(jpeg_bytes(RED), 0), (jpeg_bytes(GREEN), 1), (jpeg_bytes(RED), 2)])
    with pytest.raises(ConfigError, match=r"task 2 \(class 'd'\) has no test images.*"
                                          r"own.npz' include none of these classes"):
        stream_of("data.dataset=npz", f"data.path={str(path)!r}")


def test_a_one_tree_folder_of_two_images_per_class_is_refused(tmp_path):
    root = tree(tmp_path / "mine", {"": 2})
    with pytest.warns(SkippedFilesWarning), \
            pytest.raises(ConfigError, match=r"task 1 \(classes 'cat', 'dog'\) and task 2 .* "
                                             r"no test images.*at least 3 images"):
        stream_of("data.dataset=imagefolder", f"data.root={str(root)!r}")


# --------------------------------------------------------------------------- 16-bit images


def gradient16(mode: str) -> Image.Image:
    """A 16-bit grayscale ramp 0..65535 (8 x 256) in ``mode``."""
    ramp = np.tile(np.linspace(0, 65535, 256).round().astype(np.int64), (8, 1))
    dtype = {"I;16": "<u2", "I;16B": ">u2", "I": "<i4"}[mode]
    img = Image.fromarray(ramp.astype(dtype))
    assert img.mode == mode
    return img


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I"])
def test_16_bit_images_are_rescaled_to_8_bits_not_clipped(mode):
    out = np.asarray(rgb(gradient16(mode)))
    assert out.dtype == np.uint8 and out.shape == (8, 256, 3)
    expected = np.linspace(0, 255, 256)
    assert np.abs(out[0, :, 0] - expected).max() <= 1 and (out[..., 0] == out[..., 2]).all()


def test_a_16_bit_png_file_is_read_as_its_gradient(tmp_path):
    path = tmp_path / "ramp.png"
    gradient16("I;16").save(path)
    out = np.asarray(FileSource((str(path),)).image(0))
    assert (out == 255).mean() < 0.01  # was 82% before
    assert np.abs(out[0, :, 1] - np.linspace(0, 255, 256)).max() <= 1


@pytest.mark.parametrize("mode", ["RGB", "L", "P", "RGBA", "LA"])
def test_8_bit_images_decode_as_before(mode):
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)).convert(mode)
    assert np.array_equal(np.asarray(rgb(img)), np.asarray(img.convert("RGB")))


# --------------------------------------------------------------------------- skipped files


def odd_tree(root: Path) -> Path:
    """Three classes of 5 images, plus what a tree cannot use."""
    for name in ("cat", "dog", "emu"):
        for i in range(5):
            write_image(root / name / f"{i}.png", RED)
    (root / "cat" / "notes.txt").write_text("not an image")
    write_image(root / "dog" / "more" / "5.png")  # a folder inside a class folder
    write_image(root / "emu" / "6.bmp")
    (root / "empty").mkdir()
    (root / "cat" / ".DS_Store").write_text("hidden: ignored without a word")
    return root


def test_files_a_tree_skips_are_named_in_one_warning(tmp_path):
    root = odd_tree(tmp_path / "mine")
    Image.new("RGB", (8, 8), GREEN).save(root / "dog" / "7.webp")  # read (Pillow has WebP)
    write_image(root / "fox" / "only.png")  # a class of 1 image: nothing left for its test
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load("imagefolder", root)
    skipped = [w for w in caught if issubclass(w.category, SkippedFilesWarning)]
    assert len(skipped) == 1 and len(caught) == 1
    text = str(skipped[0].message)
    assert "5 files or folders" in text and str(root) in text
    for part in ("'cat/notes.txt' (not a .jpg/", "'dog/more/' (a folder inside a class",
                 "'emu/6.bmp' (not a .jpg/", "'empty/' (no images", "'fox/' (1 image, all for "
                 "training: left out of testing"):
        assert part in text
    assert ".DS_Store" not in text
    assert data.classes == ["cat", "dog", "emu", "fox"]
    assert str(root / "dog" / "7.webp") in data.train.source.paths + data.test.source.paths


def test_a_train_and_test_tree_warns_once_for_both(tmp_path):
    odd_tree(tmp_path / "mine" / "train")  # 4 things skipped in each tree
    odd_tree(tmp_path / "mine" / "test")
    with pytest.warns(SkippedFilesWarning, match=r"8 files or folders .* 'train/cat/notes.txt'"
                                                 r" .*and 3 more") as caught:
        load("imagefolder", tmp_path / "mine")
    assert len(caught) == 1


def test_a_clean_tree_warns_nothing(tmp_path):
    root = tree(tmp_path / "mine", {"train": 2, "test": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load("imagefolder", root)


# --------------------------------------------------------------------------- npz image sizes


def test_an_npz_image_of_another_size_is_one_error_naming_it(tmp_path):
    odd = [(jpeg_bytes(RED), 0), (jpeg_bytes(GREEN, (48, 32)), 1), (jpeg_bytes(RED), 0)]
    path = write_blobs(tmp_path / "own.npz", ["a", "b"], [(jpeg_bytes(RED), 0)] * 2, odd)
    data = load("npz", None, path=str(path))
    with pytest.raises(DataNotFoundError, match=r"image 1 of the test images of '.*own.npz' is "
                                                r"48x32 pixels, not 32x32 \(the size of the data "
                                                r"set's images\)"):
        data.test.subset(np.arange(3))
    unsized = replace(data.test.source, side=None)  # no stated size: the most common one
    with pytest.raises(DataNotFoundError, match=r"image 1 .* not 32x32 \(the size of most"):
        unsized.decode([0, 1, 2])
    with pytest.raises(DataNotFoundError, match="image 1 .* 48x32"):
        stream_of("data.dataset=npz", f"data.path={str(path)!r}", "data.num_tasks=1")


@pytest.mark.parametrize("split", ["train", "test"])
def test_an_npz_with_an_empty_split_is_one_error_naming_it(tmp_path, split):
    images = {"train": [(jpeg_bytes(RED), 0), (jpeg_bytes(GREEN), 1)],
              "test": [(jpeg_bytes(RED), 0), (jpeg_bytes(GREEN), 1)]}
    images[split] = []
    path = write_blobs(tmp_path / "own.npz", ["a", "b"], images["train"], images["test"])
    with pytest.raises(DataNotFoundError, match=f"'.*own.npz' has no {split} images "
                                                f"\\({split}_labels is empty\\)"):
        load("npz", None, path=str(path))
