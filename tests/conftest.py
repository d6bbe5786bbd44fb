"""Fixtures shared by the test modules."""

import json

import pytest
import torch

from janus.core.config import apply_overrides, profile
from janus.core.errors import JanusError
from janus.methods import METHODS
from janus.model.continual import build_model
from janus.train.checkpoint import CHECKPOINT_NAME
from janus.train.trainer import Run, run, run_dir


@pytest.fixture(autouse=True, scope="session")
def image_cache_in_a_temporary_folder(tmp_path_factory):
    """Decoded-image caches of the tests go to a temporary folder, not ``~/.cache/janus``."""
    mp = pytest.MonkeyPatch()
    mp.setenv("JANUS_CACHE", str(tmp_path_factory.mktemp("janus-cache")))
    yield
    mp.undo()


@pytest.fixture
def three_task_run(tmp_path):
    """``three_task_run(method, *observers) -> Run``: a started smoke run of ``method`` on 3
    tasks of 3 classes, one epoch each, watched by ``observers``; tasks are trained with
    ``run.train_tasks``."""

    def start(method: str, *observers) -> Run:
        cfg = apply_overrides(profile("smoke"), [f"method.name={method}", "data.num_tasks=3",
                                                 "data.num_classes=9", "train.epochs=1"])
        run = Run(cfg, tmp_path, progress=False, observers=list(observers))
        run.start()
        return run

    return start


@pytest.fixture
def resumed_after_crash(tmp_path, monkeypatch):
    """``resumed_after_crash(cfg) -> (reference, resumed, run folder)``: ``cfg`` run without
    interruption, and run again with a simulated kill in task 3 followed by ``--resume``; the
    caller compares the two records. Also checks the partial state left by the kill."""

    def check(cfg):
        reference = run(cfg, tmp_path / "a", progress=False)
        cls = METHODS[cfg.method.name]
        # methods without steps (ncm) are killed at the end of task 3, before its record
        hook = "train_step" if cls.owns_step else "after_backward" if cls.trains else "after_task"
        original = getattr(cls, hook)

        def crash(self, *args):
            ctx = args[-1]
            if ctx.index == 2 and (ctx.step == 1 or not cls.trains):
                raise KeyboardInterrupt("simulated kill during task 3")
            return original(self, *args)

        monkeypatch.setattr(cls, hook, crash)
        with pytest.raises(KeyboardInterrupt):
            run(cfg, tmp_path / "b", progress=False)
        out = run_dir(cfg, tmp_path / "b")
        partial = json.loads((out / "record.json").read_text())
        assert partial["status"] == "partial" and len(partial["tasks"]) == 2
        saved = torch.load(out / CHECKPOINT_NAME, weights_only=False)["model"]
        backbone = build_model(cfg.model, cfg.lora).state_dict()  # rebuilt, not checkpointed
        assert saved and not set(saved) & set(backbone)
        monkeypatch.setattr(cls, hook, original)
        with pytest.raises(JanusError, match="--resume"):
            run(cfg, tmp_path / "b", progress=False)
        return reference, run(cfg, tmp_path / "b", resume=True, progress=False), out

    return check
