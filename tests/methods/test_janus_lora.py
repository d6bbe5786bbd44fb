"""Janus-LoRA against dense references written out from the paper's equations (float64,
not the library's own formulas): GR of the safe gradient (Thm 3.1 Eq. 3, Eq. 30 / 38), OE
(Eq. 8-10, gradient by autograd), DML (Eq. 11); LoRA scale, DML defaults, union memory."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from janus.core import geometry as geo
from janus.core.config import PROFILES, LoRAConfig, ModelConfig, apply_overrides, profile
from janus.core.errors import ConfigError
from janus.methods.activations import input_grams
from janus.methods.janus_lora import JanusLoRA, union_basis
from janus.methods.rectification import rectified_gradients
from janus.model.continual import build_model
from janus.model.lora import LoRAComponent
from janus.train.trainer import run

F64 = torch.float64

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


def dense_gr(target, A, B, s, gamma):
    """GR written out in its gamma form (float64): Eq. 30 (with the factor s, ERRATA E2)
    (s^2 B^T B + gamma I) dA = s B^T target, Eq. 33 R = target - s B dA, Eq. 38
    dB = s R A^T (s^2 A A^T + gamma I)^-1 -- the library's delta = gamma / s^2 form is not used."""
    eye = torch.eye(A.shape[0], dtype=F64)
    dA = torch.linalg.solve(s**2 * B.T @ B + gamma * eye, s * B.T @ target)
    R = target - s * B @ dA
    dB = s * R @ A.T @ torch.linalg.inv(s**2 * A @ A.T + gamma * eye)
    return dA, dB


@pytest.mark.parametrize("with_history", [True, False])
def test_gr_equals_dense_rectification_of_the_safe_gradient(with_history):
    model, method = setup(gamma=1e-2)
    if with_history:
        method.history = [geo.qr_retraction(torch.randn(24, 5)) for _ in model.adapters]
    method.before_task(model, None)
    backward(model, method)
    expected = {}
    for i, a in enumerate(model.adapters):
        for s in a.slices:
            comp = a.components[s][0]
            sc = comp.scale
            g_w = a.base.weight.grad[a.rows(s)].double()
            A, B = comp.A.detach().double(), comp.B.detach().double()
            # the raw factor gradients are the chain rule of the dense one (Eq. 4, corrected)
            torch.testing.assert_close(comp.A.grad.double(), sc * B.T @ g_w, rtol=1e-5, atol=1e-7)
            torch.testing.assert_close(comp.B.grad.double(), sc * g_w @ A.T, rtol=1e-5, atol=1e-7)
            if with_history:  # Thm 3.1, Eq. 3: G_W (I - V V^T) with the dense projector
                v = method.history[i].double()
                target = g_w @ (torch.eye(24, dtype=F64) - v @ v.T)
            else:
                target = g_w
            expected[i, s] = dense_gr(target, A, B, sc, 1e-2)
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


def dense_oe_step(V, X, lr):
    """Eq. 8-10 written out (float64): the gradient of 1/2 ||X - X V V^T||_F^2 by autograd,
    one step V - lr grad, then the Q of the thin QR with diag(R) >= 0."""
    V = V.double().requires_grad_(True)
    X = X.double()
    (grad,) = torch.autograd.grad(0.5 * (X - X @ V @ V.T).pow(2).sum(), V)
    Q, R = torch.linalg.qr(V.detach() - lr * grad)
    return Q * torch.sign(torch.diagonal(R))


def test_oe_step_follows_eq_9_10_on_the_captured_tokens():
    model, method = setup(gr=False, dml=False)
    method.before_task(model, None)
    v0 = [v.clone() for v in method.online]
    backward(model, method)
    xs = [cap.inputs.clone() for cap in method.protection.captures]
    method.after_backward(model, None)
    for v_before, v_after, x in zip(v0, method.online, xs, strict=True):
        assert x.shape == (6 * 5, 24)  # all tokens (4 patches + cls) of the 6 images
        want = dense_oe_step(v_before, x, 1.0 / float(x.double().pow(2).sum()))
        assert float((want - v_before.double()).norm()) > 1e-2  # the step is not negligible
        torch.testing.assert_close(v_after.double(), want, rtol=0, atol=1e-5)
        torch.testing.assert_close(v_after.T @ v_after, torch.eye(5), atol=1e-6, rtol=0)


@pytest.mark.parametrize("params, tau, margin", [({"tau": 0.1, "margin": 0.2}, 0.1, 0.2),
                                                 ({}, 0.07, 0.3)], ids=["set", "defaults"])
def test_dml_matches_a_direct_computation(params, tau, margin):
    _, method = setup(**params)
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
        logits = [float(z[i] @ protos[c]) / tau for c in classes]
        contrastive += -(logits[classes.index(int(y[i]))] - math.log(sum(map(math.exp, logits))))
    hinge = np.mean([max(0.0, float(z[i] @ p) - margin) for i in range(7)
                     for p in method.old_prototypes])
    want = contrastive / 7 + hinge
    assert float(method.dml_loss(feats, y)) == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_dml_defaults_are_the_papers(name):
    """Sec. 4.1: margin m = 0.3, lambda_DML = 1, tau = 0.07 (no benchmark overrides them)."""
    assert {k: JanusLoRA.defaults[k] for k in ("tau", "margin", "lambda_dml")} == {
        "tau": 0.07, "margin": 0.3, "lambda_dml": 1.0}
    method = JanusLoRA(profile(name))
    assert (method.params.tau, method.params.margin, method.params.lambda_dml) == (
        0.07, 0.3, 1.0)


def test_loss_adds_dml_with_weight_one_by_default():
    model, method = setup()
    ctx = SimpleNamespace(index=0, label_offset=0)
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(5, 3, 16, 16, generator=g), torch.tensor([0, 1, 1, 3, 0])
    with torch.no_grad():
        feats = model.features(x)
        ce = F.cross_entropy(model.heads[0](feats), y)
        method.old_prototypes = F.normalize(torch.randn(2, 24, generator=g), dim=-1)
        want = ce + 1.0 * method.dml_loss(feats, y)
        torch.testing.assert_close(method.loss(model, x, y, ctx), want)


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
        for h, e in zip(state["history"], state["energy"], strict=True):  # U^T H U, PSD
            assert e.shape == (h.shape[1], h.shape[1])
            assert float(torch.linalg.eigvalsh((e + e.T) / 2)[0]) > -1e-6


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


# ---------------------------------------------------------------- LoRA scale s


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_default_lora_scale_is_one(name):
    """s = 1 (docs/interpretations.md, "LoRA scale s = 1"), in every profile, on every
    component Janus-LoRA trains."""
    assert LoRAConfig().scale == 1.0
    assert profile(name).lora.scale == 1.0
    model = build_model(SMALL, LoRAConfig(rank=2))
    JanusLoRA(profile(name), k=5).setup(model)
    assert [c.scale for c in model.lora_components()] == [1.0] * 4  # 2 blocks x (K, V)


def test_gr_in_the_method_uses_the_components_scale():
    """setup() builds components with lora.scale = 0.7; GR's result is the dense one at s = 0.7
    and measurably not the one at s = 1."""
    model, method = setup(gamma=1e-2)
    method.history = [geo.qr_retraction(torch.randn(24, 5)) for _ in model.adapters]
    method.before_task(model, None)
    backward(model, method)
    a = model.adapters[0]
    comp = a.components["k"][0]
    assert comp.scale == 0.7
    g_w = a.base.weight.grad[a.rows("k")].double()
    v = method.history[0].double()
    target = g_w - g_w @ v @ v.T
    A, B = comp.A.detach().double(), comp.B.detach().double()
    at_s, at_one = dense_gr(target, A, B, 0.7, 1e-2), dense_gr(target, A, B, 1.0, 1e-2)
    method.after_backward(model, None)
    for got, want, other in zip((comp.A.grad, comp.B.grad), at_s, at_one, strict=True):
        assert float((got.double() - want).norm() / want.norm()) < 1e-5
        assert float((got.double() - other).norm() / other.norm()) > 1e-2


def _adam_run(s, lr, a0, gamma, V, data, steps=25):
    """``steps`` Adam steps (eps 1e-30, i.e. off) of one GR-rectified LoRA pair at scale s on a
    smooth loss of W = W0 + s B A; returns the composite s B A after every step."""
    W0, X, Y = data
    comp = LoRAComponent(X.shape[1], Y.shape[1], a0.shape[0], scale=s).double()
    with torch.no_grad():
        comp.A.copy_(a0)
    opt = torch.optim.Adam([comp.A, comp.B], lr=lr, eps=1e-30)
    out = []
    for _ in range(steps):
        w = (W0 + comp.delta_weight()).detach().requires_grad_(True)
        (g_w,) = torch.autograd.grad(((X @ w.T - Y) ** 2).mean() + 0.1 * (w**4).mean(), w)
        A, B = comp.A.detach(), comp.B.detach()
        comp.A.grad, comp.B.grad = s * B.T @ g_w, s * g_w @ A.T
        comp.A.grad, comp.B.grad = (t.double() for t in rectified_gradients(
            comp, gamma, V.float(), (g_w @ V).float()))
        opt.step()
        out.append(comp.delta_weight().detach().clone())
    return out


def test_scale_equals_learning_rate_and_init_rescaling_under_adam():
    """Under Adam (no eps, no weight decay) a run at scale s equals, step for step, a run at
    s = 1 with lr * sqrt(s), A's initialisation * sqrt(s) and gamma / s (the map
    (A, B) -> sqrt(s) (A, B)); the learning rate alone does not absorb s."""
    g = torch.Generator().manual_seed(5)
    data = (torch.randn(9, 12, generator=g, dtype=F64), torch.randn(64, 12, generator=g,
            dtype=F64), torch.randn(64, 9, generator=g, dtype=F64))
    V = torch.linalg.qr(torch.randn(12, 4, generator=g, dtype=F64))[0]
    a0 = torch.randn(3, 12, generator=g, dtype=F64) / math.sqrt(12)
    s, lr, gamma = 4.0, 1e-2, 1e-3  # sqrt(s) = 2: every rescaling is exact in floating point
    ref = _adam_run(s, lr, a0, gamma, V, data)
    same = _adam_run(1.0, lr * 2, a0 * 2, gamma / s, V, data)


    def gap(run):
        return max(float((x - y).norm() / y.norm()) for x, y in zip(run, ref, strict=True))

    assert gap(same) < 1e-6
    for factor in (2.0, s):  # lr * sqrt(s) or lr * s, A's initialisation unchanged
        assert gap(_adam_run(1.0, lr * factor, a0, gamma / s, V, data)) > 0.1


# ---------------------------------------------------------------- memory=union at its cap


def projector(M):
    return M @ M.T


def frame(d=10, seed=6):
    """A random orthonormal frame e_1..e_d of R^d (columns), float32."""
    g = torch.Generator().manual_seed(seed)
    return torch.linalg.qr(torch.randn(d, d, generator=g, dtype=F64))[0].float()


def test_union_below_the_cap_is_the_plain_svd_union():
    """Runs that never reach the cap keep exactly the basis they had before the energies: the
    left singular vectors of [old, new], bit for bit; the energy is U^T H U."""
    g = torch.Generator().manual_seed(7)
    old = geo.qr_retraction(torch.randn(24, 6, generator=g))
    new = geo.qr_retraction(torch.randn(24, 3, generator=g))
    e_old = (lambda m: m @ m.T)(torch.randn(6, 6, generator=g))
    e_new = (lambda m: m @ m.T)(torch.randn(3, 3, generator=g))
    basis, energy = union_basis(old, new, 12, e_old, e_new)
    plain = torch.linalg.svd(torch.cat([old, new], dim=1), full_matrices=False)[0][:, :9]
    assert torch.equal(basis, plain)
    assert torch.equal(union_basis(old, new, 12)[0], basis)  # the same without energies
    H = old @ e_old @ old.T + new @ e_new @ new.T
    torch.testing.assert_close(energy, basis.T @ H @ basis, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "old_idx, old_e, new_idx, new_e, keep",
    [
        # disjoint snapshots, all singular values 1: LAPACK keeps the old pair (e1, e2)
        ((0, 1), (0.5, 0.01), (2,), (0.4,), (0, 2)),
        # e1 shared (singular value sqrt 2, kept first by the singular order) but weak
        ((0, 1), (0.05, 0.6), (0, 2), (0.05, 0.5), (1, 2)),
    ],
    ids=["one-snapshot-directions", "weak-shared-direction"],
)
def test_union_cap_keeps_the_highest_energy_directions(old_idx, old_e, new_idx, new_e, keep):
    e = frame()
    old, new = e[:, list(old_idx)], e[:, list(new_idx)]
    e_old, e_new = torch.diag(torch.tensor(old_e)), torch.diag(torch.tensor(new_e))
    basis, energy = union_basis(old, new, 2, e_old, e_new)
    want = e[:, list(keep)]
    assert float((projector(basis) - projector(want)).norm()) < 1e-5
    H = old @ e_old @ old.T + new @ e_new @ new.T
    top = sorted(torch.linalg.eigvalsh(H).tolist(), reverse=True)[:2]
    torch.testing.assert_close(torch.diag(energy), torch.tensor(top), rtol=1e-5, atol=1e-6)
    assert torch.equal(energy, torch.diag(torch.diag(energy)))  # diagonal, decreasing
    assert float(energy[0, 0]) >= float(energy[1, 1])
    # the singular order (what the cap did before) keeps another subspace here
    arbitrary = union_basis(old, new, 2)[0]
    assert float((projector(arbitrary) - projector(want)).norm()) > 0.5


def test_union_cap_with_tied_energies_is_a_function_of_its_inputs():
    e = frame()
    args = (e[:, :2], e[:, 2:3], 2, 0.3 * torch.eye(2), 0.3 * torch.eye(1))
    first, again = union_basis(*args), union_basis(*args)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    torch.testing.assert_close(first[0].T @ first[0], torch.eye(2), atol=1e-5, rtol=0)
    assert float((projector(e[:, :3]) @ first[0] - first[0]).norm()) < 1e-5
    torch.testing.assert_close(first[1], 0.3 * torch.eye(2))


class _Stream:
    """eval_loader: a torch DataLoader (whose iterator draws from the global RNG)."""

    def __init__(self, images):
        self.data = torch.utils.data.TensorDataset(images, torch.zeros(len(images)))

    def eval_loader(self, images):
        return torch.utils.data.DataLoader(self.data, batch_size=4)


def test_update_history_at_the_cap_keeps_the_top_energy_subspace_and_the_rng():
    """Two end-of-task merges with max_rank = 8 < 5 + 5: the history is the top-8 eigenspace
    of sum_t V_t (V_t^T G_t V_t / tr G_t) V_t^T (G_t: the Gram of task t's tokens), and the
    training run's RNG is untouched by the energy pass."""
    model, method = setup(memory="union", max_rank=8, dml=False)
    g = torch.Generator().manual_seed(8)
    ops = [torch.zeros(24, 24, dtype=F64) for _ in model.adapters]
    for _ in range(2):
        stream = _Stream(torch.randn(8, 3, 16, 16, generator=g))
        ctx = SimpleNamespace(stream=stream, task=SimpleNamespace(train_plain=None))
        method.online = [geo.qr_retraction(torch.randn(24, 5, generator=g))
                         for _ in model.adapters]
        grams = input_grams(model, stream.eval_loader(None), F64)
        for op, v, gram in zip(ops, method.online, grams, strict=True):
            vd = v.double()
            op += vd @ (vd.T @ gram @ vd / gram.trace()) @ vd.T
        rng = torch.get_rng_state()
        method.update_history(model, ctx)
        assert torch.equal(torch.get_rng_state(), rng)
    for h, op in zip(method.history, ops, strict=True):
        assert h.shape == (24, 8)
        top = torch.linalg.eigh(op)[1][:, -8:]
        assert float((projector(h.double()) - projector(top)).norm()) < 1e-4
