"""Full-size photograph data sets read from image files on disk.

ImageNet-R (Hendrycks et al. 2021), ImageNet-A (Hendrycks et al. 2021), ImageNet-100 (an
ImageFolder tree of 100 ImageNet classes), DomainNet (Peng et al. 2019), CUB-200-2011
(Wah et al. 2011) and ``imagefolder`` (a user's own tree). Every loader returns
:class:`FileSource` images (opened lazily) with ``native_size=None``; labels index the class
identifiers in the order of their id.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from janus.core.errors import ConfigError, DataNotFoundError
from janus.data.base import (
    DataConfigLike,
    DatasetSplits,
    Loader,
    missing,
    register_dataset,
)
from janus.data.listfiles import parse_lines, path_tail, yaml_lists
from janus.data.trees import (
    EXTENSIONS_TEXT,
    Parts,
    folder_splits,
    image_set,
    require_dir,
    require_files,
    train_test_trees,
)

DOMAINNET_DOMAINS = ("clipart", "infograph", "painting", "quickdraw", "real", "sketch")

IMAGENET_R_LAYOUT = (
    "imagenet-r/<wnid>/<file>.jpg (the 200 class folders of imagenet-r.tar, image files "
    f"{EXTENSIONS_TEXT}). Optional: imagenet-r/imagenet-r_train.yaml and "
    "imagenet-r/imagenet-r_test.yaml, the standard 24,000/6,000 split lists of the InfLoRA "
    "code base ('data:' paths data/imagenet-r/<wnid>/<file>, 'targets:' ignored); without "
    "them a seeded 80/20 split per class is used (data.split_seed)"
)
IMAGENET_A_LAYOUT = (
    "imagenet-a/<wnid>/<file>.jpg (the 200 class folders of imagenet-a.tar, image files "
    f"{EXTENSIONS_TEXT}); split 80/20 per class with data.split_seed"
)
IMAGENET_100_LAYOUT = (
    "imagenet-100/train/<wnid>/<file> and imagenet-100/val/<wnid>/<file> (ImageFolder "
    f"layout, the same class folders in both, image files {EXTENSIONS_TEXT})"
)
DOMAINNET_LAYOUT = (
    "domainnet/domainnet_train.yaml and domainnet/domainnet_test.yaml (the split of the InfLoRA "
    "and CODA-Prompt code bases, their dataloaders/splits/; 'data:' paths "
    ".../<domain>/<class>/<file>, 'targets:' class indices 0-344; used when present, "
    "data.split=inflora requires them), or domainnet/<domain>_train.txt and "
    "domainnet/<domain>_test.txt (the official split lists, data.split=official) for at least "
    f"one domain of {', '.join(DOMAINNET_DOMAINS)}, each line '<domain>/<class>/<file> <class "
    "index 0-344>'; the images lie at domainnet/<domain>/<class>/<file> (unpack <domain>.zip "
    "inside domainnet/)"
)
SPLITS = ("auto", "inflora", "official")
IMAGEFOLDER_LAYOUT = (
    "the data root is the tree itself: <root>/train/<class>/<file> and <root>/test/<class>/<file> "
    "(or val/ for test/; the same class folders in both), or one tree <root>/<class>/<file> "
    f"split 80/20 per class with data.split_seed; image files {EXTENSIONS_TEXT}, classes in "
    "sorted folder-name order"
)
CUB_LAYOUT = (
    "CUB_200_2011/ as unpacked from CUB_200_2011.tgz: images.txt ('<id> <path>'), "
    "image_class_labels.txt ('<id> <class id 1-200>'), train_test_split.txt ('<id> <1 if "
    "train else 0>'), classes.txt ('<class id> <name>') and the images at "
    "CUB_200_2011/images/<path>"
)


def photo_dataset(
    name: str, subfolder: str, layout: str, description: str
) -> Callable[[Callable[[DataConfigLike, Path], Parts]], Loader]:
    """Register the photograph data set ``name`` read from ``<root>/<subfolder>``: the
    decorated ``read(cfg, folder) -> (classes, train, test)`` gets that folder once it is
    known to exist, and the loader it becomes returns the :class:`DatasetSplits`."""

    def wrap(read: Callable[[DataConfigLike, Path], Parts]) -> Loader:
        def load(cfg: DataConfigLike, root: Path | None) -> DatasetSplits:
            assert root is not None
            classes, train, test = read(cfg, require_dir(cfg.dataset, root / subfolder, layout))
            return DatasetSplits(cfg.dataset, classes, train, test)

        load.__name__, load.__qualname__ = read.__name__, read.__qualname__
        load.__doc__ = read.__doc__
        return register_dataset(name, description=description, expected_layout=layout,
                                photographs=True)(load)

    return wrap


# --------------------------------------------------------------------------- ImageNet-R


def read_imagenet_r_list(path: Path) -> list[str]:
    """The ``<wnid>/<file>`` entries of a standard ImageNet-R split list (a yaml file).

    The list's ``data:`` paths look like ``data/imagenet-r/<wnid>/<file>.jpg``; only their
    last two components are kept. Its ``targets:`` are ignored: they number the classes in a
    different (arbitrary) order, while janus labels are indices into the sorted wnids.
    """
    (entries,) = yaml_lists(path, "data")
    if entries is None:
        raise DataNotFoundError(f"{str(path)!r} has no 'data:' list of image paths")
    relative = []
    for entry in entries:
        tail = path_tail(entry, 2)
        if tail is None:
            raise DataNotFoundError(
                f"{str(path)!r}: entry {entry!r} is not of the form data/imagenet-r/<wnid>/<file>"
            )
        relative.append(tail)
    return relative


@photo_dataset("imagenet-r", "imagenet-r", IMAGENET_R_LAYOUT,
               "ImageNet-R, 200 classes of renditions (art, cartoons, sketches, ...)")
def load_imagenet_r(cfg: DataConfigLike, folder: Path) -> Parts:
    """ImageNet-R (Hendrycks et al., "The Many Faces of Robustness", 2021).

    With ``imagenet-r_{train,test}.yaml`` in the folder, the standard split of the InfLoRA
    code base and Mammoth is used; the yaml ``targets`` are ignored (they are a different
    permutation of the classes): labels are indices into the sorted wnids of the lists.
    Without the lists, each class folder is split 80/20 with ``cfg.split_seed``.
    """
    lists = [folder / f"imagenet-r_{split}.yaml" for split in ("train", "test")]
    present = [p.is_file() for p in lists]
    if not any(present):
        return folder_splits(cfg.dataset, folder, IMAGENET_R_LAYOUT, cfg.split_seed)
    if not all(present):
        raise DataNotFoundError(
            f"data set {cfg.dataset!r}: {str(lists[present.index(False)])!r} is missing; "
            "give both split lists (standard split) or neither (seeded 80/20 split)"
        )
    entries = [read_imagenet_r_list(p) for p in lists]
    classes = sorted({e.split("/")[0] for split in entries for e in split})
    index = {wnid: i for i, wnid in enumerate(classes)}
    train, test = (
        image_set(require_files(cfg.dataset, [folder / e for e in split], repr(str(path))),
                  (index[e.split("/")[0]] for e in split))
        for path, split in zip(lists, entries, strict=True)
    )
    return classes, train, test


# --------------------------------------------------------------------------- ImageNet-A


@photo_dataset("imagenet-a", "imagenet-a", IMAGENET_A_LAYOUT,
               "ImageNet-A, 200 classes of natural adversarial examples (seeded 80/20 split)")
def load_imagenet_a(cfg: DataConfigLike, folder: Path) -> Parts:
    """ImageNet-A (Hendrycks et al., "Natural Adversarial Examples", 2021), split 80/20 per
    class with ``cfg.split_seed`` (it has no official train/test split)."""
    return folder_splits(cfg.dataset, folder, IMAGENET_A_LAYOUT, cfg.split_seed)


# --------------------------------------------------------------------------- ImageNet-100


@photo_dataset("imagenet-100", "imagenet-100", IMAGENET_100_LAYOUT,
               "ImageNet-100, 100 ImageNet classes in an ImageFolder tree (train/val)")
def load_imagenet_100(cfg: DataConfigLike, folder: Path) -> Parts:
    """ImageNet-100: a 100-class ImageNet subset with its train and val images as folders."""
    return train_test_trees(cfg.dataset, folder, IMAGENET_100_LAYOUT, ("val",))


# --------------------------------------------------------------------------- own trees


@photo_dataset("imagefolder", "", IMAGEFOLDER_LAYOUT,
               "your own images: an ImageFolder tree at the data root")
def load_imagefolder(cfg: DataConfigLike, root: Path) -> Parts:
    """A user's ImageFolder tree: with a ``train/`` folder, ``train/`` and ``test/`` (or
    ``val/``) are the splits; otherwise every class folder is split 80/20 with
    ``cfg.split_seed`` (as :func:`folder_splits`)."""
    if (root / "train").is_dir():
        return train_test_trees(cfg.dataset, root, IMAGEFOLDER_LAYOUT)
    return folder_splits(cfg.dataset, root, IMAGEFOLDER_LAYOUT, cfg.split_seed)


# --------------------------------------------------------------------------- DomainNet


def read_domainnet_list(path: Path) -> list[tuple[str, int]]:
    """The ``(relative path, class index)`` lines of an official DomainNet split list."""

    def parse(line: str) -> tuple[str, int] | None:
        fields = line.rsplit(maxsplit=1)
        if len(fields) != 2 or not fields[1].isdigit() or len(fields[0].split("/")) != 3:
            return None
        return fields[0], int(fields[1])

    return parse_lines(path, "<domain>/<class>/<file> <index>", parse)


def read_domainnet_yaml(path: Path) -> list[tuple[str, int]]:
    """The ``(<domain>/<class>/<file>, class index)`` entries of an InfLoRA / CODA-Prompt
    ``domainnet_{train,test}.yaml`` (``data:`` paths, of which the last three components are
    kept, and ``targets:``)."""
    data, targets = yaml_lists(path, "data", "targets")
    if data is None or targets is None or len(data) != len(targets):
        raise DataNotFoundError(f"{str(path)!r} needs 'data:' (image paths) and 'targets:' "
                                f"(class indices) lists of the same length")
    rows = []
    for entry, target in zip(data, targets, strict=True):
        tail = path_tail(entry, 3)
        if tail is None or not isinstance(target, int):
            raise DataNotFoundError(f"{str(path)!r}: entry {entry!r} (target {target!r}) is not "
                                    f".../<domain>/<class>/<file> with an integer target")
        rows.append((tail, target))
    return rows


def official_domainnet_lists(name: str, folder: Path) -> list[list[Path]]:
    """The ``[<domain>_train.txt, <domain>_test.txt]`` pairs present, in domain order."""
    found = []
    for domain in DOMAINNET_DOMAINS:
        pair = [folder / f"{domain}_{split}.txt" for split in ("train", "test")]
        if any(p.is_file() for p in pair):
            if not all(p.is_file() for p in pair):
                absent = next(p for p in pair if not p.is_file())
                raise DataNotFoundError(
                    f"data set {name!r}: {str(absent)!r} is missing (each domain "
                    f"needs both lists). Expected layout under the data root: {DOMAINNET_LAYOUT}"
                )
            found.append(pair)
    if not found:
        raise missing(name, folder / "<domain>_train.txt", DOMAINNET_LAYOUT)
    return found


@photo_dataset("domainnet", "domainnet", DOMAINNET_LAYOUT,
               "DomainNet, 345 classes in six domains (InfLoRA's yaml split, or the official "
               "lists)")
def load_domainnet(cfg: DataConfigLike, folder: Path) -> Parts:
    """DomainNet (Peng et al., "Moment Matching for Multi-Source Domain Adaptation", 2019).

    With ``domainnet_{train,test}.yaml`` (the split InfLoRA and CODA-Prompt use for their
    5 x 69-class DomainNet tables, ``data.split`` auto or inflora) those lists are read. With
    the official ``<domain>_{train,test}.txt`` lists (``data.split=official``, or auto without
    the yaml files) the images of every domain whose two list files are present are pooled
    (domains in the order clipart, infograph, painting, quickdraw, real, sketch). Labels are
    the lists' class indices (InfLoRA's class order is theirs: ``data.class_order=sorted``);
    class names come from the folder in each path.
    """
    if cfg.split not in SPLITS:
        raise ConfigError(f"data.split must be one of {', '.join(SPLITS)} for {cfg.dataset!r}, "
                          f"got {cfg.split!r}")
    yamls = [folder / f"domainnet_{split}.yaml" for split in ("train", "test")]
    if cfg.split == "inflora" or (cfg.split == "auto" and any(p.is_file() for p in yamls)):
        for p in yamls:
            if not p.is_file():
                raise missing(cfg.dataset, p, DOMAINNET_LAYOUT)
        found, rows = [yamls], [[read_domainnet_yaml(p) for p in yamls]]
    else:
        found = official_domainnet_lists(cfg.dataset, folder)
        rows = [[read_domainnet_list(p) for p in pair] for pair in found]
    names: dict[int, str] = {}
    for pair, lists in zip(found, rows, strict=True):
        for path, entries in zip(pair, lists, strict=True):
            for relative, label in entries:
                name = relative.split("/")[1]
                if names.setdefault(label, name) != name:
                    raise DataNotFoundError(
                        f"data set {cfg.dataset!r}: {str(path)!r} gives class index {label} "
                        f"to {name!r}, but another line gives it to {names[label]!r}"
                    )
    count = len(names)
    if not count or set(names) != set(range(count)) or len(set(names.values())) != count:
        raise DataNotFoundError(
            f"data set {cfg.dataset!r}: the class indices in the lists under {str(folder)!r} "
            f"must number each class folder once, from 0 without gaps (found {count} "
            f"indices up to {max(names, default=-1)} for {len(set(names.values()))} folders)"
        )
    classes = [names[i] for i in range(count)]
    pooled = [[row for lists in rows for row in lists[k]] for k in (0, 1)]
    train, test = (
        image_set(require_files(cfg.dataset, [folder / rel for rel, _ in entries],
                                f"the {split} lists"), (label for _, label in entries))
        for split, entries in zip(("train", "test"), pooled, strict=True)
    )
    return classes, train, test


# --------------------------------------------------------------------------- CUB-200-2011


def read_id_table(path: Path, name: str) -> dict[int, str]:
    """A CUB metadata file of ``<integer id> <value>`` lines."""
    if not path.is_file():
        raise missing(name, path, CUB_LAYOUT)

    def parse(line: str) -> tuple[int, str] | None:
        fields = line.split(maxsplit=1)
        if len(fields) != 2 or not fields[0].isdigit():
            return None
        return int(fields[0]), fields[1].strip()

    return dict(parse_lines(path, "<id> <value>", parse))


@photo_dataset("cub200", "CUB_200_2011", CUB_LAYOUT,
               "CUB-200-2011, 200 bird species (official train/test split)")
def load_cub200(cfg: DataConfigLike, folder: Path) -> Parts:
    """Caltech-UCSD Birds-200-2011 (Wah et al. 2011) with its official train/test split.

    Labels are the 1-based class ids of ``classes.txt`` minus one; classes are its names
    (e.g. ``001.Black_footed_Albatross``).
    """
    tables = [
        read_id_table(folder / f, cfg.dataset)
        for f in ("images.txt", "image_class_labels.txt", "train_test_split.txt", "classes.txt")
    ]
    images, image_class, is_train, class_names = tables
    if set(images) != set(image_class) or set(images) != set(is_train):
        raise DataNotFoundError(
            f"data set {cfg.dataset!r}: images.txt, image_class_labels.txt and "
            f"train_test_split.txt under {str(folder)!r} must list the same image ids"
        )
    if sorted(class_names) != list(range(1, len(class_names) + 1)):
        raise DataNotFoundError(
            f"data set {cfg.dataset!r}: classes.txt must number the classes 1 to "
            f"{len(class_names)} without gaps"
        )
    bad = [v for v in image_class.values() if not v.isdigit() or int(v) not in class_names]
    bad += [v for v in is_train.values() if v not in ("0", "1")]
    if bad:
        raise DataNotFoundError(
            f"data set {cfg.dataset!r}: unknown class id or train flag {bad[0]!r} in "
            f"image_class_labels.txt / train_test_split.txt under {str(folder)!r}"
        )
    classes = [class_names[i] for i in range(1, len(class_names) + 1)]
    ids = sorted(images)
    files = [folder / "images" / images[i] for i in ids]
    require_files(cfg.dataset, files, repr(str(folder / "images.txt")))
    chosen = [[k for k, i in enumerate(ids) if is_train[i] == flag] for flag in ("1", "0")]
    train, test = (
        image_set([files[k] for k in part], (int(image_class[ids[k]]) - 1 for k in part))
        for part in chosen
    )
    return classes, train, test
