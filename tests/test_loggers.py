"""The loggers of a run (issue 36 item 6), read back from what they wrote: the CSV files,
TensorBoard's event file through its own reader, and the W&B offline run folder."""

from __future__ import annotations

import csv
import json

import pytest

from janus.core.config import apply_overrides, profile
from janus.core.errors import ConfigError
from janus.train.loggers import check_loggers
from janus.train.trainer import run, run_dir

SETTINGS = ["data.num_tasks=2", "train.epochs=1", "data.train_per_class=64",
            "train.schedule=constant"]


def logged_run(tmp_path, loggers: str):
    cfg = apply_overrides(profile("smoke"), [*SETTINGS, f"train.loggers={loggers}"])
    record = run(cfg, tmp_path, progress=False)
    return record, run_dir(cfg, tmp_path)


def test_csv_and_tensorboard_hold_the_steps_and_the_tasks(tmp_path):
    record, folder = logged_run(tmp_path, "['tensorboard', 'csv']")
    steps = list(csv.DictReader(open(folder / "log" / "steps.csv")))
    tasks = list(csv.DictReader(open(folder / "log" / "tasks.csv")))
    total = sum(t["steps"] for t in record["tasks"])
    assert int(steps[-1]["step"]) == total and {r["train/task"] for r in steps} == {"1", "2"}
    assert float(steps[-1]["train/loss"]) == pytest.approx(record["tasks"][-1]["final_loss"],
                                                            rel=1e-6)
    assert float(steps[0]["train/lr_group0"]) == 0.005  # smoke's train.lr, constant
    assert float(steps[0]["train/images_per_second"]) > 0
    assert [json.loads(t["accuracy_row"]) for t in tasks] == [
        pytest.approx(row[: i + 1], abs=1e-4)
        for i, row in enumerate(record["accuracy_matrix"])]
    assert float(tasks[-1]["acc"]) == pytest.approx(record["metrics"]["acc"])
    assert json.loads((folder / "log" / "config.json").read_text()) == json.loads(
        json.dumps(record["config"]))

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder / "tensorboard")).Reload()
    losses = events.Scalars("train/loss")
    assert [e.step for e in losses] == [int(r["step"]) for r in steps]
    assert losses[-1].value == pytest.approx(float(steps[-1]["train/loss"]), rel=1e-6)
    assert events.Scalars("metrics/bwt")[-1].value == pytest.approx(record["metrics"]["bwt"])
    assert [e.value for e in events.Scalars("accuracy/task1")] == pytest.approx(
        [row[0] for row in record["accuracy_matrix"]], abs=1e-4)
    assert "config/text_summary" in events.Tags()["tensors"]  # the resolved config


def test_wandb_writes_an_offline_run_in_the_run_folder(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    record, folder = logged_run(tmp_path, "['wandb']")
    runs = list((folder / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, list((folder / "wandb").iterdir())
    data = list(runs[0].glob("run-*.wandb"))
    assert len(data) == 1
    logged = wandb_history(data[0])
    acc = [h["metrics/acc"] for h in logged if "metrics/acc" in h]
    assert acc[-1] == pytest.approx(record["metrics"]["acc"])
    assert any("train/loss" in h for h in logged)


def wandb_history(path) -> list[dict]:
    """The ``history`` rows of a W&B run file: a ``:W&B`` header, then LevelDB-log records
    (crc 4 bytes, length 2, kind 1: full 1, first 2, middle 3, last 4) in 32 KiB blocks, each a
    protobuf ``Record``."""
    import struct

    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    block, pos, part, rows = 32768, 7, b"", []
    while pos + 7 <= len(data):
        left = block - pos % block
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7]) if left >= 7 else (0, 0, 0)
        if left < 7 or (length == 0 and kind == 0):  # block padding
            pos += left
            continue
        part += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(part)
            part = b""
            if record.WhichOneof("record_type") == "history":
                rows.append({i.key or "/".join(i.nested_key): json.loads(i.value_json)
                             for i in record.history.item})
    return rows


def test_a_logger_without_its_package_is_refused_by_name(monkeypatch):
    import janus.train.loggers as loggers

    monkeypatch.setitem(loggers.PACKAGES, "tensorboard", "no_such_package_here")
    with pytest.raises(ConfigError, match=r"tensorboard needs its package .*janus\[track\]"):
        check_loggers(("csv", "tensorboard"))
