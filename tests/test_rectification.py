"""The GR plug-in's product form against the paper's equations written out densely (float64):
the ridge solutions of Eq. 27 / 34 in their gamma form (Eq. 30 with the factor s, Eq. 38)
for the target ``G_W Pi``, with the raw factor gradients from the chain rule (Eq. 4,
corrected)."""

import pytest
import torch

from janus.core import geometry as geo
from janus.methods.rectification import rectified_gradients
from janus.model.lora import LoRAComponent

F64 = torch.float64


def dense_gr(target, A, B, s, gamma):
    """Eq. 30: (s^2 B^T B + gamma I) dA = s B^T target; Eq. 33: R = target - s B dA;
    Eq. 38: dB = s R A^T (s^2 A A^T + gamma I)^-1 (no delta = gamma / s^2 anywhere)."""
    eye = torch.eye(A.shape[0], dtype=F64)
    dA = torch.linalg.solve(s**2 * B.T @ B + gamma * eye, s * B.T @ target)
    R = target - s * B @ dA
    dB = s * R @ A.T @ torch.linalg.inv(s**2 * A @ A.T + gamma * eye)
    return dA, dB


def rel(a, b):
    return float((a.double() - b).norm() / b.norm())


@pytest.mark.parametrize("keep, weight", [(1.0, -1.0), (0.0, 1 / 7**0.5), (0.5, 2.0)])
def test_projected_products_equal_the_dense_projector(keep, weight):
    g = torch.Generator().manual_seed(0)
    d_out, d_in, r, k = 9, 12, 3, 7
    G = torch.randn(d_out, d_in, generator=g, dtype=F64)
    A = torch.randn(r, d_in, generator=g, dtype=F64)
    B = torch.randn(d_out, r, generator=g, dtype=F64)
    V = torch.linalg.qr(torch.randn(d_in, k, generator=g, dtype=F64))[0]
    Pi = keep * torch.eye(d_in, dtype=F64) + weight * V @ V.T
    bt, at = geo.projected_gradient_products(B.T @ G, G @ A.T, G @ V, V, A, keep, weight)
    torch.testing.assert_close(bt, B.T @ G @ Pi, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(at, G @ Pi @ A.T, rtol=1e-12, atol=1e-12)


def component(seed, scale):
    g = torch.Generator().manual_seed(seed)
    comp = LoRAComponent(12, 9, 3, scale=scale)
    with torch.no_grad():
        comp.A.copy_(torch.randn(3, 12, generator=g))
        comp.B.copy_(torch.randn(9, 3, generator=g))
    G = torch.randn(9, 12, generator=g, dtype=F64)
    V = torch.linalg.qr(torch.randn(12, 4, generator=g, dtype=F64))[0]
    A, B = comp.A.detach().double(), comp.B.detach().double()
    # raw factor gradients of W = W0 + s B A by the chain rule (Eq. 4, transposes corrected)
    comp.A.grad, comp.B.grad = (scale * B.T @ G).float(), (scale * G @ A.T).float()
    return comp, G, V, A, B


@pytest.mark.parametrize(
    "keep, weight", [(1.0, -1.0), (0.0, 0.5), (0.5, 2.0)], ids=["safe", "drs-like", "mixed"]
)
def test_gr_follows_eq_6_7_for_the_target_g_pi(keep, weight):
    """Defaults (keep = 1, weight = -1) are Janus-LoRA's safe gradient G_W (I - V V^T)."""
    comp, G, V, A, B = component(1, 0.5)
    gamma = 1e-2
    Pi = keep * torch.eye(12, dtype=F64) + weight * V @ V.T
    want = dense_gr(G @ Pi, A, B, 0.5, gamma)
    if (keep, weight) == (1.0, -1.0):
        got = rectified_gradients(comp, gamma, V.float(), (G @ V).float())
    else:
        got = rectified_gradients(comp, gamma, V.float(), (G @ V).float(), keep, weight)
    for a, b in zip(got, want, strict=True):
        assert rel(a, b) < 1e-5


def test_gr_without_basis_rectifies_the_raw_gradient():
    comp, G, _, A, B = component(2, 0.5)
    got = rectified_gradients(comp, 1e-2)
    for a, b in zip(got, dense_gr(G, A, B, 0.5, 1e-2), strict=True):
        assert rel(a, b) < 1e-5


def test_gr_uses_the_components_scale():
    """The rectification reads s from the component (``comp.scale``): its result is the dense
    GR at that s and measurably not the one at s = 1."""
    comp, G, V, A, B = component(3, 0.5)
    target = G - G @ V @ V.T
    got = rectified_gradients(comp, 1e-2, V.float(), (G @ V).float())
    at_s = dense_gr(target, A, B, 0.5, 1e-2)
    at_one = dense_gr(target, A, B, 1.0, 1e-2)  # the same GR at s = 1
    for a, b, c in zip(got, at_s, at_one, strict=True):
        assert rel(a, b) < 1e-5
        assert rel(a, c) > 1e-2
