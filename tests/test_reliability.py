"""Bad input and broken files give one clear `janus: error` line and lose nothing (issue 24,
items 2, 4, 5 and 6). docs/reliability.md lists each case and its message."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from janus.cli import main
from janus.core.config import apply_overrides, profile
from janus.core.errors import JanusError
from janus.core.results import find_records, summarize, write_json
from janus.train.trainer import run, run_dir

SMALL = ["--set", "data.num_tasks=2", "--set", "train.max_steps_per_task=2"]


def small_cfg(*extra: str):
    return apply_overrides(profile("smoke"), ["data.num_tasks=2", "train.max_steps_per_task=2",
                                              *extra])


def one_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("janus: error: "), err
    return err[0]


@pytest.mark.parametrize("extra, message", [
    (["--seed", "-1"], "seed -1 is impossible: it must be a whole number >= 0"),
    (["--tasks", "0"], "data.num_tasks=0 (--tasks) is impossible"),
    (["--set", "method.params.gr=no", "--method", "janus-lora"], "gr='no' is not bool"),
])
def test_impossible_command_lines_are_one_error(tmp_path, capsys, extra, message):
    line = one_error(capsys, ["run", "--out", str(tmp_path), "--quiet", *extra])
    assert message in line


def test_a_changed_worker_count_is_refused_on_resume_and_reuse(tmp_path):
    """The pil pipeline augments in each worker with the worker's own RNG, so the worker
    count changes results there ('auto' means 0 workers for it); the device pipeline draws
    every crop in the main process, so there the count may change."""
    cfg = small_cfg("data.num_workers=0")
    run(cfg, tmp_path, progress=False)
    assert run(small_cfg(), tmp_path, progress=False)["config"]["data"]["num_workers"] == 0
    other = small_cfg("data.num_workers=1")
    with pytest.raises(JanusError, match=r"data.num_workers 0 -> 1"):
        run(other, tmp_path, progress=False)  # a finished record made with 0 workers
    (run_dir(cfg, tmp_path) / "record.json").unlink()  # an unfinished run: its checkpoint
    with pytest.raises(JanusError, match=r"data.num_workers 0 -> 1"):
        run(other, tmp_path, resume=True, progress=False)
    from janus.train.identity import comparable

    device = small_cfg("data.pipeline='device'").to_dict()
    more = small_cfg("data.pipeline='device'", "data.num_workers=3").to_dict()
    assert comparable(device) == comparable(more)


@pytest.mark.parametrize("content", [
    "", '{"schema": 1, "status": "comp', "[1, 2]", '{"schema": 7}',
    # right schema and status, a field missing (issue 36: KeyError 'method' in summarize)
    '{"schema": 1, "status": "complete", "config": {}, "accuracy_matrix": [[50.0]]}',
])
def test_show_and_summarize_name_a_broken_record_and_summarize_skips_it(tmp_path, capsys,
                                                                      content):
    run(small_cfg(), tmp_path, progress=False)
    bad = tmp_path / "smoke" / "synthetic-T2" / "other" / "seed0" / "record.json"
    bad.parent.mkdir(parents=True)
    bad.write_text(content)
    line = one_error(capsys, ["show", str(bad)])
    assert str(bad) in line and ("not valid JSON" in line or "schema" in line)
    assert "config" not in content or "no field 'config.profile'" in line
    assert main(["summarize", str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert "finetune" in out.out and f"janus: skipped: record {bad}" in out.err


def test_show_says_how_far_a_partial_run_got(tmp_path, capsys):
    cfg = small_cfg()
    run(cfg, tmp_path, progress=False)
    path = run_dir(cfg, tmp_path) / "record.json"
    record = json.loads(path.read_text())
    record["status"], record["tasks"] = "partial", record["tasks"][:1]
    path.write_text(json.dumps(record))
    assert main(["show", str(path)]) == 0
    assert "partial, 1 of 2 tasks" in capsys.readouterr().out


def test_a_truncated_record_on_resume_continues_from_the_checkpoint(tmp_path, capsys):
    cfg = small_cfg()
    first = run(cfg, tmp_path, progress=False)
    path = run_dir(cfg, tmp_path) / "record.json"
    path.write_text(path.read_text()[:100])
    line = one_error(capsys, ["run", "--out", str(tmp_path), "--quiet", *SMALL])
    assert f"record {path} is not valid JSON" in line and "--resume" in line
    with pytest.warns(UserWarning, match="continuing from the checkpoint"):
        again = run(cfg, tmp_path, resume=True, progress=False)
    assert again["accuracy_matrix"] == first["accuracy_matrix"]


def test_a_truncated_checkpoint_on_resume_is_one_error(tmp_path, capsys):
    cfg = small_cfg()
    run(cfg, tmp_path, progress=False)
    folder = run_dir(cfg, tmp_path)
    (folder / "record.json").unlink()
    ckpt = folder / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    line = one_error(capsys, ["run", "--out", str(tmp_path), "--quiet", "--resume", *SMALL])
    assert f"the checkpoint {ckpt} cannot be read" in line and "--force" in line


def test_a_truncated_or_missing_backbone_checkpoint_is_one_error(tmp_path,
                                                                                capsys):
    good = Path(__file__).resolve().parents[1] / "janus" / "weights" / "mini-vit-p8-e30.pth"
    cut = tmp_path / "cut.pth"
    cut.write_bytes(good.read_bytes()[:1000])
    line = one_error(capsys, ["run", "--out", str(tmp_path), "--quiet", *SMALL, "--set",
                              "model.source='checkpoint'", "--set",
                              f"model.checkpoint={str(cut)!r}"])
    assert f"checkpoint file {str(cut)!r} cannot be read" in line and "truncated" in line
    base = ["run", "--profile", "mini", "--out", str(tmp_path), "--quiet",
            "--data-root", str(tmp_path / "no-data")]  # the data are missing too
    gone = good.parent / "gone.pth"
    line = one_error(capsys, base + ["--set", f"model.checkpoint={str(gone)!r}"])
    assert "does not exist" in line and "janus pretrain" in line and "MODEL_NAME" not in line
    assert "data root" not in line  # missing weights are reported before the data load


def test_a_read_only_out_folder_is_one_error(tmp_path, capsys, monkeypatch):
    real_mkdir = Path.mkdir

    def read_only(self, *args, **kwargs):
        if str(self).startswith(str(tmp_path / "ro")):
            raise OSError(errno.EROFS, "Read-only file system")
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    line = one_error(capsys, ["run", "--out", str(tmp_path / "ro"), "--quiet", *SMALL])
    assert "cannot write" in line and "read-only" in line and "--out" in line


def test_a_full_disk_says_so_and_leaves_no_tmp_file(tmp_path, monkeypatch):
    write_json(tmp_path / "r.json", {"a": 1})

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(JanusError, match="no space left on the device"):
        write_json(tmp_path / "r.json", {"a": 2})
    monkeypatch.undo()
    assert json.loads((tmp_path / "r.json").read_text()) == {"a": 1}  # the old file is kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_a_full_disk_while_writing_a_checkpoint_is_one_error(tmp_path, monkeypatch, capsys):
    """The checkpoint's bytes go to /dev/full, which answers every write with ENOSPC as a full
    disk does; this used to end in torch's RuntimeError traceback (issue 36)."""
    import builtins

    import janus.train.checkpoint as checkpoint

    real_open = builtins.open

    def full_disk(file, mode="r", *args, **kwargs):
        if str(file).endswith(".pt.tmp"):
            return real_open("/dev/full", mode, *args, **kwargs)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(checkpoint, "open", full_disk, raising=False)
    line = one_error(capsys, ["run", "--out", str(tmp_path), "--quiet", *SMALL])
    assert "cannot write" in line and "checkpoint.pt" in line and "no space left" in line
    assert not list(tmp_path.rglob("*.tmp"))


def test_records_and_checkpoints_are_synced_before_the_rename(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    run(small_cfg(), tmp_path, progress=False)
    # per task: checkpoint + partial record; then the complete record
    assert len(synced) == 2 * 2 + 1


def npz_run(capsys, path: Path, out: Path) -> str:
    return one_error(capsys, [
        "run", "--profile", "smoke", "--out", str(out), "--quiet", "--set", "data.dataset='npz'",
        "--set", f"data.path={str(path)!r}", "--set", "data.num_tasks=2", "--set",
        "data.num_classes=None", "--set", "data.batch_size=2", "--set", "train.epochs=1"])


def test_a_corrupt_jpeg_or_a_text_file_as_npz_is_one_error(tmp_path, capsys):
    import numpy as np

    from tests.data.test_loaders import write_npz

    path = tmp_path / "own.npz"
    write_npz(path)
    arrays = dict(np.load(path))
    start, end = arrays["train_offsets"][1:3]
    arrays["train_jpeg"] = arrays["train_jpeg"].copy()
    arrays["train_jpeg"][start:end] = 7  # image 1 of the training split: not a JPEG any more
    np.savez(path, **arrays)
    assert "cannot decode image 1 of its JPEG blob" in npz_run(capsys, path, tmp_path / "o")
    path.write_text("not an archive\n")
    assert "is not a readable .npz file" in npz_run(capsys, path, tmp_path / "o")


def test_a_checkpoint_the_profile_would_ignore_is_refused(tmp_path, capsys):
    line = one_error(capsys, ["run", "--out", str(tmp_path), "--quiet", "--set",
                              "model.checkpoint='/w/vit.pth'"])
    assert "model.checkpoint='/w/vit.pth' would be ignored" in line
    assert "model.source=checkpoint" in line


def test_janus_list_prints_each_profiles_whole_first_paragraph(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    paper = out[out.index("  paper "):]
    assert "Needs a GPU and the data." in " ".join(paper.split())


def test_summarize_keeps_runs_of_different_settings_apart(tmp_path, capsys):
    """Two seed-0 runs that differ in train.lr used to be one row "seeds 2" (issue 36): each
    setting is its own row, named; a repeated seed under another --out is a row of its own."""
    for lr in ("0.005", "0.01"):
        run(small_cfg(f"train.lr={lr}"), tmp_path / f"lr{lr}", progress=False)
    run(small_cfg("train.lr=0.01", "seed=1"), tmp_path / "lr0.01", progress=False)
    rows = summarize(find_records(tmp_path))
    assert sorted((r["seeds"], r["settings"]) for r in rows) == [
        ([0], "train.lr=0.005"), ([0, 1], "train.lr=0.01")]
    run(small_cfg("train.lr=0.01"), tmp_path / "again", progress=False)  # seed 0 once more
    rows = summarize(find_records(tmp_path))
    assert sorted(r["seeds"] for r in rows) == [[0], [0], [0, 1]]
    assert main(["summarize", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "^ not the only row of finetune: train.lr=0.005" in out
    assert "repeated seeds" in out
