"""End-to-end runs of the one training loop: records, forgetting, resume, clear errors."""

import subprocess
import sys

import numpy as np
import pytest

from janus.core import metrics
from janus.core.config import apply_overrides, profile
from janus.core.errors import (
    ConfigError,
    DataNotFoundError,
    JanusError,
    RunBusyError,
    WeightsNotFoundError,
)
from janus.core.results import metrics_of, read_record
from janus.methods import METHODS
from janus.train.locking import LOCK_NAME
from janus.train.trainer import Run, run, run_dir


def tiny(*overrides):
    """The smoke profile, cut down to seconds: 2 tasks, few steps."""
    cfg = profile("smoke")
    return apply_overrides(
        cfg,
        ["data.num_tasks=2", "data.num_classes=6", "data.train_per_class=16",
         "data.test_per_class=8", "train.epochs=5", "train.max_steps_per_task=3", *overrides],
    )


def test_end_to_end_record_rederives_metrics(tmp_path):
    cfg = tiny()
    record = run(cfg, tmp_path, progress=False)
    path = run_dir(cfg, tmp_path) / "record.json"
    stored = read_record(path)
    assert stored["status"] == "complete" and stored["seed"] == 0
    acc = np.array(stored["accuracy_matrix"], dtype=float)
    assert acc.shape == (2, 2) and np.isnan(acc[0, 1])
    # the accuracy matrix is the ratio of the stored counts, and the metrics follow from it
    counts = stored["eval_counts"]
    assert acc[1, 0] == pytest.approx(100 * counts[1][0][0] / counts[1][0][1])
    assert [c[1] for c in counts[1]] == [24, 24]  # 3 classes x 8 test images per task
    assert stored["metrics"] == metrics.summary(acc) == metrics_of(stored)
    assert record["metrics"] == stored["metrics"]
    assert [t["steps"] for t in stored["tasks"]] == [3, 3]
    assert all(t["train_images_per_second"] > 0 for t in stored["tasks"])
    for t in stored["tasks"]:  # the whole task = its steps + the method's offline phases
        assert 0 < t["step_seconds"] <= t["train_seconds"] and t["offline_seconds"] >= 0
        assert t["step_seconds"] + t["offline_seconds"] == pytest.approx(t["train_seconds"])
        assert t["train_cpu_seconds"] > 0  # CPU time of all threads, unaffected by waiting
    assert {"torch", "timm", "python", "device", "cpu"} <= set(stored["environment"])
    assert stored["environment"]["cpu"]


def test_smoke_finetune_forgets(tmp_path):
    """The smoke profile shows catastrophic forgetting for sequential fine-tuning."""
    record = run(profile("smoke"), tmp_path, progress=False)
    acc = np.array(record["accuracy_matrix"], dtype=float)
    assert acc[0, 0] > 60  # the first task is learned ...
    assert record["metrics"]["bwt"] < -20  # ... and then largely forgotten


@pytest.mark.parametrize("method", sorted(m for m, c in METHODS.items() if not c.single_task))
def test_resume_after_crash_in_task_3_matches_uninterrupted(resumed_after_crash, method):
    """Every method with a task sequence (``joint`` has a single task: a crash restarts it)."""
    cfg = apply_overrides(profile("smoke"), ["train.epochs=1", f"method.name={method}"])
    reference, resumed, _ = resumed_after_crash(cfg)
    assert resumed["accuracy_matrix"] == reference["accuracy_matrix"]
    assert resumed["eval_counts"] == reference["eval_counts"]
    assert [t["final_loss"] for t in resumed["tasks"]] == [
        t["final_loss"] for t in reference["tasks"]
    ]


def test_finished_run_is_reused_and_other_config_protected(tmp_path, monkeypatch):
    cfg = tiny()
    first = run(cfg, tmp_path, progress=False)
    monkeypatch.setattr("janus.train.trainer.Run.execute", lambda *a, **k: pytest.fail("re-ran"))
    assert run(cfg, tmp_path, progress=False)["updated"] == first["updated"]
    with pytest.raises(JanusError, match="different config"):
        run(tiny("train.lr=0.1"), tmp_path, progress=False)


def test_records_name_the_backbone_weights(tmp_path):
    """Same config, other weights in the checkpoint file: the old record is not reused, nor
    its checkpoint resumed."""
    import hashlib

    import torch

    from janus.model.backbones import vit_from_config

    path = tmp_path / "vit.pth"
    small = profile("smoke").model
    kwargs = {k: getattr(small, k) for k in ("img_size", "patch_size", "embed_dim", "depth",
                                             "num_heads")}
    torch.manual_seed(0)
    torch.save({"vit_kwargs": kwargs, "state_dict": vit_from_config(small).state_dict()}, path)
    cfg = tiny("model.source=checkpoint", f"model.checkpoint={path}")
    record = run(cfg, tmp_path / "runs", progress=False)
    assert record["checkpoint_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    torch.manual_seed(1)
    torch.save({"vit_kwargs": kwargs, "state_dict": vit_from_config(small).state_dict()}, path)
    with pytest.raises(JanusError, match="other backbone weights"):
        run(cfg, tmp_path / "runs", progress=False)
    (run_dir(cfg, tmp_path / "runs") / "record.json").unlink()  # an unfinished run
    with pytest.raises(ConfigError, match="checkpoint at .* written on other backbone weights"):
        run(cfg, tmp_path / "runs", resume=True, progress=False)


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        (["data.dataset=mini-imagenet-32", "data.root=/nonexistent/dir"], DataNotFoundError,
         "not a directory"),
        (["data.dataset=imagenet-r", "data.root=''"], DataNotFoundError, "JANUS_DATA"),
        (["data.dataset=cifar10"], ConfigError, "unknown data set 'cifar10'"),
        (["method.name=nope"], ConfigError, "unknown method 'nope'"),
        (["lora.rank=49"], ConfigError, "lora.rank=49 is impossible"),
        (["data.num_tasks=4"], ConfigError, "6 classes cannot be split into 4 equal tasks"),
        (["model.source=checkpoint", "model.checkpoint=/no/such.pth"], WeightsNotFoundError,
         "does not exist"),
        (["method.params.k=3"], ConfigError, "has no parameter"),
        (["train.optimizer=rmsprop"], ConfigError, "train.optimizer"),
        (["train.epochs=-1"], ConfigError, "train.epochs=-1 is impossible"),
        (["train.max_steps_per_task=0"], ConfigError, "train.max_steps_per_task=0 is impossible"),
        (["data.batch_size=2.5"], ConfigError, "data.batch_size=2.5 is impossible"),
        (["train.lr=0"], ConfigError, "train.lr=0 is impossible"),
        (["train.lr=1e999"], ConfigError, "train.lr=inf is impossible"),
    ],
)
def test_bad_input_gives_one_clear_error(tmp_path, monkeypatch, overrides, error, message):
    monkeypatch.delenv("JANUS_DATA", raising=False)
    with pytest.raises(error, match=message):
        run(tiny(*overrides), tmp_path, progress=False)


def test_a_run_in_progress_elsewhere_is_refused_not_overwritten(tmp_path):
    """Two processes never write the same run: the second is told the run is busy."""
    cfg = profile("smoke")
    cfg.data.num_tasks, cfg.train.max_steps_per_task = 2, 1
    out_dir = run_dir(cfg, tmp_path)
    out_dir.mkdir(parents=True)
    holder = subprocess.Popen(  # another process holds the run's lock
        [sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a+'); "
         "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)",
         str(out_dir / LOCK_NAME)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunBusyError, match="another process is running"):
            run(cfg, tmp_path, resume=True, progress=False)
        assert not (out_dir / "record.json").exists()
    finally:
        holder.kill()
        holder.wait()
    assert run(cfg, tmp_path, progress=False)["status"] == "complete"  # free again


def test_a_run_that_cannot_start_leaves_no_folders(tmp_path):
    cfg = profile("smoke")
    cfg.data.num_tasks, cfg.train.max_steps_per_task = 2, 1
    cfg.method.name = "no-such-method"
    with pytest.raises(ConfigError):
        run(cfg, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_a_compiled_backbone_trains_like_the_eager_one(tmp_path):
    """``train.compile``: Janus-LoRA's hooks (OE captures, Gram statistics) still fire."""
    eager = run(tiny("method.name=janus-lora"), tmp_path / "eager", progress=False)
    compiled = run(tiny("method.name=janus-lora", "train.compile=True"), tmp_path / "compiled",
                   progress=False)
    one_image = 100 / 24
    assert np.allclose(np.array(eager["accuracy_matrix"], dtype=float),
                       np.array(compiled["accuracy_matrix"], dtype=float),
                       atol=one_image + 1e-9, equal_nan=True)
    for a, b in zip(eager["tasks"], compiled["tasks"], strict=True):
        assert b["mean_loss"] == pytest.approx(a["mean_loss"], rel=1e-3)


def test_hooks_added_after_compiling_still_fire():
    """Gram statistics (a forward hook added after the first compiled call) equal eager ones."""
    import torch

    from janus.methods.activations import input_grams
    from janus.model.continual import build_model

    cfg = tiny()
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.lora)
    x = torch.randn(4, 3, 32, 32)
    eager = input_grams(model, [(x, None)])
    model.compile_backbone()
    model.features(x)  # traced without hooks
    compiled = input_grams(model, [(x, None)])
    for a, b in zip(eager, compiled, strict=True):
        assert float(b.abs().max()) > 0
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_records_name_the_method_version_and_its_resolved_parameters(tmp_path, monkeypatch):
    """A method whose defaults changed (a higher ``version``) does not reuse or resume the
    records of the old version, and says why."""
    from janus.methods import METHODS

    cfg = tiny("method.name=inflora")
    record = run(cfg, tmp_path / "runs", progress=False)
    assert record["method"]["version"] == METHODS["inflora"].version
    assert record["method"]["params"]["energy"] == "squared"  # the defaults, resolved
    assert run(cfg, tmp_path / "runs", progress=False)["updated"] == record["updated"]  # reused
    monkeypatch.setattr(METHODS["inflora"], "version", METHODS["inflora"].version + 1)
    with pytest.raises(JanusError, match=r"version 2 of method 'inflora'.*--force"):
        run(cfg, tmp_path / "runs", progress=False)
    assert run(cfg, tmp_path / "runs", progress=False, force=True)["method"]["version"] == 3


def official_cosine_schedule(lr: float, epochs: int) -> list[float]:
    """The learning rate of each epoch under InfLoRA's ``CosineSchedule`` as its code runs it
    (liangyanshuo/InfLoRA@e08b00e), written out from a reading of it: ``_LRScheduler.__init__``
    calls ``step(last_epoch + 1)`` (sets the lr for epoch 0) and then resets ``last_epoch`` to
    -1 (``utils/schedulers.py`` lines 19-20); ``step()`` increments ``last_epoch`` and sets
    ``lr cos(99 pi last_epoch / (200 (K - 1)))`` (lines 40-45, 53-54); ``train_function`` calls
    it once after each epoch's batches (``methods/inflora.py`` line 238)."""
    import math

    class Scheduler:
        def __init__(self):
            self.lr = None
            self.step(0)  # step(last_epoch + 1) with last_epoch = -1
            self.last_epoch = -1

        def step(self, epoch=None):
            epoch = self.last_epoch + 1 if epoch is None else epoch
            self.last_epoch = epoch
            self.lr = lr * math.cos(99 * math.pi * epoch / (200 * (epochs - 1)))

    scheduler, rates = Scheduler(), []
    for _ in range(epochs):
        rates.append(scheduler.lr)  # the epoch's batches train at this rate
        scheduler.step()
    return rates


def test_a_record_of_an_older_schedule_version_is_not_reused(tmp_path):
    """A record made before the ``inflora-cosine`` correction (no ``schedule_version``) is not
    reused, and the error says why; records of the unchanged schedules still are."""
    import json

    for schedule, reused in (("cosine", True), ("inflora-cosine", False)):
        cfg = tiny(f"train.schedule={schedule}")
        record = run(cfg, tmp_path / schedule, progress=False)
        assert record["schedule_version"] == (2 if schedule == "inflora-cosine" else 1)
        path = next((tmp_path / schedule).rglob("record.json"))
        del record["schedule_version"]  # as written before schedule versions
        path.write_text(json.dumps(record))
        if reused:
            assert run(cfg, tmp_path / schedule, progress=False)["updated"] == record["updated"]
        else:
            with pytest.raises(JanusError, match=r"version 1 of train.schedule='inflora-cosine'"):
                run(cfg, tmp_path / schedule, progress=False)


@pytest.mark.parametrize("epochs, last", [(5, None), (20, 0.0974), (50, 0.0474)])
def test_inflora_cosine_runs_as_the_official_code_steps_it(epochs, last):
    """Per epoch (3 steps each), the rates of the official schedule: epochs 0 and 1 at the
    full rate, the last at 9.74% (K = 20, CIFAR-100) or 4.74% (K = 50, ImageNet-R)."""
    import torch

    from janus.train.optim import make_schedule

    cfg = tiny("train.schedule=inflora-cosine", f"train.epochs={epochs}")
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([param], lr=0.1)
    sched = make_schedule(cfg, opt, total=3 * epochs, steps_per_epoch=3)
    seen = []
    for _ in range(3 * epochs):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    want = [rate for rate in official_cosine_schedule(0.1, epochs) for _ in range(3)]
    assert seen == pytest.approx(want, rel=1e-12)
    assert seen[3] == seen[0] == 0.1  # epoch 1 repeats epoch 0's rate
    if last is not None:
        assert seen[-1] / 0.1 == pytest.approx(last, abs=5e-5)
    assert profile("paper").train.schedule == "inflora-cosine"
    assert profile("mini").train.schedule == "cosine"  # the committed mini evidence's


def test_a_diverging_run_marks_its_record_failed_and_keeps_finished_tasks(tmp_path):
    """train.lr=1e9: one clear error naming task, step, loss and setting; the record says
    failed and why; a resume with another lr is refused naming the field that differs."""
    import json

    from janus.core.errors import NonFiniteLossError
    from janus.train.trainer import Observer, Run, run_dir

    cfg = tiny("data.num_tasks=3", "data.num_classes=9")
    good = run(cfg, tmp_path / "ok", progress=False)
    assert good["status"] == "complete"

    class Explode(Observer):  # diverge only in the second task, so one task finishes first
        def before_task(self, r, ctx):
            if ctx.index == 1:
                for g in r.model.heads[1].parameters():
                    g.data.fill_(float("inf"))

    bad = tiny("data.num_tasks=3", "data.num_classes=9", "train.lr=0.01")
    r = Run(bad, run_dir(bad, tmp_path / "runs"), progress=False, observers=[Explode()])
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss \((nan|inf)\) in task 2 at "
                                                 r"step 1 .*lower train.lr \(now 0.01\).*"
                                                 r"marked failed"):
        r.execute(resume=False)
    record = json.loads((run_dir(bad, tmp_path / "runs") / "record.json").read_text())
    assert record["status"] == "failed" and record["failure"]["task"] == 1
    assert "non-finite loss" in record["failure"]["reason"] and len(record["tasks"]) == 1
    lowered = tiny("data.num_tasks=3", "data.num_classes=9", "train.lr=1e-3")
    with pytest.raises(JanusError, match=r"differing: train.lr 0.01 -> 0.001"):
        run(lowered, tmp_path / "runs", progress=False, resume=True)


def test_a_parameter_value_can_raise_the_method_version():
    """Janus-LoRA's memory=union changed at its cap (issue 21): its records are version 2,
    the default snapshot memory's stay version 1 (still reused)."""
    from janus.train.identity import method_version

    assert method_version(tiny("method.name=janus-lora")) == 1
    assert method_version(tiny("method.name=janus-lora",
                               "method.params={'memory': 'union'}")) == 2


def test_training_a_stream_in_pieces_equals_one_execute(tmp_path):
    """Run.start + Run.train_tasks (the public way probes and tests train part of a stream)
    fill the same accuracy matrix as Run.execute, and write nothing with save=False."""
    from janus.train.trainer import Run

    cfg = apply_overrides(profile("smoke"), ["data.num_tasks=4", "train.max_steps_per_task=3",
                                             "method.name='janus-lora'"])
    whole = Run(cfg, tmp_path / "whole", progress=False).execute(resume=False)
    pieces = Run(cfg, tmp_path / "pieces", progress=False)
    pieces.start()
    pieces.train_tasks(2, save=False)
    assert pieces.state.done == 2 and not (tmp_path / "pieces").exists()
    with pytest.raises(ValueError, match="cannot train up to task 1: 2 of 4 are done"):
        pieces.train_tasks(1)
    pieces.train_tasks(save=False)
    assert pieces.record("complete")["accuracy_matrix"] == whole["accuracy_matrix"]


@pytest.mark.parametrize("method, extra", [("bilora", []), ("janus-lora", []),
                                           ("lora-drs", ["method.params.gr=True"])])
def test_a_run_removes_the_forward_hooks_its_method_registered(tmp_path, method, extra):
    """Hooks go through ``Method.forward_hook`` (one per block here) and are gone after the run."""
    cfg = apply_overrides(profile("smoke"), [f"method.name={method}", "data.num_tasks=2",
                                             "data.num_classes=6", "train.epochs=1", *extra])
    started = Run(cfg, tmp_path / "a", progress=False)
    started.start()
    assert len(started.method.hooks) == len(started.model.adapters)
    assert all(len(a._forward_hooks) == 1 for a in started.model.adapters)
    finished = Run(cfg, tmp_path / "b", progress=False)
    assert finished.execute(resume=False)["status"] == "complete"
    assert not finished.method.hooks
    assert not any(a._forward_hooks for a in finished.model.adapters)
