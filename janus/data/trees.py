"""Reading image trees ``<class>/<file>``: which files are images, the class folders of a
tree and what it leaves out (one :class:`SkippedFilesWarning` per load), a seeded 80/20 split
of one tree, and ``train/`` + ``test/`` trees. The named data sets of
:mod:`janus.data.folders` and a user's ``imagefolder`` are read through these.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import features

from janus.core.errors import DataNotFoundError
from janus.data.base import FileSource, ImageSet, enumerate_some, missing

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", *((".webp",) if features.check("webp") else ()))
"""The image files a tree is read for (WebP where this Pillow can decode it)."""
EXTENSIONS_TEXT = "/".join(IMAGE_EXTENSIONS)
TRAIN_FRACTION = 0.8

def is_image(path: Path) -> bool:
    """A file name with one of :data:`IMAGE_EXTENSIONS` (any case)."""
    return path.suffix.lower() in IMAGE_EXTENSIONS


class SkippedFilesWarning(UserWarning):
    """Files or folders of an image tree that a data set does not use as the user may expect."""


Skipped = list[tuple[Path, str]]
"""Files or folders of a tree that are not read (or not tested), each with the reason."""


def class_folders(folder: Path, skipped: Skipped | None = None) -> dict[str, list[Path]]:
    """Sorted class-folder name -> its sorted image files; folders without images are left out.

    What is not read is added to ``skipped``: class folders without images, folders inside a
    class folder, files of other types in it, and images outside the class folders (hidden
    files and folders, named ``.*``, are passed over without a word unless they are images).
    """
    noted: Skipped = [] if skipped is None else skipped
    found = {}
    for entry in sorted(folder.iterdir()):
        if not entry.is_dir():
            if entry.is_file() and is_image(entry) and not entry.name.startswith("."):
                noted.append((entry, "an image outside the class folders"))
            continue
        if entry.name.startswith("."):
            continue
        files = []
        for p in sorted(entry.iterdir()):
            if p.is_file() and is_image(p):
                files.append(p)
            elif p.name.startswith("."):
                continue
            elif p.is_dir():
                noted.append((p, "a folder inside a class folder: not read"))
            elif p.is_file():
                noted.append((p, f"not a {EXTENSIONS_TEXT} file"))
        if files:
            found[entry.name] = files
        else:
            noted.append((entry, "no images: not a class"))
    return found


def warn_skipped(name: str, folder: Path, skipped: Skipped) -> None:
    """One :class:`SkippedFilesWarning` naming what the tree under ``folder`` leaves out (the
    count and the first few, with the reason); none if nothing is."""
    if not skipped:
        return

    def shown(path: Path, why: str) -> str:
        relative = path.relative_to(folder).as_posix() + ("/" if path.is_dir() else "")
        return f"{relative!r} ({why})"

    n = len(skipped)
    warnings.warn(SkippedFilesWarning(
        f"data set {name!r}: {n} file{'s' if n > 1 else ''} or folder{'s' if n > 1 else ''} "
        f"under {str(folder)!r} {'are' if n > 1 else 'is'} left out: "
        f"{enumerate_some(shown(*item) for item in skipped)}"
    ), stacklevel=3)


def require_dir(name: str, folder: Path, layout: str) -> Path:
    if not folder.is_dir():
        raise missing(name, folder, layout)
    return folder


def require_files(name: str, paths: Sequence[Path], listed_in: str) -> Sequence[Path]:
    """``paths``, after one error naming how many listed files are absent and the first."""
    absent = [p for p in paths if not p.is_file()]
    if absent:
        raise DataNotFoundError(
            f"data set {name!r}: {len(absent)} of the {len(paths)} images listed in "
            f"{listed_in} are missing, the first is {str(absent[0])!r}"
        )
    return paths


def image_set(paths: Sequence[Path], labels: Iterable[int]) -> ImageSet:
    return ImageSet(FileSource(tuple(str(p) for p in paths)), np.asarray(list(labels), np.int64))


Parts = tuple[list[str], ImageSet, ImageSet]
"""The classes, train and test images of a data set."""


def folder_splits(name: str, folder: Path, layout: str, seed: int) -> Parts:
    """Classes and a seeded 80/20 train/test split of each class folder under ``folder``.

    Each class is split on its own (generator seeded by ``seed`` and the class name), so the
    split of one class does not depend on which other classes are present; ``round(0.8 n)``
    of a class's ``n`` images go to train, the chosen files keep their sorted order.
    """
    skipped: Skipped = []
    per_class = class_folders(folder, skipped)
    if not per_class:
        raise DataNotFoundError(
            f"data set {name!r}: no class folders with images in {str(folder)!r}. "
            f"Expected layout under the data root: {layout}"
        )
    train: tuple[list[Path], list[int]] = ([], [])
    test: tuple[list[Path], list[int]] = ([], [])
    for label, (wnid, files) in enumerate(per_class.items()):
        rng = np.random.default_rng([seed, zlib.crc32(wnid.encode())])
        order = rng.permutation(len(files))
        n_train = round(TRAIN_FRACTION * len(files))
        for part, chosen in ((train, order[:n_train]), (test, order[n_train:])):
            part[0].extend(files[i] for i in np.sort(chosen))
            part[1].extend([label] * len(chosen))
        if n_train == len(files):
            skipped.append((folder / wnid, f"{len(files)} image{'s' if len(files) > 1 else ''}"
                                           ", all for training: left out of testing; the 80/20 "
                                           "split needs 3 to test one"))
    warn_skipped(name, folder, skipped)
    return list(per_class), image_set(*train), image_set(*test)


def train_test_trees(
    name: str, folder: Path, layout: str, test_names: Sequence[str] = ("test", "val")
) -> Parts:
    """Classes and images of ``folder/train`` and of the first of ``folder/<test_names>``
    present (the last when none is), ImageFolder style: the same class folders in both,
    labels in sorted folder-name order."""
    test_name = next((t for t in test_names if (folder / t).is_dir()), test_names[-1])
    skipped: Skipped = []
    trees = [class_folders(require_dir(name, folder / split, layout), skipped)
             for split in ("train", test_name)]
    if not trees[0] or list(trees[0]) != list(trees[1]):
        raise DataNotFoundError(
            f"data set {name!r}: train/ and {test_name}/ under {str(folder)!r} must hold the "
            f"same non-empty class folders (found {len(trees[0])} and {len(trees[1])}, "
            f"differing: {sorted(set(trees[0]) ^ set(trees[1]))[:5]}). Expected: {layout}"
        )
    sets = [
        image_set(
            [f for files in tree.values() for f in files],
            (label for label, files in enumerate(tree.values()) for _ in files),
        )
        for tree in trees
    ]
    warn_skipped(name, folder, skipped)
    return list(trees[0]), sets[0], sets[1]
