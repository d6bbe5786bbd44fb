"""SeqLoRA and Continual Alternating: Alg. 1's iteration against autograd through the unrolled
inner step, the notation map onto our adapters, orthogonal bases, frozen earlier tasks."""

import math

import pytest
import torch
import torch.nn.functional as F

from janus.core import geometry as geo
from janus.core.config import apply_overrides, profile
from janus.core.errors import ConfigError
from janus.methods.base import TaskContext
from janus.methods.seqlora import SeqLoRA, seqlora_iteration, unfused_attention
from janus.train.trainer import Observer, Run

ALPHA, BETA = 0.3, 0.05


def toy_loss(X, Y, W):
    """``1/2 ||Y - tanh((W + A B^T) X)||^2`` over a list of one A and one B (n x r, m x r)."""

    def loss(A, B):
        return 0.5 * ((Y - torch.tanh((W + A[0] @ B[0].T) @ X)) ** 2).sum()

    return loss


@pytest.fixture
def toy():
    g = torch.Generator().manual_seed(0)
    n, m, r, p = 4, 6, 2, 9
    X = torch.randn(m, p, generator=g, dtype=torch.float64) / 3
    Y = torch.randn(n, p, generator=g, dtype=torch.float64)
    W = 0.3 * torch.randn(n, m, generator=g, dtype=torch.float64)
    A = torch.randn(n, r, generator=g, dtype=torch.float64)
    B = torch.randn(m, r, generator=g, dtype=torch.float64)
    basis = torch.randn(m, 2, generator=g, dtype=torch.float64)
    return toy_loss(X, Y, W), A, B, basis


def unrolled_phi_gradient(loss, A, B):
    """Autograd through ``Phi(B) = L(A - alpha grad_A L(A, B), B)`` (Eq. 9), independent of
    the double-backward code."""
    A_ = A.clone().requires_grad_(True)
    B_ = B.clone().requires_grad_(True)
    (gA,) = torch.autograd.grad(loss([A_], [B_]), A_, create_graph=True)
    return torch.autograd.grad(loss([A_ - ALPHA * gA], [B_]), B_)[0]


def plain_grad(loss, A, B, wrt):
    A_ = A.clone().requires_grad_(True)
    B_ = B.clone().requires_grad_(True)
    return torch.autograd.grad(loss([A_], [B_]), A_ if wrt == "A" else B_)[0]


def project(B, basis):
    return B - basis @ torch.linalg.solve(basis.T @ basis, basis.T @ B)


def test_one_local_step_is_the_projected_gradient_step_of_phi(toy):
    loss, A, B, basis = toy
    A1, B1, loss0 = seqlora_iteration(
        loss, [A], [B], [basis], alpha=ALPHA, beta=BETA, b_steps=1, a_steps=1, eps=0.0
    )
    expected_B = project(B - BETA * unrolled_phi_gradient(loss, A, B), basis)  # Eq. 14, 17
    assert float((B1[0] - expected_B).norm() / expected_B.norm()) < 1e-12
    assert float((basis.T @ B1[0]).abs().max()) < 1e-12
    expected_A = A - ALPHA * plain_grad(loss, A, expected_B, "A")  # Eq. 18
    assert float((A1[0] - expected_A).norm() / expected_A.norm()) < 1e-12
    assert loss0 == pytest.approx(float(loss([A], [B])), rel=1e-12)


def test_continual_alternating_drops_exactly_the_cross_hessian_term(toy):
    loss, A, B, basis = toy
    empty = B.new_zeros(B.shape[0], 0)
    _, B_alt, _ = seqlora_iteration(loss, [A], [B], [empty], alpha=ALPHA, beta=BETA,
                                    b_steps=1, a_steps=1, eps=0.0, cross_hessian=False)
    A_tilde = A - ALPHA * plain_grad(loss, A, B, "A")
    expected = B - BETA * plain_grad(loss, A_tilde, B, "B")  # frozen A~: partial gradient
    assert float((B_alt[0] - expected).norm()) < 1e-12
    _, B_seq, _ = seqlora_iteration(loss, [A], [B], [empty], alpha=ALPHA, beta=BETA,
                                    b_steps=1, a_steps=1, eps=0.0)
    hvp = geo.cross_hessian_vector_product(loss, [A], [B], [plain_grad(loss, A_tilde, B, "A")])
    assert float((B_seq[0] - B_alt[0] - BETA * ALPHA * hvp[0]).norm()) < 1e-12
    assert float((B_seq[0] - B_alt[0]).norm()) > 1e-3 * float((B - B_alt[0]).norm())


def test_later_local_steps_keep_alg1s_stale_point(toy):
    """Line 14-17: the second B-step evaluates g at (A~, B_1) but the cross-Hessian at
    (A^(k), B^(k)), with A~ from B^(k)."""
    loss, A, B, basis = toy
    _, B2, _ = seqlora_iteration(loss, [A], [B], [basis], alpha=ALPHA, beta=BETA,
                                 b_steps=2, a_steps=1, eps=1e-8)
    A_tilde = A - ALPHA * plain_grad(loss, A, B, "A")
    B1 = project(B - BETA * unrolled_phi_gradient(loss, A, B), basis)
    gA, gB = plain_grad(loss, A_tilde, B1, "A"), plain_grad(loss, A_tilde, B1, "B")
    hvp = geo.cross_hessian_vector_product(loss, [A], [B], [gA])[0]
    expected = project(B1 - BETA * (gB - ALPHA * hvp), basis)
    assert float((B2[0] - expected).norm() / expected.norm()) < 1e-7  # eps = 1e-8 regularised


TINY = ["data.num_tasks=3", "data.num_classes=9", "data.train_per_class=16",
        "data.test_per_class=4", "train.epochs=2", "train.max_steps_per_task=2"]


def tiny_run(method="seqlora", *overrides):
    cfg = apply_overrides(profile("smoke"), [f"method.name={method}", *TINY, *overrides])
    return Run(cfg, out_dir=None, progress=False)


def test_model_step_maps_seqlora_notation_onto_our_adapters():
    """One model step (K = S_B = S_A = 1) equals Eq. 14/17 and Eq. 18 computed by hand on the
    model's own parameters: SeqLoRA's B is our A^T, its A our B (the head joins the lower
    level), and the second task's bases are projected off the first task's."""
    run = tiny_run("seqlora", "method.params.bilevel_iterations=1", "method.params.b_steps=1",
                   "method.params.a_steps=1")
    model, method = run.model, run.method
    method.setup(model)
    run.train_task(0)
    task = run.task(1)
    model.add_head(len(task.labels))
    ctx = TaskContext(task=task, stream=run.stream, device=run.device)
    method.before_task(model, ctx)
    images, targets = next(iter(run.stream.train_loader(task, torch.Generator().manual_seed(0))))
    ids = {id(p): n for n, p in model.named_parameters()}
    lower_names = [ids[id(p)] for p in method.lower]
    upper_names = [ids[id(p)] for p in method.upper]

    def loss_of(lower, upper):  # our parameters, our orientation
        params = dict(zip(lower_names + upper_names, [*lower, *upper], strict=True))
        logits = torch.func.functional_call(model, params, (images,))
        return F.cross_entropy(logits[:, task.labels.start : task.labels.stop],
                               targets - task.labels.start)

    alpha = beta = 0.1  # the defaults
    lower = [p.detach().clone().requires_grad_(True) for p in method.lower]
    upper = [p.detach().clone().requires_grad_(True) for p in method.upper]
    with unfused_attention(model):
        grads = torch.autograd.grad(loss_of(lower, upper), lower, create_graph=True)
        tilde = [p - alpha * g for p, g in zip(lower, grads, strict=True)]
        grad_phi = torch.autograd.grad(loss_of(tilde, upper), upper)  # w.r.t. our A = B^T
        new_upper = [
            project((a - beta * g).detach().T, basis).T
            for a, g, basis in zip(upper, grad_phi, method.bases, strict=True)
        ]
        g_lower = torch.autograd.grad(loss_of(lower, new_upper), lower)
    new_lower = [(p - alpha * g).detach() for p, g in zip(lower, g_lower, strict=True)]
    method.train_step(model, images, targets, ctx)
    for p, e in zip(method.upper + method.lower, new_upper + new_lower, strict=True):
        assert float((p.detach() - e).norm() / e.norm()) < 1e-5
    assert float((method.upper[0].detach() - upper[0].detach()).norm()) > 1e-4


class StepCounter(Observer):
    def __init__(self):
        self.calls = []

    def before_step(self, run, ctx):
        self.calls.append(("before", ctx.index, ctx.step))

    def after_step(self, run, ctx):
        self.calls.append(("after", ctx.index, ctx.step))


@pytest.mark.parametrize("method", ["seqlora", "continual-alternating"])
def test_bases_stay_orthogonal_and_earlier_tasks_frozen(tmp_path, method):
    cfg = apply_overrides(profile("smoke"), [f"method.name={method}", *TINY])
    counter = StepCounter()
    run = Run(cfg, out_dir=tmp_path, progress=False, observers=[counter])
    run.method.setup(run.model)
    snapshots: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    for t in range(3):
        run.train_task(t)
        for adapter in run.model.adapters:
            for s in adapter.slices:
                comps = adapter.components[s]
                assert len(comps) == t + 1
                A_new = comps[-1].A.detach()
                for old in comps[:-1]:
                    cos = (A_new @ old.A.detach().T).abs().max() / (
                        A_new.norm() * old.A.detach().norm())
                    assert float(cos) < 1e-6  # B_i^T B_j = 0 (Eq. 5), eps = 1e-8
        comps = run.model.lora_components()
        for c in comps:  # the earlier tasks' components did not move
            if id(c) in snapshots:
                A_old, B_old = snapshots[id(c)]
                assert torch.equal(A_old, c.A) and torch.equal(B_old, c.B)
        assert sum(id(c) in snapshots for c in comps) == len(snapshots) == t * len(comps) // (t + 1)
        snapshots = {id(c): (c.A.detach().clone(), c.B.detach().clone()) for c in comps}
    assert counter.calls == [(k, t, s) for t in range(3) for s in range(2)
                             for k in ("before", "after")]


def test_capacity_and_parameters_are_checked():
    with pytest.raises(ConfigError, match="input dimensions"):
        tiny_run("seqlora", "lora.rank=20").method.setup(tiny_run().model)
    cfg = apply_overrides(profile("smoke"), ["method.name=seqlora"])
    for bad in ({"alpha": 0}, {"beta": -1.0}, {"b_steps": 0}, {"bilevel_iterations": 1.5},
                {"eps": -1e-9}, {"alpha": math.inf}):
        with pytest.raises(ConfigError):
            SeqLoRA(cfg, **bad)
