"""Users' own data without code: ``imagefolder`` trees and ``npz`` files, what identifies the
data in a record (class-list and split digests), and clear errors for broken files."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from janus.cli import main
from janus.core.config import DataConfig
from janus.core.errors import ConfigError, DataNotFoundError
from janus.data.base import load_dataset
from janus.data.fingerprint import data_fingerprint
from tests.data.test_loaders import SHARED, write_npz

COLOURS = {"cat": (200, 30, 40), "dog": (20, 180, 60), "emu": (30, 40, 210), "fox": (90, 90, 9)}


def tree(root: Path, splits: dict[str, int], size: int = 40) -> Path:
    """``root/<split>/<class>/<i>.png`` (``split`` "" for one tree), noisy solid colours."""
    rng = np.random.default_rng(0)
    for split, count in splits.items():
        for name, colour in COLOURS.items():
            folder = root / split / name if split else root / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                noise = rng.integers(-20, 20, (size, size, 3))
                img = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
                Image.fromarray(img).save(folder / f"{i}.png")
    return root


def load(name: str, root: Path | None, **kw) -> object:
    return load_dataset(DataConfig(dataset=name, **kw), root)


def test_imagefolder_with_train_and_test_trees(tmp_path):
    root = tree(tmp_path / "mine", {"train": 3, "test": 2})
    data = load("imagefolder", root)
    assert data.classes == ["cat", "dog", "emu", "fox"] and data.native_size is None
    assert data.train.labels.tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3
    assert len(data.test) == 8
    shutil.move(root / "test", root / "val")
    assert len(load("imagefolder", root).test) == 8  # val/ serves as test/
    shutil.rmtree(root / "val" / "emu")
    with pytest.raises(DataNotFoundError, match=r"train/ and val/ .* differing: \['emu'\]"):
        load("imagefolder", root)


def test_imagefolder_one_tree_is_split_per_class_with_the_split_seed(tmp_path):
    root = tree(tmp_path / "mine", {"": 10})
    a, b = load("imagefolder", root), load("imagefolder", root, split_seed=1)
    assert (len(a.train), len(a.test)) == (32, 8)  # 8 / 2 of each class's 10
    assert a.train.source.paths != b.train.source.paths
    with pytest.raises(DataNotFoundError, match="no class folders with images"):
        load("imagefolder", tmp_path / "mine" / "cat")


def test_npz_reads_the_file_given_by_data_path(tmp_path, monkeypatch):
    write_npz(tmp_path / "own.npz")
    data = load("npz", None, path=str(tmp_path / "own.npz"))
    assert data.classes == ["n0002", "n0001"] and data.native_size == 32  # from the images
    assert len(load("npz", tmp_path, path="own.npz").train) == 3  # relative to the data root
    monkeypatch.chdir(tmp_path)
    assert len(load("npz", None, path="own.npz").test) == 2  # relative to the current folder
    with pytest.raises(ConfigError, match="needs data.path=FILE"):
        load("npz", None)
    with pytest.raises(DataNotFoundError, match="absent.npz' not found"):
        load("npz", None, path=str(tmp_path / "absent.npz"))


@pytest.mark.parametrize("name", ["npz", "mini-imagenet-32"])
def test_a_truncated_npz_is_one_clear_error_naming_the_file(tmp_path, name):
    path = tmp_path / "mini-imagenet-32.npz"
    write_npz(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataNotFoundError, match=r"mini-imagenet-32.npz' is not a readable "
                                                r"\.npz file .*truncated.*Expected"):
        load(name, tmp_path, path=str(path))


def test_fingerprints_name_the_class_list_and_the_split(tmp_path):
    root = tree(tmp_path / "mine", {"train": 2, "test": 1})
    data = load("imagefolder", root)
    order = np.arange(4)
    base = data_fingerprint(data, order)
    moved = shutil.copytree(root, tmp_path / "elsewhere")  # keeps sizes and mtimes (cp -p)
    assert data_fingerprint(load("imagefolder", moved), order) == base  # root-independent
    assert data_fingerprint(data, order[::-1])["classes_sha256"] != base["classes_sha256"]
    assert data_fingerprint(data, order[::-1])["split_sha256"] == base["split_sha256"]
    (root / "test" / "cat" / "0.png").rename(root / "test" / "cat" / "9.png")
    assert data_fingerprint(load("imagefolder", root), order)["split_sha256"] != \
        base["split_sha256"]


def test_an_image_replaced_under_the_same_name_changes_the_fingerprint(tmp_path):
    root = tree(tmp_path / "mine", {"train": 2, "test": 1})
    order = np.arange(4)
    base = data_fingerprint(load("imagefolder", root), order)
    image = root / "train" / "cat" / "0.png"
    Image.new("RGB", (40, 40), (0, 0, 0)).save(image)  # other pixels, the same file name
    assert data_fingerprint(load("imagefolder", root), order)["split_sha256"] != \
        base["split_sha256"]
    again = data_fingerprint(load("imagefolder", root), order)
    os.utime(image, ns=(1, 1))  # only the modification time
    assert data_fingerprint(load("imagefolder", root), order)["split_sha256"] != \
        again["split_sha256"]


MINI_RECORD = "results/mini/mini-imagenet-32-T10/joint/seed0/record.json"


def test_the_fingerprint_of_the_shared_mini_data_is_the_one_the_committed_records_hold():
    """Records under results/mini/ are reused only while this fingerprint stays the same."""
    if not (SHARED / "mini-imagenet-32.npz").is_file():
        pytest.skip(f"shared reference file {SHARED / 'mini-imagenet-32.npz'} is absent")
    stored = json.loads((Path(__file__).resolve().parents[2] / MINI_RECORD).read_text())["data"]
    assert data_fingerprint(load("mini-imagenet-32", SHARED), np.arange(100)) == stored


def run_cli(root: Path, out: Path, *extra: str) -> int:
    return main(["run", "--profile", "smoke", "--method", "finetune", "--data-root", str(root),
                 "--out", str(out), "--quiet", "--set", "data.dataset=imagefolder",
                 "--set", "data.num_tasks=2", "--set", "data.num_classes=None",
                 "--set", "data.batch_size=4", "--set", "train.epochs=1", *extra])


def test_a_users_imagefolder_tree_runs_from_the_command_line(tmp_path, capsys):
    root = tree(tmp_path / "mine", {"train": 4, "test": 2})
    assert run_cli(root, tmp_path / "runs") == 0
    record_path = next((tmp_path / "runs").rglob("record.json"))
    record = json.loads(record_path.read_text())
    assert record["status"] == "complete" and len(record["accuracy_matrix"]) == 2
    assert record["data"]["num_classes"] == 4 and record["data"]["dataset_train_images"] == 16
    assert "imagefolder-T2" in str(record_path)
    # the same config on a changed tree is not passed off as the old record
    tree(root, {"train": 5, "test": 2})
    assert run_cli(root, tmp_path / "runs") == 2
    assert "other data under the same config (dataset_train_images, split_sha256)" in \
        capsys.readouterr().err


def test_janus_list_shows_the_own_data_sets_and_their_layout(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "imagefolder" in out and "npz" in out and "joint" in out and "ncm" in out
    assert "<root>/train/<class>/<file>" in out and "data.path=FILE" in out


@pytest.mark.parametrize(
    ("dataset", "files", "split"),
    [
        ("imagenet-r", {"imagenet-r/imagenet-r_train.yaml": b"data: [unclosed\n",
                        "imagenet-r/imagenet-r_test.yaml": b"data: []\n"}, "auto"),
        ("domainnet", {"domainnet/domainnet_train.yaml": b"data: [x\n",
                       "domainnet/domainnet_test.yaml": b"data: []\ntargets: []\n"}, "auto"),
        ("domainnet", {"domainnet/clipart_train.txt": b"\xff\xfe bad",
                       "domainnet/clipart_test.txt": b""}, "official"),
        ("cub200", {"CUB_200_2011/images.txt": b"\xff\xfe"}, "auto"),
    ],
)
def test_unreadable_list_files_are_one_error_naming_the_file(tmp_path, dataset, files, split):
    (tmp_path / "imagenet-r" / "n01").mkdir(parents=True)
    for rel, content in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(content)
    first = next(iter(files))
    with pytest.raises(DataNotFoundError, match=f"{first.split('/')[-1]}' is not (valid yaml|a "
                                                f"readable text file)"):
        load(dataset, tmp_path, split=split)
