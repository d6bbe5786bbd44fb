"""BiLoRA: the Fourier update against the explicit bilinear DFT form, orthogonality of
disjoint supports, zero start, frozen earlier tasks, only K and V changed."""

import math

import pytest
import torch

from janus.core.config import profile
from janus.core.errors import ConfigError
from janus.methods.bilora import BiLoRA, fourier_update, scaled_frequencies, task_support
from janus.train.trainer import Observer


def dft_kernel(d):
    idx = torch.arange(d, dtype=torch.float64)
    return torch.exp(2j * math.pi * torch.outer(idx, idx) / d) / d


def test_update_is_alpha_re_psi_f_psi():
    d, n, alpha = 12, 20, 3.0
    g = torch.Generator().manual_seed(0)
    support = task_support(d, n, 0)
    c = torch.randn(n, generator=g)
    F = torch.zeros(d * d, dtype=torch.complex128)
    F[support] = c.double().to(torch.complex128)
    Psi = dft_kernel(d)
    want = alpha * (Psi @ F.reshape(d, d) @ Psi).real
    torch.testing.assert_close(fourier_update(c, support, d, alpha).double(), want,
                               rtol=1e-5, atol=1e-6)


def test_disjoint_mirrored_supports_give_orthogonal_updates():
    d = 8
    g = torch.Generator().manual_seed(1)
    a = torch.tensor([1 * d + 2, 3 * d + 1])  # (1, 2), (3, 1); mirrors (7, 6), (5, 7)
    b = torch.tensor([2 * d + 5, 4 * d + 4])  # (2, 5), (4, 4): none of the above
    wa = fourier_update(torch.randn(2, generator=g), a, d, 1.0)
    wb = fourier_update(torch.randn(2, generator=g), b, d, 1.0)
    assert abs(float((wa * wb).sum())) < 1e-6 * float(wa.norm() * wb.norm())
    mirror = torch.tensor([(d - 1) * d + (d - 2)])  # (-1, -2): couples with (1, 2)
    wm = fourier_update(torch.ones(1), mirror, d, 1.0)
    assert abs(float((wa * wm).sum())) > 1e-3 * float(wa.norm() * wm.norm())


def test_supports_are_seeded_per_task_and_scaled_with_width():
    assert torch.equal(task_support(16, 10, 2), task_support(16, 10, 2))
    assert not torch.equal(task_support(16, 10, 1), task_support(16, 10, 2))
    assert len(set(task_support(16, 200, 0).tolist())) == 200
    assert scaled_frequencies(768) == 3000 and scaled_frequencies(192) == 188


class Start(Observer):
    def before_task(self, run, ctx):
        self.frozen = [{s: w.clone() for s, w in f.items()} for f in run.method.frozen]
        groups = run.method.parameter_groups(run.model, ctx)
        self.trainable = {id(p) for g in groups for p in g["params"]}
        x = torch.randn(2, 5, run.model.adapters[0].in_features)
        a = run.model.adapters[0]
        self.x, self.out = x, a(x).detach()
        self.base_plus_frozen = a.base(x).detach()
        for s in a.slices:
            self.base_plus_frozen[..., a.rows(s)] += x @ self.frozen[0][s].T


def test_three_tasks_add_frozen_updates_to_k_and_v_only(three_task_run):
    start = Start()
    run = three_task_run("bilora", start)
    method = run.method
    for t in range(3):
        run.train_tasks(t + 1, save=False)
        # a task starts where the last one ended: zero coefficients, frozen sums added to K, V
        torch.testing.assert_close(start.out, start.base_plus_frozen, rtol=1e-5, atol=1e-5)
        assert {id(p) for p in method.coeffs} == set()  # folded into the sums after the task
        assert all(id(p) in start.trainable for p in run.model.heads[t].parameters())
        assert not any(p.requires_grad and id(p) not in start.trainable
                       for p in run.model.parameters())
        for f_old, f_new in zip(start.frozen, method.frozen, strict=True):
            for s in f_new:
                assert float((f_new[s] - f_old[s]).norm()) > 0  # the task's update, added
    a = run.model.adapters[0]
    x = torch.randn(2, 5, a.in_features)
    with torch.no_grad():
        out, base = a(x), a.base(x)
    q = a.rows("q")
    torch.testing.assert_close(out[..., q], base[..., q])  # Q untouched


def test_bad_parameters():
    cfg = profile("smoke")
    with pytest.raises(ConfigError):
        BiLoRA(cfg, frequencies=0)
