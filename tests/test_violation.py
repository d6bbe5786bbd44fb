"""The Fig. 2 null-space-violation probe against a direct computation on the tokens."""

import json
import math
from pathlib import Path

import pytest
import torch

from janus.analysis.violation import ViolationProbe, gram_root, measure_violation
from janus.core.config import apply_overrides, profile
from janus.train.trainer import Observer, Run


def test_gram_root_reproduces_the_token_norm():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(50, 7, generator=g)  # tokens x d_in
    dW = torch.randn(5, 7, generator=g)
    R = gram_root(X.T @ X)
    torch.testing.assert_close(R @ R.T, X.T @ X, rtol=1e-5, atol=1e-4)
    assert float((dW @ R).norm()) == pytest.approx(float((dW @ X.T).norm()), rel=1e-5)


class DirectViolation(Observer):
    """Reference: keeps every held-out token and every component, no Gram matrices."""

    def __init__(self, images_per_task):
        self.n = images_per_task
        self.tokens = None
        self.steps = {}

    @torch.no_grad()
    def before_task(self, run, ctx):
        self.tokens = None
        if ctx.index == 0:
            return
        seen = [[] for _ in run.model.adapters]
        hooks = [a.register_forward_hook(
            lambda m, i, o, j=j: seen[j].append(i[0].reshape(-1, m.in_features).clone()))
            for j, a in enumerate(run.model.adapters)]
        run.model.eval()
        with torch.random.fork_rng(devices=[]):
            for t in range(ctx.index):
                test = run.task(t).test
                images = torch.stack([test[i][0] for i in range(self.n)])
                run.model.features(images)
        run.model.train()
        for h in hooks:
            h.remove()
        self.tokens = [torch.cat(x) for x in seen]

    def weights(self, run):
        return {(b, c_slice): sum(c.scale * c.B @ c.A for c in a.components[c_slice]).detach()
                for b, a in enumerate(run.model.adapters) for c_slice in a.slices}

    def before_step(self, run, ctx):
        if self.tokens is not None:
            self.before = self.weights(run)

    def after_step(self, run, ctx):
        if self.tokens is None:
            return
        for (b, s), w in self.weights(run).items():
            dw = w - self.before[(b, s)]
            x = self.tokens[b]
            v = float((dw @ x.T).norm())
            rel = v / (float(dw.norm()) * float(x.norm()))
            self.steps.setdefault((ctx.index, b, s), []).append((v, rel))


def test_probe_matches_direct_computation():
    cfg = apply_overrides(profile("smoke"), ["method.name=janus-lora", "train.epochs=1",
                                             "data.num_tasks=5", "method.params.dml=False"])
    probe, direct = ViolationProbe(images_per_task=5), DirectViolation(5)
    run = Run(cfg, Path("."), progress=False, observers=[probe, direct])
    run.start()
    run.train_tasks(3, save=False)
    rows = probe.summary()
    assert {(r["task"], r["block"], r["slice"]) for r in rows} == set(direct.steps)
    for r in rows:
        ref = direct.steps[(r["task"], r["block"], r["slice"])]
        assert r["steps"] == len(ref) > 0
        assert r["violation"] == pytest.approx(sum(v for v, _ in ref) / len(ref), rel=1e-4)
        assert r["relative_violation"] == pytest.approx(
            sum(x for _, x in ref) / len(ref), rel=1e-4)
        assert 0 < r["relative_violation"] <= 1


def test_probe_does_not_change_the_run(tmp_path):
    cfg = apply_overrides(profile("smoke"), ["method.name=janus-lora", "train.epochs=1",
                                             "data.num_tasks=5"])
    rec = measure_violation(cfg, tasks=3, images_per_task=4, progress=False)
    plain = Run(cfg, tmp_path, progress=False)
    plain.method.setup(plain.model)
    accs = []
    for t in range(3):
        plain.train_task(t)
        accs.append(plain.evaluate(t)[0])
    assert rec["accuracy"] == accs
    assert {r["task"] for r in rec["violation"]} == {1, 2}
    assert all(math.isfinite(r["violation"]) for r in rec["violation"])


def test_measure_violation_needs_two_tasks():
    with pytest.raises(ValueError, match="tasks must lie in 2..5"):
        measure_violation(profile("smoke"), tasks=1, progress=False)


def test_measurements_are_reused_and_protected(tmp_path, monkeypatch):
    from janus.analysis import violation
    from janus.core.errors import JanusError

    cfg = apply_overrides(profile("smoke"), ["train.max_steps_per_task=2", "data.num_tasks=5"])
    path = tmp_path / "m.json"
    first = violation.measure_or_load(cfg, 2, path, images_per_task=2, progress=False)
    monkeypatch.setattr(violation, "measure_violation", None)  # a second measurement would fail
    again = violation.measure_or_load(cfg, 2, path, images_per_task=2, progress=False)
    assert again == json.loads(json.dumps(first))
    with pytest.raises(JanusError, match="other settings"):
        violation.measure_or_load(cfg, 3, path, images_per_task=2, progress=False)
