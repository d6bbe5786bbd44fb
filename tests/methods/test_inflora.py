"""InfLoRA: the designed input factor (dense SVD reference), frozen A_t outside the protected
subspace, only B_t and the head trained, GPM growth with the task-dependent threshold."""

import math

import pytest
import torch

from janus import geometry as geo
from janus.config import apply_overrides, profile
from janus.errors import ConfigError
from janus.methods.inflora import InfLoRA, designed_input_factor
from janus.trainer import Observer, Run


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


def test_three_tasks_keep_a_frozen_and_outside_the_earlier_subspace(tmp_path):
    cfg = apply_overrides(profile("smoke"), ["method.name=inflora", "data.num_tasks=3",
                                             "data.num_classes=9", "train.epochs=1"])
    watch = Watch()
    run = Run(cfg, tmp_path, progress=False, observers=[watch])
    run.method.setup(run.model)
    scale = 1 / math.sqrt(3)
    for t in range(3):
        run.train_task(t)
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
