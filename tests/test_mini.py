"""The `mini` profile on a small slice of the shared mini-ImageNet-32 file with the committed
pre-trained backbone (so CI catches breakage of either), and its missing-data error."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from janus.analysis.reference import nearest_class_mean
from janus.core.config import MINI_CHECKPOINT, apply_overrides, profile
from janus.core.errors import DataNotFoundError
from janus.model.backbones import resolve_checkpoint
from janus.train.trainer import run

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DATA = Path(os.environ.get("JANUS_DATA", SHARED))
needs_data = pytest.mark.skipif(
    not (DATA / "mini-imagenet-32.npz").is_file(),
    reason=f"mini-imagenet-32.npz not in {DATA} (set JANUS_DATA)",
)

SLICE = ["data.num_classes=4", "data.num_tasks=2", "data.train_per_class=24",
         "data.test_per_class=10", "train.epochs=1", "data.batch_size=16"]


def test_committed_backbone_matches_its_pretraining_record():
    path = resolve_checkpoint(MINI_CHECKPOINT)
    assert path.is_file(), f"{path} must be committed (janus pretrain output)"
    state = torch.load(path, weights_only=True)
    record = json.loads(path.with_suffix(".json").read_text())
    assert state["vit_kwargs"] == record["config"]["vit_kwargs"]
    assert record["config"]["dataset"] == "tiny-imagenet-32" and record["num_classes"] == 177
    epochs = record["epochs"]
    assert len(epochs) == record["config"]["epochs"]
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]
    assert record["final_test_top1"] == epochs[-1]["test_top1"] > 20  # chance: 0.56%
    n_params = sum(v.numel() for v in state["state_dict"].values())
    assert 2.5e6 < n_params < 2.8e6


@needs_data
def test_mini_slice_runs_end_to_end(tmp_path):
    cfg = apply_overrides(profile("mini"), [f"data.root={DATA}", *SLICE])
    record = run(cfg, tmp_path, progress=False)
    acc = np.array(record["accuracy_matrix"], dtype=float)
    assert acc.shape == (2, 2)
    assert [c[1] for c in record["eval_counts"][1]] == [20, 20]
    assert acc[0, 0] > 50  # 2-way task on a pre-trained backbone: far above chance


@needs_data
def test_frozen_backbone_beats_chance_with_nearest_class_mean():
    cfg = apply_overrides(profile("mini"), [f"data.root={DATA}", *SLICE])
    ref = nearest_class_mean(cfg)
    assert ref["num_classes"] == 4 and ref["test_images"] == 40
    assert ref["ncm_cosine_top1"] > 40  # chance is 25%


def test_missing_mini_file_says_where_and_what(tmp_path):
    cfg = apply_overrides(profile("mini"), [f"data.root={tmp_path}"])
    with pytest.raises(DataNotFoundError, match="mini-imagenet-32.npz.*JPEG files"):
        run(cfg, tmp_path / "out", progress=False)
