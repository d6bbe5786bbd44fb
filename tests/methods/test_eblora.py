"""EBLoRA: factor init, GPM growth, Riemannian Adam on the (restricted) Stiefel manifold,
balanced spectra, frozen earlier updates, smoke run and resume."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import janus.methods.eblora  # noqa: F401  (registers the method)
from janus.core import geometry as geo
from janus.core.config import LoRAConfig, ModelConfig, apply_overrides, profile
from janus.core.errors import ConfigError
from janus.core.geometry import grown_basis
from janus.methods.eblora import EBLoRA, initial_factors
from janus.model.continual import build_model
from janus.train.trainer import Observer, Run, run

SMALL = ModelConfig(source="config", img_size=16, patch_size=8, embed_dim=24, depth=2,
                    num_heads=2)


def orthonormal(g, rows, cols):
    return torch.linalg.qr(torch.randn(rows, cols, generator=g, dtype=torch.float64))[0]


def gram_error(X):
    G = X @ X.T if X.shape[0] < X.shape[1] else X.T @ X
    return float((G - torch.eye(G.shape[0], dtype=G.dtype)).abs().max())


def test_factor_init_is_the_restricted_top_r_svd_of_the_descent_direction():
    g = torch.Generator().manual_seed(0)
    P = orthonormal(g, 10, 3)
    G = torch.randn(6, 10, generator=g, dtype=torch.float64)
    U, Vt = initial_factors(G, P, 6, 2)
    assert gram_error(U) < 1e-12 and gram_error(Vt) < 1e-12
    assert float((Vt @ P).norm()) < 1e-12
    # Ky Fan: <-G_free, U Vt> is maximal (sum of the top-2 singular values) only for the top pair
    top = torch.linalg.svdvals(geo.safe_update(G, P))[:2].sum()
    assert float((-G * (U @ Vt)).sum()) == pytest.approx(float(top), rel=1e-12)
    # a rank-1 gradient and the random init still give r orthonormal rows outside span(P)
    for grad in (torch.outer(G[:, 0], P[:, 0] + G[0]), None):
        U, Vt = initial_factors(grad, P, 6, 2)
        assert gram_error(U) < 1e-12 and gram_error(Vt) < 1e-12
        assert float((Vt @ P).norm()) < 1e-12


def test_gpm_growth_keeps_the_fewest_directions_reaching_the_threshold():
    g = torch.Generator().manual_seed(1)
    Q = orthonormal(g, 8, 8)
    lam = torch.tensor([50, 20, 10, 5, 3, 1, 0.5, 0.5], dtype=torch.float64)  # sum 90
    C = Q @ torch.diag(lam) @ Q.T
    empty = torch.zeros(8, 0, dtype=torch.float64)
    P = grown_basis(empty, C, 0.9, 6)  # 50 + 20 + 10 + 5 = 85 >= 81 > 80
    top4 = Q[:, :4]
    assert P.shape == (8, 4)
    assert float((P @ P.T - top4 @ top4.T).norm()) < 1e-10
    assert grown_basis(P, C, 0.9, 6) is P  # already captures 85 >= 81: nothing added
    P2 = grown_basis(P, C, 0.99, 6)  # needs 89.1: 3 more directions, capped at 6 in all
    assert P2.shape == (8, 6) and gram_error(P2) < 1e-12
    torch.testing.assert_close(P2[:, :4], P, rtol=0, atol=1e-12)
    assert float((P2 @ P2.T - Q[:, :6] @ Q[:, :6].T).norm()) < 1e-10


def small_setup(seed=0):
    """A tiny model with a random protected subspace and a trained-looking magnitude."""
    torch.manual_seed(seed)
    cfg = apply_overrides(profile("smoke"), ["train.lr=0.05"])
    model = build_model(SMALL, LoRAConfig(rank=3, scale=0.7))
    method = EBLoRA(cfg, init="random", init_magnitude=0.5)
    method.setup(model)
    g = torch.Generator().manual_seed(seed)
    method.protected = [orthonormal(g, 24, 5) for _ in model.adapters]
    model.add_head(4)
    method.before_task(model, None)
    return model, method


def test_one_riemannian_adam_step():
    model, method = small_setup()
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(6, 3, 16, 16, generator=g), torch.randint(0, 4, (6,), generator=g)
    for a in model.adapters:  # dense reference: the fused weight's own gradient
        a.base.weight.requires_grad_(True)
    F.cross_entropy(model.heads[0](model.features(x)), y).backward()
    method.after_backward(model, None)
    for upd in method.updates:
        comp, P = upd.comp, method.protected[upd.block]
        adapter = model.adapters[upd.block]
        s = next(n for n in adapter.slices if adapter.components[n][-1] is comp)
        G = adapter.base.weight.grad[adapter.rows(s)].double()
        U, Vt, m = upd.U.detach().double(), comp.A.detach().double(), float(upd.m.detach())
        assert comp.B.grad is None  # B = m U is not stepped by the optimizer
        assert float(upd.m.grad) == pytest.approx(0.7 * float((G * (U @ Vt)).sum()), rel=1e-5)
        want_u = geo.stiefel_tangent_projection(U, 0.7 * m * G @ Vt.T)
        want_a = geo.restricted_tangent_projection(Vt, 0.7 * m * U.T @ G, P)
        torch.testing.assert_close(upd.U.grad.double(), want_u, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(comp.A.grad.double(), want_a, rtol=1e-5, atol=1e-7)
    opt = torch.optim.Adam(method.parameter_groups(model, None), lr=0.05)
    opt.step()
    raw_leak = max(float((u.comp.A.detach().double() @ method.protected[u.block]).norm())
                   for u in method.updates)
    assert raw_leak > 1e-3  # Adam's rescaling leaves the restricted tangent space (ERRATA B1)
    method.after_step(model, None)
    for upd in method.updates:
        A = upd.comp.A.detach().double()
        assert gram_error(A) < 1e-6 and gram_error(upd.U.detach().double()) < 1e-6
        assert float((A @ method.protected[upd.block]).norm()) < 1e-6 * math.sqrt(3)
        torch.testing.assert_close(upd.comp.B, upd.m.detach() * upd.U.detach())


class Checker(Observer):
    """After every optimizer step: the invariants of EBLoRA; earlier updates bit-identical."""

    def __init__(self):
        self.steps = self.protected_steps = 0

    def before_task(self, run, ctx):
        current = {id(u.comp) for u in run.method.updates}
        self.old = [(c, c.A.detach().clone(), c.B.detach().clone())
                    for c in run.model.lora_components() if id(c) not in current]
        assert len(self.old) == ctx.index * 2 * len(run.model.adapters)

    def after_step(self, run, ctx):
        method = run.method
        assert len(method.updates) == 2 * len(run.model.adapters)
        for upd in method.updates:
            A, U = upd.comp.A.detach().double(), upd.U.detach().double()
            assert gram_error(A) < 1e-6 and gram_error(U) < 1e-6
            torch.testing.assert_close(upd.comp.B, upd.m.detach() * upd.U.detach())
            if ctx.index > 0:
                P = method.protected[upd.block]
                assert P.shape[1] > 0
                assert float((A @ P).norm()) < 1e-6 * float(A.norm())
                self.protected_steps += 1
            s = upd.comp.scale * abs(float(upd.m.detach()))
            sv = torch.linalg.svdvals(upd.comp.delta_weight().detach().double())
            r = upd.comp.rank
            assert s > 0
            assert float((sv[:r] - s).abs().max()) < 1e-5 * s
            assert float(sv[r:].max()) < 1e-5 * s
        for comp, a, b in self.old:
            assert not comp.A.requires_grad and torch.equal(comp.A, a) and torch.equal(comp.B, b)
        self.steps += 1


def test_invariants_hold_after_every_step_of_a_smoke_run(tmp_path):
    cfg = apply_overrides(profile("smoke"), ["method.name=eblora", "train.epochs=1"])
    checker = Checker()
    record = Run(cfg, tmp_path, progress=False, observers=[checker]).execute(resume=False)
    assert checker.steps == sum(t["steps"] for t in record["tasks"]) > 0
    assert checker.protected_steps > 0


def test_smoke_run_is_finite(tmp_path):
    """(Resume is tests/test_trainer.py's test, run for every registered method.)"""
    cfg = apply_overrides(profile("smoke"), ["method.name=eblora", "train.epochs=1"])
    assert all(np.isfinite(v) for v in run(cfg, tmp_path, progress=False)["metrics"].values())


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"threshold": 0.0}, r"threshold=0.0 is out of range: it must be > 0 and <= 1"),
        ({"threshold": 1.5}, r"threshold=1.5 is out of range"),
        ({"init": "svd"}, r"init='svd' is not 'gradient' \| 'random'"),
        ({"init_batches": 0}, r"init_batches=0 is out of range: it must be >= 1"),
        ({"init_batches": 2.5}, r"init_batches=2.5 is not int"),
        ({"magnitude_lr": 0.0}, r"magnitude_lr=0.0 is out of range: it must be > 0"),
        ({"rank": 3}, "has no parameter"),
    ],
)
def test_bad_parameters(params, message):
    with pytest.raises(ConfigError, match=message):
        EBLoRA(profile("smoke"), **params)


def test_rank_must_leave_room_for_protection():
    model = build_model(SMALL, LoRAConfig(rank=24))
    with pytest.raises(ConfigError, match="lora.rank < width"):
        EBLoRA(profile("smoke")).setup(model)
