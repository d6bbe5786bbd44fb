"""LoRA-DRS: the drift-resistant projector, LoRA subtraction, projected steps, the augmented
triplet loss (brute-force reference) and nearest-prototype prediction."""

import pytest
import torch
import torch.nn.functional as F

from janus.core import geometry as geo
from janus.core.config import apply_overrides, profile
from janus.core.errors import ConfigError
from janus.methods.activations import input_grams
from janus.methods.base import TaskContext
from janus.methods.lora_drs import LoRADRS, augmented_triplet_loss, drift_resistant_projector
from janus.train.trainer import Observer, Run


def test_projector_keeps_the_fewest_top_directions_reaching_the_energy():
    g = torch.Generator().manual_seed(0)
    Q = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))[0]
    lam = torch.tensor([60, 25, 10, 3, 1.5, 0.5], dtype=torch.float64)  # sum 100
    P = drift_resistant_projector(Q @ torch.diag(lam) @ Q.T, 0.95)  # 60 + 25 + 10 = 95
    U = Q[:, :3]
    torch.testing.assert_close(P, U @ U.T / 3**0.5)
    assert float(P.norm()) == pytest.approx(1.0)
    assert drift_resistant_projector(Q @ torch.diag(lam) @ Q.T, 0.96).trace() == pytest.approx(
        4**0.5)


def brute_force_atl(z, y, old, margin):
    losses = []
    for i in range(len(z)):
        pos = [float((z[i] - z[j]).norm()) for j in range(len(z)) if y[j] == y[i]]
        neg = [float((z[i] - z[j]).norm()) for j in range(len(z)) if y[j] != y[i]]
        neg += [float((z[i] - o).norm()) for o in old]
        if neg:
            losses.append(max(0.0, max(pos) - min(neg) + margin))
    return sum(losses) / len(losses)


def test_augmented_triplet_loss_matches_a_brute_force_loop():
    g = torch.Generator().manual_seed(1)
    z = F.normalize(torch.randn(9, 5, generator=g, dtype=torch.float64), dim=-1)
    y = torch.tensor([0, 0, 1, 1, 1, 2, 2, 0, 1])
    old = F.normalize(torch.randn(4, 5, generator=g, dtype=torch.float64), dim=-1)
    for margin in (0.1, 2.0):
        got = float(augmented_triplet_loss(z, y, old, margin))
        assert got == pytest.approx(brute_force_atl(z, y, old, margin), rel=1e-12)
        assert float(augmented_triplet_loss(z, y, None, margin)) == pytest.approx(
            brute_force_atl(z, y, [], margin), rel=1e-12)
    same = torch.zeros(9, dtype=torch.long)  # no negative anywhere: zero, not NaN
    assert float(augmented_triplet_loss(z, same, None, 1.0)) == 0.0


class Steps(Observer):
    def before_task(self, run, ctx):
        self.start = {id(c): (c.A.detach().clone(), c.B.detach().clone())
                      for c in run.model.lora_components()}


def test_three_tasks_project_steps_and_subtract_old_adapters(three_task_run):
    steps = Steps()
    run = three_task_run("lora-drs", steps)
    method = run.method
    for t in range(3):
        if t == 2:  # LoRA subtraction: the same Grams as with every earlier B negated
            task = run.task(2)
            model = run.model
            ctx = TaskContext(task=task, stream=run.stream, device=run.device)
            torch.manual_seed(5)
            got = method.subtracted_grams(model, ctx)
            with torch.no_grad():
                for c in model.lora_components():
                    c.B.neg_()
            torch.manual_seed(5)
            gen = torch.Generator().manual_seed(int(torch.randint(2**31 - 1, (1,))))
            want = input_grams(model, run.stream.train_loader(task, gen), torch.float64)
            with torch.no_grad():
                for c in model.lora_components():
                    c.B.neg_()
            for a, b in zip(got, want, strict=True):
                torch.testing.assert_close(a, b.cpu())
        run.train_tasks(t + 1, save=False)
        for i, adapter in enumerate(run.model.adapters):
            for s in adapter.slices:
                new = adapter.components[s][-1]
                A0, B0 = steps.start[id(new)]
                dA, dB = new.A.detach() - A0, new.B.detach() - B0
                assert float(dA.norm()) > 0 and float(dB.norm()) > 0
                if t > 0:  # steps inside span(U_k): dA (I - U U^T) = 0, (I - U U^T) dB = 0
                    P = method.projectors[i]
                    Q = P * P.trace()  # U U^T
                    off = torch.eye(len(Q)) - Q
                    assert float((dA @ off).norm()) < 1e-5 * float(dA.norm())
                    assert float((off @ dB).norm()) < 1e-5 * float(dB.norm())
                    assert Q.trace() < len(Q)  # a proper subspace
                for old in list(adapter.components[s])[:-1]:
                    assert torch.equal(old.A, steps.start[id(old)][0])
    assert method.prototypes.shape == (9, run.model.feature_dim)
    images, labels = next(iter(run.stream.test_loader(run.task(1))))
    scores = method.predict(run.model, images, num_tasks=2)
    assert scores.shape == (len(images), 6)
    with torch.no_grad():
        z = F.normalize(run.model.features(images), dim=-1)
    protos = F.normalize(method.prototypes[:6], dim=-1)
    nearest = torch.cdist(z, protos).argmin(dim=1)
    assert torch.equal(scores.argmax(dim=1), nearest)


def test_bad_parameters():
    cfg = profile("smoke")
    for bad in ({"energy": 0}, {"energy": 1.2}, {"margin": -1.0}):
        with pytest.raises(ConfigError):
            LoRADRS(cfg, **bad)


class DenseGradients(Observer):
    """At task 2's first step: per new pair, the fused weight's own gradient (the dense
    reference), the pair's values and the factor gradients the optimiser receives."""

    def before_task(self, run, ctx):
        if ctx.index == 1:
            for a in run.model.adapters:
                a.base.weight.requires_grad_(True)

    def before_step(self, run, ctx):
        if ctx.index == 1 and ctx.step == 0:
            ads = run.model.adapters
            self.seen = [
                (i, comp.scale, ads[i].base.weight.grad[ads[i].rows(s)].double(),
                 comp.A.detach().double(), comp.B.detach().double(),
                 comp.A.grad.double(), comp.B.grad.double())
                for i, s, comp in run.method.current
            ]


def test_gr_plug_in_equals_dense_rectification_of_the_projected_gradient(tmp_path):
    """Janus-LoRA Fig. 6, LoRA-DRS + GR: the gradients Adam receives are Eq. 6-7's ridge
    solutions for the target ``G_W P`` (P the drift-resistant projector), here computed from
    the dense gradient of the fused weight."""
    gamma = 1e-3
    cfg = apply_overrides(profile("smoke"), [
        "method.name=lora-drs", "method.params.gr=True", f"method.params.gamma={gamma}",
        "data.num_tasks=2", "data.num_classes=6", "train.epochs=1"])
    dense = DenseGradients()
    run = Run(cfg, tmp_path, progress=False, observers=[dense])
    run.start()
    run.train_tasks(1, save=False)
    run.train_tasks(2, save=False)
    assert len(dense.seen) == 2 * len(run.model.adapters)  # K and V of every block
    for i, scale, g_w, A, B, got_a, got_b in dense.seen:
        P = run.method.projectors[i].double()
        want_a, want_b = geo.rectify_factor_updates(g_w @ P, A, B, scale, gamma)
        for got, want in ((got_a, want_a), (got_b, want_b)):
            assert float((got - want).norm() / want.norm()) < 1e-5
        raw_b = scale * g_w @ A.T  # GR changed the gradient
        assert float((got_b - raw_b).norm()) > 0.1 * float(raw_b.norm())


# --- RL-VIG/LibContinual@a399ed4, a second reference (docs/methods/lora_drs.md) -------------
# The references below are written from reading core/model/lora_sub.py and
# core/model/backbone/transformer.py of that commit (line numbers in each docstring).


def libcontinual_atl(z, y, centers, margin):
    """lora_sub.py lines 34-68: distances by ``|a|^2 + |b|^2 - 2ab`` clamped at 1e-12 before
    the root; per anchor the farthest same-label sample (itself included) and the nearest other
    label, or ``d_ap + margin`` when the batch has none; then the minimum with every normalised
    prototype; ``MarginRankingLoss`` averaged over all anchors."""
    sq = (z * z).sum(1, keepdim=True)
    dist = (sq + sq.T - 2 * z @ z.T).clamp(min=1e-12).sqrt()
    same = y[:, None] == y[None, :]
    hinges = []
    for i in range(len(z)):
        d_ap = dist[i][same[i]].max()
        neg = dist[i][~same[i]]
        d_an = neg.min() if len(neg) else d_ap + margin
        for c in centers:
            d_an = torch.minimum(d_an, (z[i] - c / c.norm()).norm().clamp(min=1e-12))
        hinges.append(torch.clamp(d_ap - d_an + margin, min=0))
    return torch.stack(hinges).mean()


def test_augmented_triplet_loss_equals_the_libcontinual_reading():
    """Same loss and gradient on the same inputs: an anchor without a negative can only occur
    when the whole batch has one label, where both give 0 (the reference through
    ``d_an = d_ap + margin``). The reference's clamped self-distance (1e-6 instead of 0) is
    the only difference, for a class with one sample in the batch."""
    g = torch.Generator().manual_seed(3)
    for y, n_old in (([0, 0, 1, 1, 1, 2, 2, 0, 1], 4), ([0, 0, 1, 1, 2, 2], 0),
                     ([0, 1, 1, 1, 2, 2, 2], 3), ([1] * 6, 0), ([1] * 6, 2)):
        y = torch.tensor(y)
        raw = torch.randn(len(y), 8, generator=g, dtype=torch.float64, requires_grad=True)
        centers = torch.randn(n_old, 8, generator=g, dtype=torch.float64) * 3  # unnormalised
        for margin in (1.0, 2.0):
            ours_z = F.normalize(raw, dim=-1)
            ours = augmented_triplet_loss(ours_z, y, F.normalize(centers, dim=-1), margin)
            ref = libcontinual_atl(F.normalize(raw, dim=-1), y, centers, margin)
            assert float(ours.detach()) == pytest.approx(float(ref.detach()), abs=1e-6)
            if float(ref.detach()) > 0:
                g_ours, = torch.autograd.grad(ours, raw)
                g_ref, = torch.autograd.grad(ref, raw)
                torch.testing.assert_close(g_ours, g_ref, rtol=1e-5, atol=1e-6)


def libcontinual_projector(token_batches, thres):
    """transformer.py line 409 (the running mean over tokens of ``x^T x``, float32) and
    lora_sub.py lines 169-180 and 189 (SVD; the first index where the cumulative eigenvalue
    share reaches ``thres``, plus one; ``U U^T / ||U U^T||``)."""
    cur, n = torch.zeros(token_batches[0].shape[-1], token_batches[0].shape[-1]), 0
    for x in token_batches:
        cur = (cur * n + torch.bmm(x.permute(0, 2, 1), x).sum(0)) / (n + x.shape[0] * x.shape[1])
        n += x.shape[0] * x.shape[1]
    vectors, values, _ = torch.linalg.svd(cur)
    share = values.cumsum(0) / values.sum()
    k = int((share >= thres).nonzero()[0][0]) + 1
    basis = vectors[:, :k]
    transform = basis @ basis.T
    return transform / transform.norm(), k


def test_drift_resistant_projector_equals_the_libcontinual_reading():
    """Their float32 running mean of the Gram and SVD give the same projector as our
    float64 sum and eigh (the scale of the Gram changes neither the share nor the vectors)."""
    g = torch.Generator().manual_seed(4)
    mix = torch.randn(12, 12, generator=g) * torch.logspace(0, -2, 12)
    batches = [torch.randn(3, 5, 12, generator=g) @ mix.T for _ in range(4)]
    gram = sum(x.reshape(-1, 12).double().T @ x.reshape(-1, 12).double() for x in batches)
    for thres in (0.9, 0.99):
        want, k = libcontinual_projector(batches, thres)
        got = drift_resistant_projector(gram, thres)
        assert float(got.trace()) ** 2 == pytest.approx(k, rel=1e-6)  # sqrt(k) = trace
        torch.testing.assert_close(got.float(), want, atol=2e-5, rtol=0)
        assert 1 < k < 12


class FirstProjectedStep(Observer):
    """Task 2's first step: each new pair's factors and gradients before the optimiser, and
    its factors after the step and the method's projection."""

    def before_step(self, run, ctx):
        if ctx.index == 1 and ctx.step == 0:
            self.before = [(i, c.A.detach().clone(), c.B.detach().clone(), c.A.grad.clone(),
                            c.B.grad.clone()) for i, _, c in run.method.current]

    def after_step(self, run, ctx):
        if ctx.index == 1 and ctx.step == 0:
            self.after = [(c.A.detach().clone(), c.B.detach().clone())
                          for _, _, c in run.method.current]


def libcontinual_first_update(grad, lr, betas, eps):
    """lora_sub.py lines 193-233 at the first step of a fresh state: ``m = (1 - b1) g``,
    ``v = (1 - b2) g^2``, update ``-lr sqrt(1 - b2) / (1 - b1) * m / (sqrt(v) + eps)``."""
    b1, b2 = betas
    m, v = (1 - b1) * grad, (1 - b2) * grad * grad
    return -lr * (1 - b2) ** 0.5 / (1 - b1) * m / (v.sqrt() + eps)


def test_projected_step_equals_the_libcontinual_adam(tmp_path):
    """lora_sub.py lines 143-156: ``update @ P`` for A (its first dimension is not P's) and
    ``P @ update`` for B. The Adams differ in one place: theirs adds eps to ``sqrt(v)`` before
    the bias correction, torch's after it, so ours is theirs with eps ``1e-8 sqrt(1 - b2^t)``
    (equal here to float32 rounding). With their eps the first step of A, whose gradients are
    about 1e-6 while B is nearly zero, is markedly shorter (docs/methods/lora_drs.md)."""
    cfg = apply_overrides(profile("smoke"), [
        "method.name=lora-drs", "data.num_tasks=2", "data.num_classes=6", "train.epochs=1"])
    probe = FirstProjectedStep()
    run = Run(cfg, tmp_path, progress=False, observers=[probe])
    run.start()
    run.train_tasks(2, save=False)
    t = cfg.train
    assert t.optimizer == "adam" and t.weight_decay == 0  # the config's weight_decay: 0
    eps = 1e-8 * (1 - t.betas[1]) ** 0.5  # torch's eps placement at the first step
    shorter = []
    for (i, A0, B0, gA, gB), (A1, B1) in zip(probe.before, probe.after, strict=True):
        P = run.method.projectors[i]
        want_a = A0 + libcontinual_first_update(gA, t.lr, t.betas, eps) @ P
        want_b = B0 + P @ libcontinual_first_update(gB, t.lr, t.betas, eps)
        for got, want, start in ((A1, want_a, A0), (B1, want_b, B0)):
            assert float((got - want).norm() / (want - start).norm()) < 1e-5
        theirs = libcontinual_first_update(gA, t.lr, t.betas, 1e-8) @ P
        shorter.append(float(theirs.norm() / (A1 - A0).norm()))
    assert min(shorter) < 0.85  # their eps shortens the first step of A by up to 21% here
