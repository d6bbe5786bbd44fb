"""Janus-LoRA against dense references: GR of the safe gradient, OE, DML."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from janus import geometry as geo
from janus.config import LoRAConfig, ModelConfig, apply_overrides, profile
from janus.errors import ConfigError
from janus.methods.janus_lora import JanusLoRA
from janus.model import build_model
from janus.trainer import run

SMALL = ModelConfig(source="config", img_size=16, patch_size=8, embed_dim=24, depth=2,
                    num_heads=2)


def setup(seed=0, **params):
    torch.manual_seed(seed)
    cfg = profile("smoke")
    model = build_model(SMALL, LoRAConfig(rank=3, scale=0.7))
    method = JanusLoRA(cfg, **{"k": 5, **params})
    method.setup(model)
    model.add_head(4)
    for comp in model.lora_components():  # a trained-looking pair: B != 0
        torch.nn.init.normal_(comp.B, std=0.3)
    return model, method


def backward(model, method, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(6, 3, 16, 16, generator=g)
    y = torch.randint(0, 4, (6,), generator=g)
    for a in model.adapters:  # dense reference: the fused weight's own gradient
        a.base.weight.requires_grad_(True)
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model.heads[0](model.features(x)), y).backward()


@pytest.mark.parametrize("with_history", [True, False])
def test_gr_equals_dense_rectification_of_the_safe_gradient(with_history):
    model, method = setup(gamma=1e-3)
    if with_history:
        method.history = [geo.qr_retraction(torch.randn(24, 5)) for _ in model.adapters]
    method.before_task(model, None)
    backward(model, method)
    expected = {}
    for i, a in enumerate(model.adapters):
        for s in a.slices:
            comp = a.components[s][0]
            g_w = a.base.weight.grad[a.rows(s)]
            # the raw factor gradients are the chain rule of the dense one (Eq. 4, corrected)
            ga, gb = geo.lora_factor_gradients(g_w, comp.A.detach(), comp.B.detach(), comp.scale)
            torch.testing.assert_close(comp.A.grad, ga, rtol=1e-5, atol=1e-7)
            torch.testing.assert_close(comp.B.grad, gb, rtol=1e-5, atol=1e-7)
            target = geo.safe_update(g_w, method.history[i]) if with_history else g_w
            expected[i, s] = geo.rectify_factor_updates(
                target.double(), comp.A.detach().double(), comp.B.detach().double(),
                comp.scale, 1e-3,
            )
    method.after_backward(model, None)
    for i, a in enumerate(model.adapters):
        for s in a.slices:
            comp = a.components[s][0]
            for got, want in zip((comp.A.grad, comp.B.grad), expected[i, s], strict=True):
                rel = float((got.double() - want).norm() / want.norm())
                assert rel < 1e-5, rel


def test_safe_projection_matters_and_rectified_update_spares_the_basis():
    """With a history, A's rectified gradient has no component in span(V): dA V = 0."""
    model, method = setup(gamma=1e-3)
    method.history = [geo.qr_retraction(torch.randn(24, 5)) for _ in model.adapters]
    method.before_task(model, None)
    backward(model, method)
    raw = {id(c): c.A.grad.clone() for c in model.lora_components()}
    method.after_backward(model, None)
    for a, v in zip(model.adapters, method.history, strict=True):
        for s in a.slices:
            comp = a.components[s][0]
            assert float((comp.A.grad @ v).norm()) < 1e-5 * float(comp.A.grad.norm())
            assert float((raw[id(comp)] @ v).norm()) > 1e-2 * float(raw[id(comp)].norm())


def test_oe_only_projects_a_and_leaves_b():
    model, method = setup(gr=False)
    method.history = [geo.qr_retraction(torch.randn(24, 5)) for _ in model.adapters]
    method.before_task(model, None)
    backward(model, method)
    before = {id(c): (c.A.grad.clone(), c.B.grad.clone()) for c in model.lora_components()}
    method.after_backward(model, None)
    for a, v in zip(model.adapters, method.history, strict=True):
        for s in a.slices:
            comp = a.components[s][0]
            ga, gb = before[id(comp)]
            torch.testing.assert_close(comp.A.grad, ga - ga @ v @ v.T)
            assert torch.equal(comp.B.grad, gb)


def test_oe_step_follows_eq_9_10_on_the_captured_tokens():
    model, method = setup(gr=False, dml=False)
    method.before_task(model, None)
    v0 = [v.clone() for v in method.online]
    backward(model, method)
    xs = [cap.x.clone() for cap in method.captures]
    method.after_backward(model, None)
    for v_before, v_after, x in zip(v0, method.online, xs, strict=True):
        assert x.shape == (6 * 5, 24)  # all tokens (4 patches + cls) of the 6 images
        want = geo.online_estimation_step(v_before, x, 1.0 / float(x.pow(2).sum()))
        torch.testing.assert_close(v_after, want)
        torch.testing.assert_close(v_after.T @ v_after, torch.eye(5), atol=1e-6, rtol=0)


def test_dml_matches_a_direct_computation():
    _, method = setup(tau=0.1, margin=0.2)
    g = torch.Generator().manual_seed(3)
    feats = torch.randn(7, 24, generator=g)
    y = torch.tensor([0, 2, 2, 0, 3, 3, 3])
    method.old_prototypes = F.normalize(torch.randn(4, 24, generator=g), dim=-1)
    z = [f / f.norm() for f in feats]
    classes = [0, 2, 3]
    protos = {}
    for c in classes:
        m = sum(z[i] for i in range(7) if y[i] == c)
        protos[c] = m / m.norm()
    contrastive = 0.0
    for i in range(7):
        logits = [float(z[i] @ protos[c]) / 0.1 for c in classes]
        contrastive += -(logits[classes.index(int(y[i]))] - math.log(sum(map(math.exp, logits))))
    hinge = np.mean([max(0.0, float(z[i] @ p) - 0.2) for i in range(7)
                     for p in method.old_prototypes])
    want = contrastive / 7 + hinge
    assert float(method.dml_loss(feats, y)) == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize(
    "flags", [{}, {"oe": False}, {"gr": False}, {"dml": False}, {"memory": "union"}]
)
def test_smoke_runs_and_keeps_bases_orthonormal(tmp_path, flags):
    cfg = apply_overrides(profile("smoke"), ["method.name=janus-lora", "train.epochs=1",
                                             "data.num_tasks=4"])
    cfg.method.params = dict(flags)
    record = run(cfg, tmp_path, progress=False)
    assert np.isfinite(record["metrics"]["acc"])
    state = torch.load(next(tmp_path.rglob("checkpoint.pt")), weights_only=False)["method"]
    for v in state["online"] + [h for h in state["history"] if h is not None]:
        err = float((v.T @ v - torch.eye(v.shape[1])).abs().max())
        assert err < 1e-6
    if flags.get("memory") == "union":
        assert state["history"][0].shape[1] > state["online"][0].shape[1]


def test_bad_parameters():
    with pytest.raises(ConfigError, match=r"exact_safe=True needs a protected basis \(oe=True\)"):
        JanusLoRA(profile("smoke"), exact_safe=True, oe=False)
    with pytest.raises(ConfigError, match="memory"):
        JanusLoRA(profile("smoke"), memory="all")
    model = build_model(SMALL, LoRAConfig(rank=2))
    with pytest.raises(ConfigError, match="k=24"):
        JanusLoRA(profile("smoke"), k=24).setup(model)


def test_exact_safe_step_leaves_the_protected_subspace_untouched():
    """After a real Adam step the exact weight change of every slice vanishes on span(V)."""
    model, method = setup(gamma=1e-3, exact_safe=True, dml=False)
    method.history = [geo.qr_retraction(torch.randn(24, 5)) for _ in model.adapters]
    method.before_task(model, None)
    opt = torch.optim.Adam([p for c in model.lora_components() for p in (c.A, c.B)], lr=1e-2)
    before = [a.delta_weight().detach().clone() for a in model.adapters]
    backward(model, method)
    method.after_backward(model, None)
    opt.step()
    raw = [a.delta_weight().detach() - b for a, b in zip(model.adapters, before, strict=True)]
    method.after_step(model, None)
    for a, b, r, v in zip(model.adapters, before, raw, method.history, strict=True):
        dw = a.delta_weight().detach() - b
        assert float(dw.norm()) > 0
        assert float((dw @ v).norm()) < 1e-5 * float(dw.norm())
        assert float((r @ v).norm()) > 1e-2 * float(r.norm())  # Adam alone is not safe


def test_all_switches_off_is_plain_lora_finetuning(tmp_path):
    """Table 1 row 1 (no OE, GR, DML) is the Finetune baseline, step for step."""
    base = ["train.epochs=1", "data.num_tasks=4"]
    off = ["method.name=janus-lora", "method.label=janus-off", "method.params.oe=False",
           "method.params.gr=False", "method.params.dml=False"]
    janus = run(apply_overrides(profile("smoke"), base + off), tmp_path, progress=False)
    plain = run(apply_overrides(profile("smoke"), base), tmp_path, progress=False)
    assert janus["accuracy_matrix"] == plain["accuracy_matrix"]
    assert (tmp_path / "smoke" / "synthetic-T4" / "janus-off" / "seed0" / "record.json").is_file()
