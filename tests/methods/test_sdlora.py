"""SD-LoRA, SD-LoRA-RR and SD-LoRA-KD against dense references (Eq. 4, 6, 7, 8)."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import janus.methods.sdlora  # noqa: F401  (registers the methods)
from janus.core import geometry as geo
from janus.core.config import LoRAConfig, ModelConfig, apply_overrides, profile
from janus.core.errors import ConfigError
from janus.methods.sdlora import SDLoRA
from janus.methods.sdlora_kd import SDLoRAKD
from janus.methods.sdlora_rr import SDLoRARR
from janus.model.continual import build_model
from janus.train.checkpoint import CHECKPOINT_NAME
from janus.train.trainer import Observer, Run, run_dir

SMALL = ModelConfig(source="config", img_size=16, patch_size=8, embed_dim=24, depth=2,
                    num_heads=2)
NAMES = ("sd-lora", "sd-lora-rr", "sd-lora-kd")


def task(t: int) -> SimpleNamespace:
    return SimpleNamespace(index=t)


def build(cls=SDLoRA, tasks=3, rank=3, scale=0.7, **params):
    """A small model with ``tasks`` SD-LoRA components per slice (B random, not zero)."""
    torch.manual_seed(0)
    cfg = profile("smoke")
    cfg.lora = LoRAConfig(rank=rank, scale=scale)
    model = build_model(SMALL, cfg.lora)
    method = cls(cfg, **params)
    method.setup(model)
    for t in range(tasks):
        method.before_task(model, task(t))
    return model, method


def dense_forward(adapter, x, alphas, norm):
    """``W0 x + sum_k alpha_k dir_k x`` per adapted slice, from geometry.sdlora_delta."""
    out = adapter.base(x)
    parts = list(out.split(adapter.slice_dim, dim=-1))
    for s in adapter.slices:
        comps = list(adapter.components[s])
        delta = geo.sdlora_delta(alphas, [c.A for c in comps], [c.B for c in comps], norm)
        i = adapter.rows(s).start // adapter.slice_dim
        parts[i] = parts[i] + x @ delta.T
    return torch.cat(parts, dim=-1)


def slice_pairs(model):
    return [(a, s) for a in model.adapters for s in a.slices]


# ---------------------------------------------------------------- Eq. 4


@pytest.mark.parametrize("norm", ["product", "factors"])
def test_forward_and_gradients_are_those_of_eq_4(norm):
    model, method = build(norm=norm)
    with torch.no_grad():
        method.alphas.copy_(torch.tensor([1.3, -0.4, 0.6]))
    x = torch.randn(5, 7, 24)
    for a in model.adapters:
        with torch.no_grad():
            torch.testing.assert_close(a(x), dense_forward(a, x, method.alphas, norm))
    # all magnitudes and the current factors, normalised by their own (differentiable)
    # product, get the dense form's gradients; the earlier factors are frozen
    a, s = slice_pairs(model)[0]
    comps = list(a.components[s])
    alphas = method.alphas.detach().clone().requires_grad_(True)
    A = comps[-1].A.detach().clone().requires_grad_(True)
    B = comps[-1].B.detach().clone().requires_grad_(True)
    delta = geo.sdlora_delta(alphas, [c.A for c in comps[:-1]] + [A],
                             [c.B for c in comps[:-1]] + [B], norm)
    (x @ delta.T).square().sum().backward()
    a.slice_delta(s, x).square().sum().backward()
    pairs = ((method.alphas.grad, alphas.grad), (comps[-1].A.grad, A.grad),
             (comps[-1].B.grad, B.grad))
    for got, want in pairs:
        assert want.norm() > 0
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    assert all(c.A.grad is None and c.B.grad is None for c in comps[:-1])


def test_code_option_raw_current_term_until_its_task_ends():
    """``current="raw"`` (official code): the component in training is alpha_t B_t A_t, the
    earlier ones alpha_k dir_k; after its task it is normalised too."""
    model, method = build(current="raw")
    a, s = slice_pairs(model)[0]
    comps = list(a.components[s])
    want = geo.sdlora_delta(method.alphas[:2], [c.A for c in comps[:2]],
                            [c.B for c in comps[:2]], "product")
    want = want + method.alphas[2] * comps[2].B @ comps[2].A
    torch.testing.assert_close(a.delta_weight()[a.rows(s)], want)
    method.after_task(model, task(2))
    normalised = geo.sdlora_delta(method.alphas, [c.A for c in comps], [c.B for c in comps],
                                  "product")
    torch.testing.assert_close(a.delta_weight()[a.rows(s)], normalised)
    assert float((want - normalised).detach().norm()) > 1e-3


def code_qkv(adapter, x, saved, prev_alphas, current, alpha):
    """The official code's qkv forward, written out from a reading of it
    (WuYichen-97/SD-Lora-CL@8bacded ``backbone/lora.py``, ``_LoRA_qkv_timm_train.forward``,
    lines 153-195): ``qkv(x)`` plus, on Q and V, ``sum_i prev_i B_i A_i x / (||B_i|| ||A_i||)``
    over the earlier tasks' saved factors and ``alpha B A x`` for the task in training.
    ``saved``: per earlier task ``{slice: (A, B)}``; ``current``: ``{slice: (A, B)}``."""
    d = adapter.slice_dim
    qkv = adapter.base(x).clone()
    for s, cols in (("q", slice(0, d)), ("v", slice(2 * d, 3 * d))):
        new = 0
        for i, factors in enumerate(saved):
            A, B = factors[s]
            new = new + prev_alphas[i] * (x @ A.T @ B.T) / (B.norm() * A.norm())
        A, B = current[s]
        qkv[..., cols] += new + alpha * (x @ A.T @ B.T)
    return qkv


def test_code_protocol_preset_runs_the_official_forward(tmp_path):
    """The ``sd-lora-code`` preset, checked against :func:`code_qkv` over 3 tasks: every
    magnitude restarts at 0.8 and the new B at zero each task; the task's term is un-normalised
    while it trains and in the evaluation after it, divided by ``||B|| ||A||`` from the next
    task on."""
    from janus.experiments.variants import SDLORA_CODE

    sets = [f"method.params.{k}={v}" for k, v in SDLORA_CODE.params.items()]
    cfg = apply_overrides(profile("smoke"), ["method.name=sd-lora", *SDLORA_CODE.overrides,
                                             "train.epochs=1", "data.num_tasks=3",
                                             "data.num_classes=9", *sets])
    assert cfg.train.optimizer == "sgd" and cfg.lora.targets == ("q", "v")
    x = torch.randn(2, 5, cfg.model.embed_dim, generator=torch.Generator().manual_seed(3))
    seen = {"learned": []}

    def factors(adapter, k):
        return {s: (c.A.detach(), c.B.detach()) for s, c in adapter.task_components(k).items()}

    def check(run, t, raw_alphas=None):
        m, a = run.method, run.model.adapters[1]
        alphas = m.alphas.detach() if raw_alphas is None else raw_alphas
        want = code_qkv(a, x, [factors(a, k) for k in range(t)], alphas[:t], factors(a, t),
                        alphas[t])
        with torch.no_grad():
            torch.testing.assert_close(a(x), want, rtol=1e-5, atol=1e-6)

    class Probe(Observer):
        def before_task(self, run, ctx):
            t = ctx.index
            assert torch.equal(run.method.alphas.detach(), torch.full((t + 1,), 0.8))
            assert all(c.B.abs().sum() == 0 for c in run.model.task_components(t)[0].values())
            check(run, t)

        def after_task(self, run, ctx):  # what the evaluation after the task sees
            t = ctx.index
            assert run.method.magnitudes.raw == t
            seen["learned"].append(run.method.alphas.detach().clone())
            check(run, t)

    r = Run(cfg, tmp_path, progress=False, observers=[Probe()])
    r.start()
    r.train_tasks(save=False)
    first, second = seen["learned"][1], seen["learned"][2]
    assert not torch.allclose(first[:1], torch.tensor([0.8]))  # learned, then reset to 0.8
    assert not torch.allclose(second[:2], torch.full((2,), 0.8))


def test_dense_update_and_merge_include_the_magnitudes():
    """delta_weight() (read by merge() and the Fig. 2 violation probe) is Eq. 4's update."""
    model, method = build()
    with torch.no_grad():
        method.alphas.copy_(torch.tensor([1.3, -0.4, 0.6]))
    a = model.adapters[0]
    dense = a.delta_weight()
    for s in a.slices:
        comps = list(a.components[s])
        want = geo.sdlora_delta(method.alphas, [c.A for c in comps], [c.B for c in comps],
                                "product")
        torch.testing.assert_close(dense[a.rows(s)], want)
    x = torch.randn(5, 7, 24)
    with torch.no_grad():
        before = a(x)
        a.merge()
        torch.testing.assert_close(a(x), before)
    assert not list(a.iter_components())


def test_one_magnitude_set_for_all_projections():
    model, method = build(tasks=2)
    assert method.alphas.shape == (2,)
    assert all(len(a.components[s]) == 2 for a, s in slice_pairs(model))
    assert method.alphas.tolist() == pytest.approx([0.8, 0.8])
    groups = method.parameter_groups(model, task(1))
    params = {id(p) for g in groups for p in g["params"]}
    assert id(method.alphas) in params
    for a, s in slice_pairs(model):
        old, new = a.components[s]
        assert id(new.A) in params and id(new.B) in params
        assert id(old.A) not in params and id(old.B) not in params


class Snapshot(Observer):
    """The current components right after the method's ``before_task``."""

    def before_task(self, run, ctx):
        self.start = [(c.A.detach().clone(), c.B.detach().clone())
                      for c in run.model.lora_components()]
        self.alphas = run.method.alphas.detach().clone()


def test_task_2_freezes_directions_and_trains_magnitudes_and_the_new_pair(tmp_path):
    cfg = apply_overrides(profile("smoke"), ["method.name=sd-lora", "train.epochs=1"])
    snap = Snapshot()
    r = Run(cfg, tmp_path, progress=False, observers=[snap])
    r.start()
    r.train_tasks(1, save=False)
    r.train_tasks(2, save=False)
    alphas = r.method.alphas.detach()
    assert torch.equal(snap.alphas, torch.tensor([float(snap.alphas[0]), 0.8]))
    assert (alphas != snap.alphas).all()  # alpha_1 and alpha_2 both learned during task 2
    for i, (a, s) in enumerate(slice_pairs(r.model)):
        old, new = a.components[s]
        (A0, B0), (A1, B1) = snap.start[2 * i : 2 * i + 2]  # per slice: old, then new
        assert torch.equal(old.A, A0) and torch.equal(old.B, B0)
        assert not torch.equal(new.A, A1) and not torch.equal(new.B, B1)


# ---------------------------------------------------------------- Table 4 ablations


def three_tasks(tmp_path, **params):
    sets = [f"method.params.{k}={v}" for k, v in params.items()]
    cfg = apply_overrides(profile("smoke"), ["method.name=sd-lora", "train.epochs=1", *sets])
    snaps = []

    class Each(Observer):
        def before_task(self, run, ctx):
            snaps.append(([(c.A.detach().clone(), c.B.detach().clone())
                           for c in run.model.lora_components()],
                          run.method.alphas.detach().clone()))

    r = Run(cfg, tmp_path, progress=False, observers=[Each()])
    r.start()
    for t in range(3):
        r.train_tasks(t + 1, save=False)
    return r, snaps


@pytest.mark.parametrize("components", ["first", "single"])
def test_table4_rows_1_2_keep_one_direction_and_one_magnitude(tmp_path, components):
    r, snaps = three_tasks(tmp_path, components=components)
    comps = r.model.lora_components()
    assert all(len(a.components[s]) == 1 for a, s in slice_pairs(r.model))
    assert r.method.alphas.shape == (1,)
    (start, alpha_start), end = snaps[2], [(c.A, c.B) for c in comps]
    moved = [not torch.equal(a0, a1) for (a0, _), (a1, _) in zip(start, end, strict=True)]
    assert all(moved) if components == "single" else not any(moved)  # row 2 / row 1
    assert not torch.equal(r.method.alphas.detach(), alpha_start)  # alpha adapts in task 3


def test_table4_row_3_freezes_earlier_magnitudes(tmp_path):
    r, snaps = three_tasks(tmp_path, old_magnitudes="frozen")
    alphas = r.method.alphas.detach()
    _, alpha_start = snaps[2]
    assert torch.equal(alphas[:2], alpha_start[:2]) and alphas[2] != alpha_start[2]
    assert torch.equal(snaps[2][1][:1], snaps[1][1][:1])  # alpha_1 fixed since task 1 ended
    assert snaps[1][1][0] != 0.8  # ... at the value it learned then


# ---------------------------------------------------------------- Eq. 6


def test_rr_schedule_follows_eq_6_with_one_based_tasks():
    cfg = profile("smoke")
    cfg.lora = LoRAConfig(rank=10)
    assert [SDLoRARR(cfg).rank(t) for t in range(10)] == [10, 10, 10, 8, 8, 8, 8, 6, 6, 6]
    # the official code's commented-out schedule (0-based task >= 4, >= 8) is mu=5, nu=9
    code = SDLoRARR(cfg, mu=5, nu=9)
    assert [code.rank(t) for t in range(10)] == [10] * 4 + [8] * 4 + [6] * 2
    cfg.lora = LoRAConfig(rank=4)
    assert SDLoRARR(cfg).ranks == (4, 3, 2)  # 10/8/6 scaled by 4/10, rounded half up
    cfg.lora = LoRAConfig(rank=3)
    assert SDLoRARR(cfg).ranks == (3, 2, 2)
    assert SDLoRARR(cfg, ranks=[5, 2, 1]).ranks == (5, 2, 1)
    assert SDLoRA(cfg).rank(9) == 3


def test_rr_components_get_the_scheduled_ranks():
    model, _ = build(SDLoRARR, tasks=5, rank=5, mu=2, nu=4)
    for a, s in slice_pairs(model):
        assert [c.rank for c in a.components[s]] == [5, 4, 4, 3, 3]


# ---------------------------------------------------------------- Eq. 7-8


def outputs(model, x):
    with torch.no_grad():
        return [a(x) for a in model.adapters]


@pytest.mark.parametrize("norm", ["product", "factors"])
def test_kd_absorbs_a_rescaled_copy_exactly(norm):
    model, method = build(SDLoRAKD, tasks=3, norm=norm)
    with torch.no_grad():
        method.alphas.copy_(torch.tensor([1.1, 0.5, 0.7]))
        for a, s in slice_pairs(model):
            c0, _, c2 = a.components[s]
            c2.A.copy_(2.0 * c0.A)  # positive rescalings: the same direction, both norms
            c2.B.copy_(0.25 * c0.B)
    x = torch.randn(3, 5, 24)
    before = outputs(model, x)
    method.after_task(model, task(2))
    assert method.kd_log[-1]["absorbed"] and method.kd_log[-1]["residual"] < 1e-7
    assert method.alphas.tolist() == pytest.approx([1.1 + 0.7, 0.5])
    assert all(len(a.components[s]) == 2 for a, s in slice_pairs(model))
    for b, after in zip(before, outputs(model, x), strict=True):
        torch.testing.assert_close(after, b, rtol=1e-5, atol=1e-6)


def test_kd_absorbs_a_combination_with_corrected_eq_8():
    """dir_3 = (g1 dir_1 + g2 dir_2) / |g| in every projection (orthogonal unit directions on a
    shared orthonormal A): Eq. 7 gives c = g / |g|, Eq. 8 (corrected) alpha_k + alpha_3 c_k."""
    model, method = build(SDLoRAKD, tasks=3)
    g = torch.tensor([0.6, -1.7])
    alphas = torch.tensor([1.2, 0.9, 0.4])
    with torch.no_grad():
        method.alphas.copy_(alphas)
        for a, s in slice_pairs(model):
            c1, c2, c3 = a.components[s]
            A = torch.linalg.qr(torch.randn(24, 3)).Q.T  # orthonormal rows
            c1.A.copy_(A)
            c2.A.copy_(A)
            c2.B.sub_((c2.B * c1.B).sum() / c1.B.square().sum() * c1.B)  # <B1, B2> = 0
            c3.A.copy_(A)
            c3.B.copy_(g[0] * c1.B / c1.B.norm() + g[1] * c2.B / c2.B.norm())
    x = torch.randn(3, 5, 24)
    before = outputs(model, x)
    method.after_task(model, task(2))
    c = g / g.norm()
    assert method.kd_log[-1]["absorbed"]
    assert method.alphas.tolist() == pytest.approx((alphas[:2] + alphas[2] * c).tolist(),
                                                   rel=1e-5)
    for b, after in zip(before, outputs(model, x), strict=True):
        torch.testing.assert_close(after, b, rtol=1e-5, atol=1e-6)
    # the printed Eq. 8 (alpha_k + c_k) would change the output
    assert not torch.allclose(alphas[:2] + c, method.alphas.detach(), atol=1e-2)


def test_kd_keeps_a_new_direction_outside_the_span():
    model, method = build(SDLoRAKD, tasks=3)
    alphas = method.alphas.detach().clone()
    method.after_task(model, task(2))
    log = method.kd_log[-1]
    assert not log["absorbed"] and method.params.tau < log["residual"] <= 1
    assert torch.equal(method.alphas.detach(), alphas)
    assert all(len(a.components[s]) == 3 for a, s in slice_pairs(model))


def test_kd_residual_is_rms_over_projections():
    """Only one projection's new direction leaves the span: residual = its sine / sqrt(P)."""
    model, method = build(SDLoRAKD, tasks=2)
    pairs = slice_pairs(model)
    with torch.no_grad():
        for i, (a, s) in enumerate(pairs):
            c0, c1 = a.components[s]
            if i:
                c1.A.copy_(c0.A)
                c1.B.copy_(c0.B)
    a, s = pairs[0]
    d0, d1 = (geo.normalized_direction(c.A.detach(), c.B.detach()) for c in a.components[s])
    # with coefficient c for all projections: P - 1 exact copies pull c towards 1
    method.after_task(model, task(1))
    cos = float((d0 * d1).sum())
    P = len(pairs)
    c = (P - 1 + cos) / P  # least squares over the stacked directions
    expected = math.sqrt(((P - 1) * (1 - c) ** 2 + float((d1 - c * d0).square().sum())) / P)
    assert method.kd_log[-1]["residual"] == pytest.approx(expected, rel=1e-6)


# ---------------------------------------------------------------- runs


@pytest.mark.parametrize("name", NAMES)
def test_smoke_run_finishes_with_finite_metrics(tmp_path, name):
    cfg = apply_overrides(profile("smoke"), [f"method.name={name}", "train.epochs=1"])
    r = Run(cfg, run_dir(cfg, tmp_path), progress=False)
    record = r.execute(resume=False)
    assert record["status"] == "complete"
    assert all(np.isfinite(v) for v in record["metrics"].values() if isinstance(v, float))
    assert torch.isfinite(r.method.alphas).all()
    ranks = [c.rank for c in r.model.adapters[0].components["k"]]
    if name == "sd-lora-rr":
        assert ranks == [4, 4, 4, 3, 3]
    elif name == "sd-lora":
        assert ranks == [4] * 5
    else:
        assert [e["task"] for e in r.method.kd_log] == [1, 2, 3, 4]
        assert len(ranks) == 5 - sum(e["absorbed"] for e in r.method.kd_log)


def test_resume_after_every_direction_was_absorbed(resumed_after_crash):
    """tau = 1 absorbs every direction: resume of a model whose components were deleted
    (the other cases are tests/test_trainer.py's resume test, run for every method)."""
    cfg = apply_overrides(profile("smoke"), ["train.epochs=1", "method.name=sd-lora-kd",
                                             "method.params.tau=1.0"])
    reference, resumed, out = resumed_after_crash(cfg)
    assert resumed["accuracy_matrix"] == reference["accuracy_matrix"]
    state = torch.load(out / CHECKPOINT_NAME, weights_only=False)
    assert all(e["absorbed"] for e in state["method"]["kd_log"])
    # the magnitudes are model state: in its state dict and structure, not the method's
    assert len(state["model"]["magnitudes.alphas"]) == 1 and "alphas" not in state["method"]
    assert state["structure"]["magnitudes"] == "product"
    assert all(len(c) == 2 for c in state["structure"]["components"])  # K and V, 1 each


def test_bad_parameters():
    cfg = profile("smoke")
    with pytest.raises(ConfigError, match="current"):
        SDLoRA(cfg, current="scaled")
    with pytest.raises(ConfigError, match="components"):
        SDLoRA(cfg, components="two")
    with pytest.raises(ConfigError, match="old_magnitudes"):
        SDLoRA(cfg, components="single", old_magnitudes="frozen")
    with pytest.raises(ConfigError, match="norm"):
        SDLoRA(cfg, norm="spectral")
    with pytest.raises(ConfigError, match="b_init=zero needs current=raw"):
        SDLoRA(cfg, b_init="zero")
    with pytest.raises(ConfigError, match="magnitudes=reset needs"):
        SDLoRA(cfg, magnitudes="reset", components="first")
    with pytest.raises(ConfigError, match="alpha_init"):
        SDLoRA(cfg, alpha_init=float("nan"))
    with pytest.raises(ConfigError, match="tau"):
        SDLoRAKD(cfg, tau=-1e-3)
    with pytest.raises(ConfigError, match="mu=8 must be < nu=4"):
        SDLoRARR(cfg, mu=8, nu=4)
    with pytest.raises(ConfigError, match="ranks"):
        SDLoRARR(cfg, ranks=(4, 6, 2))
    with pytest.raises(ConfigError, match="no parameter"):
        SDLoRA(cfg, tau=1e-3)
    cfg.lora = LoRAConfig(scale=0.0)
    with pytest.raises(ConfigError, match="lora.scale"):
        SDLoRA(cfg)
