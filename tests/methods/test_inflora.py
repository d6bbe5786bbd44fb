"""InfLoRA: the designed input factor (dense SVD reference), frozen A_t outside the protected
subspace, only B_t and the head trained, GPM growth with the task-dependent threshold."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from janus.core import geometry as geo
from janus.core.config import apply_overrides, profile
from janus.core.errors import ConfigError
from janus.methods.inflora import InfLoRA, designed_input_factor
from janus.model.continual import build_model
from janus.train.trainer import Observer


def orthonormal(g, rows, cols):
    return torch.linalg.qr(torch.randn(rows, cols, generator=g, dtype=torch.float64))[0]


def test_designed_factor_is_the_top_left_singular_subspace_of_the_projected_gram():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(40, 12, generator=g, dtype=torch.float64) @ torch.diag(
        torch.linspace(3, 0.1, 12, dtype=torch.float64))
    C = X.T @ X
    M = orthonormal(g, 12, 3)
    A = designed_input_factor(C, M, 4)
    assert torch.allclose(A @ A.T, torch.eye(4, dtype=torch.float64), atol=1e-12)
    assert float((A @ M).abs().max()) < 1e-12
    U = torch.linalg.svd((torch.eye(12, dtype=torch.float64) - M @ M.T) @ C)[0][:, :4]
    assert float((A.T @ A - U @ U.T).norm()) < 1e-10  # same subspace as the dense reference


def test_designed_factor_stays_outside_the_basis_when_the_data_are_low_rank():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(12, 1, generator=g, dtype=torch.float64)
    M = orthonormal(g, 12, 5)
    A = designed_input_factor(x @ x.T, M, 4)  # rank-1 Gram, 4 rows wanted
    assert torch.allclose(A @ A.T, torch.eye(4, dtype=torch.float64), atol=1e-12)
    assert float((A @ M).abs().max()) < 1e-12


def test_threshold_grows_from_lambda_b_to_one():
    cfg = apply_overrides(profile("smoke"), ["method.name=inflora", "data.num_tasks=10"])
    m = InfLoRA(cfg)
    assert [m.threshold(t) for t in (0, 5, 9)] == pytest.approx([0.98, 0.99, 0.998])


class Watch(Observer):
    def __init__(self):
        self.starts = []

    def before_task(self, run, ctx):
        groups = run.method.parameter_groups(run.model, ctx)
        trainable = {id(p) for grp in groups for p in grp["params"] if p.requires_grad}
        self.starts.append({
            "protected": [m.clone() for m in run.method.protected],
            "A": {id(c): c.A.detach().clone() for c in run.model.lora_components()},
            "B": {id(c): c.B.detach().clone() for c in run.model.lora_components()},
            "trainable": trainable,
        })


def test_three_tasks_keep_a_frozen_and_outside_the_earlier_subspace(three_task_run):
    watch = Watch()
    run = three_task_run("inflora", watch)
    scale = 1 / math.sqrt(3)
    for t in range(3):
        run.train_tasks(t + 1, save=False)
        start = watch.starts[t]
        for i, adapter in enumerate(run.model.adapters):
            M = start["protected"][i].float()
            for s in adapter.slices:
                new = adapter.components[s][-1]
                A = new.A.detach()
                assert torch.equal(A, start["A"][id(new)])  # A_t did not train
                assert torch.allclose(A @ A.T, scale**2 * torch.eye(A.shape[0]), atol=1e-5)
                assert float((A @ M).norm()) < 1e-5  # B_t A_t x = 0 for x in span(M)
                assert not torch.equal(new.B.detach(), start["B"][id(new)])  # B_t trained
                assert id(new.B) in start["trainable"] and id(new.A) not in start["trainable"]
                for old in list(adapter.components[s])[:-1]:
                    assert torch.equal(old.A, start["A"][id(old)])
                    assert torch.equal(old.B, start["B"][id(old)])
                    assert id(old.B) not in start["trainable"]
    dims = [[m.shape[1] for m in st["protected"]] for st in watch.starts]
    dims.append([m.shape[1] for m in run.method.protected])
    assert dims[0] == [0, 0] and all(d > 0 for d in dims[1])
    grows = zip(dims, dims[1:], strict=False)
    assert all(a <= b for prev, cur in grows for a, b in zip(prev, cur, strict=True))
    for M in run.method.protected:
        assert torch.allclose(M.T @ M, torch.eye(M.shape[1], dtype=M.dtype), atol=1e-10)


def test_squared_energy_keeps_fewer_directions():
    """The code's energy (squared eigenvalues of C) reaches a threshold with fewer directions."""
    g = torch.Generator().manual_seed(2)
    Q = orthonormal(g, 8, 8)
    C = Q @ torch.diag(torch.tensor([50, 20, 10, 5, 3, 1, 0.5, 0.5], dtype=torch.float64)) @ Q.T
    empty = torch.zeros(8, 0, dtype=torch.float64)
    assert geo.grown_basis(empty, C, 0.9, 8).shape[1] == 4  # 85 / 90 of the eigenvalues
    assert geo.grown_basis(empty, C @ C, 0.9, 8).shape[1] == 2  # 2900 / 3036 of their squares


def test_bad_parameters():
    cfg = profile("smoke")
    for bad in ({"lambda_b": 0}, {"lambda_b": 1.5}, {"a_scale": 0}, {"energy": "cubed"}):
        with pytest.raises(ConfigError):
            InfLoRA(cfg, **bad)


# ---------------------------------------------------------------- the official code, written out
def official_design(C, feature, rank):
    """InfLoRA's ``_train`` (liangyanshuo/InfLoRA@e08b00e ``methods/inflora.py`` lines 122-155,
    remove mode): A_t = top-``rank`` left singular vectors of C, or of ``C - F F^T C`` once a
    basis F exists, transposed, over sqrt(3)."""
    matrix = C if feature is None else C - feature @ feature.T @ C
    U = np.linalg.svd(matrix, full_matrices=False)[0]
    return U[:, :rank].T / math.sqrt(3)


def official_update(C, feature, task, lamb, sessions):
    """``update_DualGPM`` (same file, lines 321-368, remove mode): energy of the squared singular
    values of C; the first task keeps ``sum(cumsum(ratio) < thr)`` vectors (at least one)."""
    threshold = (1.0 - lamb) * task / sessions + lamb
    if feature is None:
        U, S, _ = np.linalg.svd(C, full_matrices=False)
        r = int(np.sum(np.cumsum(S**2 / (S**2).sum()) < threshold))
        return U[:, : max(r, 1)]
    total = (np.linalg.svd(C, compute_uv=False) ** 2).sum()
    U, S, _ = np.linalg.svd(C - feature @ feature.T @ C, full_matrices=False)
    accumulated = (total - (S**2).sum()) / total
    r = 0
    for s in S:
        if accumulated >= threshold:
            break
        accumulated += s**2 / total
        r += 1
    return np.hstack([feature, U[:, :r]]) if r else feature


def decaying_gram(g, d, task):
    """A ViT-like spectrum (a few large directions, a long tail) in a task-specific basis."""
    Q = orthonormal(g, d, d)
    values = 100.0 * (0.6 ** torch.arange(d, dtype=torch.float64)) + 0.05
    return Q @ torch.diag(values) @ Q.T


def test_design_and_basis_growth_equal_the_official_code_on_the_same_grams(monkeypatch):
    """Same Gram matrices fed to both: A_t (designed from C, not C C) and the DualGPM bases agree
    to round-off over three tasks; this failed while ``energy="squared"`` designed from C C."""
    cfg = apply_overrides(profile("smoke"), ["method.name=inflora", "data.num_tasks=3",
                                             "method.params={'lambda_b': 0.9}"])
    model = build_model(cfg.model, cfg.lora)
    method = InfLoRA(cfg, lambda_b=0.9)
    assert method.params.energy == "squared" and method.params.first_task == "code"
    method.setup(model)
    d, rank = model.adapters[0].in_features, model.lora.rank
    g = torch.Generator().manual_seed(3)
    before = [[decaying_gram(g, d, t) for _ in model.adapters] for t in range(3)]
    after = [[decaying_gram(g, d, t) for _ in model.adapters] for t in range(3)]
    features: list = [None] * len(model.adapters)
    for t in range(3):
        ctx = SimpleNamespace(index=t)
        monkeypatch.setattr(method, "task_grams", lambda m, c, grams=before[t]: grams)
        method.before_task(model, ctx)
        monkeypatch.setattr(method, "task_grams", lambda m, c, grams=after[t]: grams)
        method.after_task(model, ctx)
        for i, adapter in enumerate(model.adapters):
            want_A = official_design(before[t][i].numpy(), features[i], rank)
            features[i] = official_update(after[t][i].numpy(), features[i], t, 0.9, 3)
            for s in adapter.slices:
                A = adapter.components[s][-1].A.detach().double().numpy()
                assert np.allclose(A @ A.T, want_A @ want_A.T, atol=1e-6)  # both I / 3
                assert np.abs(A.T @ A - want_A.T @ want_A).max() < 1e-5  # same row space
            M = method.protected[i].numpy()
            assert M.shape == features[i].shape, (t, i)
            assert np.abs(M @ M.T - features[i] @ features[i].T).max() < 1e-8
    assert [m.shape[1] for m in method.protected] == [f.shape[1] for f in features]
    assert all(m.shape[1] > 1 for m in method.protected)  # grew over the tasks


def test_first_task_counts_one_direction_fewer_than_gpm_in_the_code():
    g = torch.Generator().manual_seed(4)
    C = decaying_gram(g, 16, 0)
    empty = torch.zeros(16, 0, dtype=torch.float64)
    gpm = geo.grown_basis(empty, C @ C, 0.95, 16).shape[1]
    code = geo.first_task_gpm_basis(C @ C, 0.95, 16)
    assert code.shape[1] == gpm - 1 >= 1
    assert torch.allclose(code.T @ code, torch.eye(code.shape[1], dtype=torch.float64), atol=1e-12)
