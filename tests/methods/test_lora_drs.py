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
