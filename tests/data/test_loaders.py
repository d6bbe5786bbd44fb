"""The real-data loaders on small fake trees, plus the shared reference files when present."""

from __future__ import annotations

import io
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

import janus.data  # noqa: F401  (registers the data sets)
from janus.core.config import DataConfig
from janus.core.errors import DataNotFoundError
from janus.data.base import (
    DATASETS,
    ArraySource,
    DatasetSplits,
    FileSource,
    ImageSet,
    JpegBlobSource,
    load_dataset,
)
from janus.data.folders import read_imagenet_r_list
from janus.data.trees import SkippedFilesWarning

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
RED, GREEN, BLUE = (200, 30, 40), (20, 180, 60), (30, 40, 210)


def load(name: str, root: Path, seed: int = 0) -> DatasetSplits:
    return load_dataset(DataConfig(dataset=name, split_seed=seed), root)


def write_image(path: Path, colour: tuple[int, int, int] = RED, size: int = 8) -> Path:
    """A solid-colour image; the format follows the suffix (PNG is lossless)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "PNG" if path.suffix.lower() == ".png" else "JPEG"
    Image.new("RGB", (size, size), colour).save(path, format=fmt)
    return path


def paths(images: ImageSet) -> list[str]:
    assert isinstance(images.source, FileSource)
    return list(images.source.paths)


def label_of(images: ImageSet, path: Path) -> int:
    return int(images.labels[paths(images).index(str(path))])


def pixels(images: ImageSet, i: int) -> np.ndarray:
    return np.asarray(images.image(i))


def assert_splits(
    data: DatasetSplits, classes: list[str], train_files: list[Path], labels: list[list[int]]
) -> None:
    """``data`` has these classes, train image files and train and test labels."""
    assert data.classes == classes
    assert paths(data.train) == [str(f) for f in train_files]
    assert data.train.labels.tolist() == labels[0] and data.test.labels.tolist() == labels[1]


# --------------------------------------------------------------------------- common errors


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("mini-imagenet-32", "mini-imagenet-32.npz"),
        ("tiny-imagenet-32", "tiny-imagenet-32-disjoint.npz"),
        ("imagenet-r", "imagenet-r"),
        ("imagenet-a", "imagenet-a"),
        ("imagenet-100", "imagenet-100"),
        ("domainnet", "domainnet"),
        ("cub200", "CUB_200_2011"),
        ("cifar100", "cifar-100-python"),
    ],
)
def test_missing_data_names_the_path_and_layout(tmp_path: Path, name: str, expected: str) -> None:
    with pytest.raises(DataNotFoundError, match=f"{expected}' not found. Expected layout"):
        load(name, tmp_path)
    with pytest.raises(DataNotFoundError, match="is not a directory"):
        load(name, tmp_path / "absent")
    assert DATASETS[name].expected_layout in str(
        pytest.raises(DataNotFoundError, load, name, tmp_path).value
    )


def test_missing_root_says_how_to_set_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JANUS_DATA", raising=False)
    with pytest.raises(DataNotFoundError, match="needs a data root.*imagenet-r/<wnid>"):
        load_dataset(DataConfig(dataset="imagenet-r"), None)


# --------------------------------------------------------------------------- npz


def jpeg_bytes(colour: tuple[int, int, int], size: tuple[int, int] = (32, 32)) -> bytes:
    """A solid-colour JPEG of ``size`` (width, height)."""
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def blob_arrays(classes: list[str],
                splits: dict[str, list[tuple[bytes, int]]]) -> dict[str, np.ndarray]:
    """The arrays of a JPEG-blob ``.npz``: per split, its (encoded image, label) pairs."""
    arrays: dict[str, np.ndarray] = {"classes": np.array(classes)}
    for split, items in splits.items():
        blobs = [b for b, _ in items]
        arrays[f"{split}_jpeg"] = np.frombuffer(b"".join(blobs), dtype=np.uint8)
        arrays[f"{split}_offsets"] = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
        arrays[f"{split}_labels"] = np.array([y for _, y in items], dtype=np.int16)
    return arrays


def write_npz(path: Path, drop: tuple[str, ...] = ()) -> None:
    """Two classes; train: RED, RED, GREEN (labels 0 0 1); test: GREEN, RED (labels 1 0)."""
    arrays = blob_arrays(["n0002", "n0001"], {
        "train": [(jpeg_bytes(RED), 0), (jpeg_bytes(RED), 0), (jpeg_bytes(GREEN), 1)],
        "test": [(jpeg_bytes(GREEN), 1), (jpeg_bytes(RED), 0)],
    })
    np.savez(path, **{k: v for k, v in arrays.items() if k not in drop})


@pytest.mark.parametrize(
    ("name", "filename"),
    [
        ("mini-imagenet-32", "mini-imagenet-32.npz"),
        ("tiny-imagenet-32", "tiny-imagenet-32-disjoint.npz"),
    ],
)
def test_npz_loader(tmp_path: Path, name: str, filename: str) -> None:
    write_npz(tmp_path / filename)
    data = load(name, tmp_path)
    assert (data.name, data.classes, data.native_size) == (name, ["n0002", "n0001"], 32)
    assert isinstance(data.train.source, JpegBlobSource)
    assert data.train.labels.dtype == np.int64
    assert data.train.labels.tolist() == [0, 0, 1] and data.test.labels.tolist() == [1, 0]
    assert np.abs(pixels(data.test, 0).astype(int) - GREEN).max() <= 3
    part = data.train.subset(np.array([2, 0]))
    assert isinstance(part.source, ArraySource) and part.labels.tolist() == [1, 0]
    assert np.abs(part.source.pixels[0].astype(int) - GREEN).max() <= 3


def test_npz_missing_keys(tmp_path: Path) -> None:
    write_npz(tmp_path / "mini-imagenet-32.npz", drop=("test_labels", "classes"))
    with pytest.raises(DataNotFoundError, match="lacks the keys classes, test_labels"):
        load("mini-imagenet-32", tmp_path)


def test_real_mini_imagenet_32() -> None:
    if not (SHARED / "mini-imagenet-32.npz").is_file():
        pytest.skip(f"shared reference file {SHARED / 'mini-imagenet-32.npz'} is absent")
    data = load("mini-imagenet-32", SHARED)
    assert len(data.classes) == 100 and data.classes[0] == "n01532829"
    assert (len(data.train), len(data.test)) == (50_000, 10_000)
    first = pixels(data.train, 0)
    assert first.shape == (32, 32, 3) and first.dtype == np.uint8
    chosen = np.flatnonzero(np.isin(data.test.labels, [3, 7]))
    part = data.test.subset(chosen)
    assert isinstance(part.source, ArraySource) and len(part.source) == len(chosen) == 200
    assert sorted(set(part.labels.tolist())) == [3, 7]


# --------------------------------------------------------------------------- ImageNet-R / -A


def write_class_tree(folder: Path, per_class: int = 10) -> None:
    """Classes n03, n01, n02 (made in that order); n01/img_02.png is RED, the other images
    GREEN, with mixed-case extensions; plus files and folders that must be ignored."""
    for wnid in ("n03", "n01", "n02"):
        for i in range(per_class):
            suffix = (".jpg", ".JPEG", ".png")[i % 3]
            write_image(folder / wnid / f"img_{i:02d}{suffix}", GREEN)
        (folder / wnid / "notes.txt").write_text("not an image")
    write_image(folder / "n01" / "img_02.png", RED)
    (folder / "empty").mkdir()


@pytest.mark.parametrize("name", ["imagenet-r", "imagenet-a"])
@pytest.mark.filterwarnings("ignore::janus.data.trees.SkippedFilesWarning")
def test_seeded_folder_split(tmp_path: Path, name: str) -> None:
    write_class_tree(tmp_path / name)
    with pytest.warns(SkippedFilesWarning, match=r"4 files or folders .* 'empty/' \(no images"):
        data = load(name, tmp_path)
    assert data.classes == ["n01", "n02", "n03"] and data.native_size is None
    assert (len(data.train), len(data.test)) == (24, 6)
    for images in (data.train, data.test):
        assert np.bincount(images.labels).tolist() == [len(images) // 3] * 3
        assert all(
            Path(p).parent.name == data.classes[y]
            for p, y in zip(paths(images), images.labels, strict=True)
        )
    red = tmp_path / name / "n01" / "img_02.png"
    where = data.train if str(red) in paths(data.train) else data.test
    assert label_of(where, red) == 0
    assert (pixels(where, paths(where).index(str(red))) == RED).all()
    assert set(paths(data.train)).isdisjoint(paths(data.test))

    again, other = load(name, tmp_path, seed=0), load(name, tmp_path, seed=1)
    assert paths(again.test) == paths(data.test) and paths(again.train) == paths(data.train)
    assert paths(other.test) != paths(data.test)
    assert set(paths(other.test)) | set(paths(other.train)) == set(paths(data.test)) | set(
        paths(data.train)
    )


def test_folder_without_classes(tmp_path: Path) -> None:
    (tmp_path / "imagenet-a" / "n01").mkdir(parents=True)
    with pytest.raises(DataNotFoundError, match="no class folders with images"):
        load("imagenet-a", tmp_path)


def write_split_list(path: Path, entries: list[str], targets: list[int]) -> None:
    path.write_text(yaml.safe_dump({"data": entries, "targets": targets}))


def test_imagenet_r_standard_split(tmp_path: Path) -> None:
    folder = tmp_path / "imagenet-r"
    write_image(folder / "n02" / "a.jpg")
    write_image(folder / "n02" / "b.jpg")
    write_image(folder / "n01" / "c.png", BLUE)
    write_image(folder / "n03" / "d.jpg")
    write_image(folder / "n03" / "unlisted.jpg")
    write_split_list(
        folder / "imagenet-r_train.yaml",
        ["data/imagenet-r/n02/b.jpg", "data/imagenet-r/n01/c.png", "data/imagenet-r/n03/d.jpg"],
        [7, 5, 9],
    )
    write_split_list(folder / "imagenet-r_test.yaml", ["data/imagenet-r/n02/a.jpg"], [7])
    data = load("imagenet-r", tmp_path)
    assert data.classes == ["n01", "n02", "n03"]
    assert paths(data.train) == [str(folder / e) for e in ("n02/b.jpg", "n01/c.png", "n03/d.jpg")]
    assert data.train.labels.tolist() == [1, 0, 2]  # sorted-wnid order, not the yaml targets
    assert paths(data.test) == [str(folder / "n02" / "a.jpg")] and data.test.labels.tolist() == [1]
    assert (pixels(data.train, 1) == BLUE).all()
    assert paths(load("imagenet-r", tmp_path, seed=5).train) == paths(data.train)


def test_imagenet_r_list_errors(tmp_path: Path) -> None:
    folder = tmp_path / "imagenet-r"
    write_image(folder / "n01" / "a.jpg")
    train = ["data/imagenet-r/n01/a.jpg", "data/imagenet-r/n01/x.jpg", "data/imagenet-r/n02/y.jpg"]
    write_split_list(folder / "imagenet-r_train.yaml", train, [0, 0, 1])
    with pytest.raises(DataNotFoundError, match="imagenet-r_test.yaml' is missing; give both"):
        load("imagenet-r", tmp_path)
    write_split_list(folder / "imagenet-r_test.yaml", ["data/imagenet-r/n01/a.jpg"], [0])
    with pytest.raises(DataNotFoundError, match=r"2 of the 3 images .* the first is .*n01/x\.jpg"):
        load("imagenet-r", tmp_path)


def test_real_imagenet_r_split_lists(tmp_path: Path) -> None:
    split = SHARED / "imagenet-r-split"
    if not (split / "imagenet-r_train.yaml").is_file():
        pytest.skip(f"shared ImageNet-R split lists are absent from {split}")
    train = read_imagenet_r_list(split / "imagenet-r_train.yaml")
    test = read_imagenet_r_list(split / "imagenet-r_test.yaml")
    assert (len(train), len(test)) == (24_000, 6_000)
    assert train[0] == "n02128757/sculpture_4.jpg" and set(train).isdisjoint(test)
    assert len({e.split("/")[0] for e in train}) == len({e.split("/")[0] for e in test}) == 200

    folder = tmp_path / "imagenet-r"  # the real lists end to end, over empty placeholder files
    for entry in train + test:
        (folder / entry).parent.mkdir(parents=True, exist_ok=True)
        (folder / entry).touch()
    for name in ("imagenet-r_train.yaml", "imagenet-r_test.yaml"):
        shutil.copy(split / name, folder / name)
    data = load("imagenet-r", tmp_path)
    assert len(data.classes) == 200 and data.classes == sorted(data.classes)
    assert (len(data.train), len(data.test)) == (24_000, 6_000)
    assert data.train.labels[0] == data.classes.index("n02128757")


# --------------------------------------------------------------------------- ImageNet-100


def test_imagenet_100(tmp_path: Path) -> None:
    folder = tmp_path / "imagenet-100"
    for split, count in (("train", 3), ("val", 1)):
        for wnid in ("n09", "n05"):
            for i in range(count):
                write_image(folder / split / wnid / f"{split}_{i}.JPEG", GREEN)
    write_image(folder / "val" / "n09" / "val_red.png", RED)
    data = load("imagenet-100", tmp_path)
    assert data.classes == ["n05", "n09"] and data.native_size is None
    assert (len(data.train), len(data.test)) == (6, 3)
    assert data.train.labels.tolist() == [0, 0, 0, 1, 1, 1]
    red = folder / "val" / "n09" / "val_red.png"
    assert label_of(data.test, red) == 1
    assert (pixels(data.test, paths(data.test).index(str(red))) == RED).all()

    write_image(folder / "val" / "n07" / "extra.jpg")
    with pytest.raises(DataNotFoundError, match=r"same non-empty class folders.*\['n07'\]"):
        load("imagenet-100", tmp_path)
    shutil.rmtree(folder / "val")
    with pytest.raises(DataNotFoundError, match="imagenet-100/val' not found"):
        load("imagenet-100", tmp_path)


# --------------------------------------------------------------------------- DomainNet


def write_domainnet(folder: Path) -> None:
    """clipart and sketch lists over classes 0 aircraft_carrier, 1 airplane, 2 zebra."""
    rows = {
        "clipart_train": [("aircraft_carrier", "c1.jpg", 0), ("zebra", "c2.jpg", 2)],
        "clipart_test": [("airplane", "c3.png", 1)],
        "sketch_train": [("airplane", "s1.jpg", 1)],
        "sketch_test": [("zebra", "s2.jpg", 2), ("aircraft_carrier", "s3.jpg", 0)],
    }
    for name, entries in rows.items():
        domain = name.split("_")[0]
        lines = [f"{domain}/{cls}/{file} {label}" for cls, file, label in entries]
        (folder / f"{name}.txt").parent.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.txt").write_text("\n".join(lines) + "\n")
        for cls, file, _ in entries:
            write_image(folder / domain / cls / file, BLUE if file == "c3.png" else GREEN)


def test_domainnet(tmp_path: Path) -> None:
    folder = tmp_path / "domainnet"
    write_domainnet(folder)
    data = load("domainnet", tmp_path)
    train = ["clipart/aircraft_carrier/c1.jpg", "clipart/zebra/c2.jpg", "sketch/airplane/s1.jpg"]
    assert_splits(data, ["aircraft_carrier", "airplane", "zebra"], [folder / p for p in train],
                  [[0, 2, 1], [1, 2, 0]])
    assert (pixels(data.test, 0) == BLUE).all()


def write_domainnet_yaml(folder: Path) -> None:
    """InfLoRA-style lists (paths under data/DomainNet/) over the images of write_domainnet,
    numbering the classes differently: 0 zebra, 1 airplane, 2 aircraft_carrier."""
    lists = {
        "train": [("clipart/zebra/c2.jpg", 0), ("sketch/airplane/s1.jpg", 1)],
        "test": [("sketch/aircraft_carrier/s3.jpg", 2), ("clipart/airplane/c3.png", 1)],
    }
    for split, entries in lists.items():
        content = {"data": [f"data/DomainNet/{p}" for p, _ in entries],
                   "targets": [t for _, t in entries]}
        (folder / f"domainnet_{split}.yaml").write_text(yaml.safe_dump(content))


def test_domainnet_reads_the_inflora_yaml_split_when_present(tmp_path: Path) -> None:
    folder = tmp_path / "domainnet"
    write_domainnet(folder)
    write_domainnet_yaml(folder)
    data = load("domainnet", tmp_path)
    assert data.classes == ["zebra", "airplane", "aircraft_carrier"]  # the yaml's numbering
    assert paths(data.train) == [str(folder / "clipart/zebra/c2.jpg"),
                                 str(folder / "sketch/airplane/s1.jpg")]
    assert data.test.labels.tolist() == [2, 1]
    official = load_dataset(DataConfig(dataset="domainnet", split="official"), tmp_path)
    assert official.classes == ["aircraft_carrier", "airplane", "zebra"]
    assert len(official.train) == 3
    (folder / "domainnet_test.yaml").unlink()
    with pytest.raises(DataNotFoundError, match="domainnet_test.yaml' not found"):
        load("domainnet", tmp_path)
    (folder / "domainnet_train.yaml").unlink()
    assert len(load("domainnet", tmp_path).train) == 3  # auto: the official lists
    with pytest.raises(DataNotFoundError, match="domainnet_train.yaml' not found"):
        load_dataset(DataConfig(dataset="domainnet", split="inflora"), tmp_path)
    write_domainnet_yaml(folder)
    (folder / "domainnet_train.yaml").write_text("data: [a/b/c.jpg]\ntargets: []\n")
    with pytest.raises(DataNotFoundError, match="same length"):
        load_dataset(DataConfig(dataset="domainnet", split="inflora"), tmp_path)


def test_domainnet_errors(tmp_path: Path) -> None:
    folder = tmp_path / "domainnet"
    folder.mkdir()
    with pytest.raises(DataNotFoundError, match="<domain>_train.txt' not found"):
        load("domainnet", tmp_path)
    write_domainnet(folder)
    (folder / "real_train.txt").write_text("real/zebra/r1.jpg 2\n")
    with pytest.raises(DataNotFoundError, match="real_test.txt' is missing"):
        load("domainnet", tmp_path)


@pytest.mark.parametrize(
    ("real_test", "error"),
    [
        ("real/zebra/r2.jpg 1", "gives class index 1 to 'zebra'.*'airplane'"),
        ("real/horse/r2.jpg 4", "without gaps"),
        ("real/zebra/r2.jpg", "line 1: 'real/zebra/r2.jpg' is not"),
        ("real/zebra/r2.jpg 2", r"1 of the 4 images listed in the train lists"),
    ],
)
def test_domainnet_list_errors(tmp_path: Path, real_test: str, error: str) -> None:
    """A third domain whose train list names an absent image, and a faulty test list."""
    folder = tmp_path / "domainnet"
    write_domainnet(folder)
    (folder / "real_train.txt").write_text("real/zebra/r1.jpg 2\n")
    (folder / "real_test.txt").write_text(real_test + "\n")
    with pytest.raises(DataNotFoundError, match=error):
        load("domainnet", tmp_path)


# --------------------------------------------------------------------------- CUB-200-2011


def write_cub(folder: Path) -> None:
    """Five images of classes 1-3; ids 1, 3, 4 train and 2, 5 test; image 4 is a RED png."""
    classes = ["001.Albatross", "002.Auklet", "003.Blackbird"]
    images = [
        (1, "001.Albatross/a1.jpg", 1, 1),
        (2, "001.Albatross/a2.jpg", 1, 0),
        (3, "002.Auklet/b1.jpg", 2, 1),
        (4, "003.Blackbird/c1.png", 3, 1),
        (5, "003.Blackbird/c2.jpg", 3, 0),
    ]
    folder.mkdir(parents=True)
    (folder / "classes.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(classes)))
    (folder / "images.txt").write_text("".join(f"{i} {p}\n" for i, p, _, _ in images))
    (folder / "image_class_labels.txt").write_text("".join(f"{i} {c}\n" for i, _, c, _ in images))
    (folder / "train_test_split.txt").write_text("".join(f"{i} {t}\n" for i, _, _, t in images))
    for i, path, _, _ in images:
        write_image(folder / "images" / path, RED if i == 4 else GREEN)


def test_cub200(tmp_path: Path) -> None:
    folder = tmp_path / "CUB_200_2011"
    write_cub(folder)
    data = load("cub200", tmp_path)
    train = ("001.Albatross/a1.jpg", "002.Auklet/b1.jpg", "003.Blackbird/c1.png")
    assert_splits(data, ["001.Albatross", "002.Auklet", "003.Blackbird"],
                  [folder / "images" / p for p in train], [[0, 1, 2], [0, 2]])
    assert (pixels(data.train, 2) == RED).all() and data.native_size is None


def test_cub200_errors(tmp_path: Path) -> None:
    folder = tmp_path / "CUB_200_2011"
    write_cub(folder)
    (folder / "images" / "002.Auklet" / "b1.jpg").unlink()
    with pytest.raises(DataNotFoundError, match=r"1 of the 5 images .* first is .*b1\.jpg"):
        load("cub200", tmp_path)
    (folder / "classes.txt").unlink()
    with pytest.raises(DataNotFoundError, match="classes.txt' not found"):
        load("cub200", tmp_path)


# --------------------------------------------------------------------------- CIFAR-100


def write_cifar(folder: Path) -> None:
    """Two classes; train image 1 has R=255, G=0, B=128 everywhere (CHW planes on disk)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, size=(4, 3072), dtype=np.uint8)
    train[1] = np.repeat(np.array([255, 0, 128], dtype=np.uint8), 1024)
    content = {"data": train, "fine_labels": [0, 1, 1, 0], "coarse_labels": [0, 0, 0, 0]}
    # protocol 2 with the numpy 1 module name, like the Python 2 era files torchvision fetches
    raw = pickle.dumps(content, protocol=2).replace(
        b"numpy._core.multiarray", b"numpy.core.multiarray"
    )
    (folder / "train").write_bytes(raw)
    test = {"data": rng.integers(0, 256, size=(2, 3072), dtype=np.uint8), "fine_labels": [1, 0]}
    (folder / "test").write_bytes(pickle.dumps(test))
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": ["apple", "bear"]}))


def test_cifar100(tmp_path: Path) -> None:
    write_cifar(tmp_path / "cifar-100-python")
    data = load("cifar100", tmp_path)
    assert data.classes == ["apple", "bear"] and data.native_size == 32
    assert isinstance(data.train.source, ArraySource)
    assert data.train.source.pixels.shape == (4, 32, 32, 3)
    assert data.train.labels.tolist() == [0, 1, 1, 0] and data.test.labels.tolist() == [1, 0]
    assert (pixels(data.train, 1) == (255, 0, 128)).all()


def test_cifar100_errors(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-python"
    with pytest.raises(DataNotFoundError, match=r"torchvision\.datasets\.CIFAR100\('DIR'"):
        load("cifar100", tmp_path)
    write_cifar(folder)
    (folder / "test").unlink()
    with pytest.raises(DataNotFoundError, match="cifar-100-python/test' not found"):
        load("cifar100", tmp_path)
    (folder / "test").write_bytes(pickle.dumps({"data": print}))
    with pytest.raises(DataNotFoundError, match="refusing to load builtins.print"):
        load("cifar100", tmp_path)
