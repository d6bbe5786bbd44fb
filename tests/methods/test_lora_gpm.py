"""LoRA-GPM: the offline GPM basis after each task, the projected input-side gradient, GR as
a plug-in (Janus-LoRA Fig. 6)."""

import pytest
import torch

from janus.core.config import apply_overrides, profile
from janus.core.errors import ConfigError
from janus.methods.activations import input_grams
from janus.methods.lora_gpm import LoRAGPM
from janus.train.trainer import Observer, Run


class Grads(Observer):
    """The factor gradients the optimiser receives in task 2, and the basis they used."""

    def __init__(self):
        self.seen = []

    def before_step(self, run, ctx):
        if ctx.index == 1 and ctx.step == 0:
            self.seen = [(c.A.grad.clone(), c.B.grad.clone(), i)
                         for i, a in enumerate(run.model.adapters)
                         for c in (a.components[s][0] for s in a.slices)]
            self.basis = [h.clone() for h in run.method.history]


def two_tasks(tmp_path, *sets):
    cfg = apply_overrides(profile("smoke"), ["method.name=lora-gpm", "train.epochs=1", *sets])
    grads = Grads()
    run = Run(cfg, tmp_path, progress=False, observers=[grads])
    run.start()
    run.train_tasks(1, save=False)
    first = [h.clone() for h in run.method.history]
    task = run.task(0)
    grams = input_grams(run.model, run.stream.eval_loader(task.train_plain), torch.float64)
    run.train_tasks(2, save=False)
    return run, grads, first, grams


def test_gpm_basis_captures_the_threshold_energy_and_a_is_projected(tmp_path):
    run, grads, first, grams = two_tasks(tmp_path)
    for M, C in zip(first, grams, strict=True):
        M = M.double()
        assert torch.allclose(M.T @ M, torch.eye(M.shape[1], dtype=M.dtype), atol=1e-5)
        captured = float(torch.trace(M.T @ C @ M) / torch.trace(C))
        assert captured >= 0.97 - 1e-6  # eps_0 = 0.97 (GPM)
        # the fewest such directions: one column fewer would not reach it
        assert float(torch.trace(M[:, :-1].T @ C @ M[:, :-1]) / torch.trace(C)) < 0.97
    assert all(torch.equal(a, b) for a, b in zip(grads.basis, first, strict=True))
    for ga, gb, i in grads.seen:
        # A: projected (float32 rounding of a basis of up to d columns leaves ~1e-5 of it;
        # an unprojected gradient, whose rows lie in the inputs' span, keeps most of its norm)
        assert float((ga @ first[i]).norm()) < 1e-4 * float(ga.norm()) + 1e-9
        assert float(gb.norm()) > 0  # B: left alone (the leak GR removes)
    for old, new in zip(first, run.method.history, strict=True):
        assert new.shape[1] >= old.shape[1]  # grown, not replaced


def test_gr_plug_in_rectifies_instead(tmp_path):
    _, plain, first, _ = two_tasks(tmp_path / "a")
    _, rectified, _, _ = two_tasks(tmp_path / "b", "method.params.gr=True")
    diffs = [float((p[1] - r[1]).norm()) for p, r in zip(plain.seen, rectified.seen, strict=True)]
    assert max(diffs) > 0  # GR changes B's gradient too


def test_bad_parameters_and_only_its_own():
    """LoRA-GPM lists only what it uses: Janus-LoRA's OE / DML switches are not its
    parameters (it once inherited them, five of which did nothing)."""
    cfg = profile("smoke")
    assert list(LoRAGPM.defaults) == ["gr", "gamma", "threshold", "threshold_step"]
    for janus_only in ("oe", "k", "oe_lr", "memory", "max_rank", "dml"):
        with pytest.raises(ConfigError, match=f"has no parameter.*{janus_only}"):
            LoRAGPM(cfg, **{janus_only: None})
    with pytest.raises(ConfigError, match="threshold"):
        LoRAGPM(cfg, threshold=1.5)
