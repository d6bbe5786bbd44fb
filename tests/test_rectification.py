"""The GR plug-in's product form against the dense projected gradient ``G_W Pi``."""

import pytest
import torch

from janus import geometry as geo
from janus.lora import LoRAComponent
from janus.rectification import rectified_gradients


@pytest.mark.parametrize("keep, weight", [(1.0, -1.0), (0.0, 1 / 7**0.5), (0.5, 2.0)])
def test_projected_products_equal_the_dense_projector(keep, weight):
    g = torch.Generator().manual_seed(0)
    d_out, d_in, r, k = 9, 12, 3, 7
    G = torch.randn(d_out, d_in, generator=g, dtype=torch.float64)
    A = torch.randn(r, d_in, generator=g, dtype=torch.float64)
    B = torch.randn(d_out, r, generator=g, dtype=torch.float64)
    V = torch.linalg.qr(torch.randn(d_in, k, generator=g, dtype=torch.float64))[0]
    Pi = keep * torch.eye(d_in, dtype=torch.float64) + weight * V @ V.T
    bt, at = geo.projected_gradient_products(B.T @ G, G @ A.T, G @ V, V, A, keep, weight)
    torch.testing.assert_close(bt, B.T @ G @ Pi, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(at, G @ Pi @ A.T, rtol=1e-12, atol=1e-12)


def test_defaults_are_the_safe_gradient_and_gr_follows_eq_6_7():
    g = torch.Generator().manual_seed(1)
    comp = LoRAComponent(12, 9, 3, scale=0.7)
    with torch.no_grad():
        comp.A.copy_(torch.randn(3, 12, generator=g))
        comp.B.copy_(torch.randn(9, 3, generator=g))
    G = torch.randn(9, 12, generator=g)
    V = torch.linalg.qr(torch.randn(12, 4, generator=g))[0]
    comp.A.grad, comp.B.grad = geo.lora_factor_gradients(G, comp.A.detach(), comp.B.detach(),
                                                         comp.scale)
    got = rectified_gradients(comp, 1e-3, V, G @ V)
    want = geo.rectify_factor_updates(geo.safe_update(G, V).double(), comp.A.detach().double(),
                                      comp.B.detach().double(), comp.scale, 1e-3)
    for a, b in zip(got, want, strict=True):
        assert float((a.double() - b).norm() / b.norm()) < 1e-5
