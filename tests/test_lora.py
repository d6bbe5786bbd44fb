"""LoRA adapters on the fused qkv Linear, checked against dense references."""

import pytest
import torch
from torch import nn

from janus.core.errors import ConfigError
from janus.core.geometry import normalized_direction
from janus.model.lora import LoRAComponent, LoRAQKV, Magnitudes, inject_lora, negated

D = 12


def make(slices=("k", "v"), seed=0) -> LoRAQKV:
    torch.manual_seed(seed)
    return LoRAQKV(nn.Linear(D, 3 * D), slices)


def randomize(layer: LoRAQKV) -> None:
    for _, _, c in layer.iter_components():
        with torch.no_grad():
            c.B.normal_()


def test_fresh_component_leaves_outputs_unchanged():
    layer = make()
    x = torch.randn(5, 7, D)
    before = layer(x)
    layer.add_component(rank=3, scale=0.5)
    assert torch.equal(layer(x), before)  # B = 0 at init


@pytest.mark.parametrize("slices", [("q",), ("k", "v"), ("q", "k", "v"), ("q", "v")])
def test_forward_equals_dense_merged_weight(slices):
    layer = make(slices)
    layer.add_component(rank=2, scale=0.7)
    layer.add_component(rank=3, scale=1.3)
    randomize(layer)
    x = torch.randn(4, 6, D)
    w = layer.base.weight.detach().clone()
    for s, _, c in layer.iter_components():
        rows = {"q": slice(0, D), "k": slice(D, 2 * D), "v": slice(2 * D, 3 * D)}[s]
        w[rows] += c.scale * c.B.detach() @ c.A.detach()
    dense = x @ w.T + layer.base.bias.detach()
    torch.testing.assert_close(layer(x), dense, rtol=1e-5, atol=1e-5)
    # untouched slices keep the base output exactly
    base = layer.base(x)
    for i, s in enumerate("qkv"):
        if s not in slices:
            assert torch.equal(layer(x)[..., i * D : (i + 1) * D], base[..., i * D : (i + 1) * D])


def test_merge_folds_w0_plus_sBA_and_keeps_function():
    layer = make()
    layer.add_component(rank=3, scale=0.5)
    randomize(layer)
    x = torch.randn(3, D)
    before = layer(x).detach()
    w0 = layer.base.weight.detach().clone()
    expected = w0.clone()
    for s, _, c in layer.iter_components():
        expected[layer.rows(s)] += 0.5 * c.B.detach() @ c.A.detach()
    layer.merge()
    torch.testing.assert_close(layer.base.weight, expected)
    assert not list(layer.iter_components())
    torch.testing.assert_close(layer(x), before, rtol=1e-5, atol=1e-5)


def test_adapter_gradients_equal_dense_reference():
    """dL/dB = s (dL/dY_p) (A X)^T and dL/dA = s B^T (dL/dY_p) X^T for Y_p = W_p X + s B A X."""
    layer = make(("k", "v"))
    (comp_k, comp_v) = layer.add_component(rank=3, scale=0.8).values()
    randomize(layer)
    x = torch.randn(10, D)
    g_out = torch.randn(10, 3 * D)
    (layer(x) * g_out).sum().backward()
    for comp, rows in ((comp_k, layer.rows("k")), (comp_v, layer.rows("v"))):
        g = g_out[:, rows]  # dL/dY for this slice, tokens x d_out
        A, B, s = comp.A.detach(), comp.B.detach(), comp.scale
        torch.testing.assert_close(comp.B.grad, s * g.T @ (x @ A.T), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(comp.A.grad, s * B.T @ g.T @ x, rtol=1e-5, atol=1e-6)
        # and both equal the chain rule through the dense weight gradient G_W = g^T x
        gw = g.T @ x
        torch.testing.assert_close(comp.B.grad, s * gw @ A.T, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(comp.A.grad, s * B.T @ gw, rtol=1e-5, atol=1e-6)
    assert layer.base.weight.grad is None


def test_freeze_and_add_per_task_components():
    layer = make()
    layer.add_component(rank=2)
    layer.set_trainable(False)
    new = layer.add_component(rank=2)
    flags = [(i, c.A.requires_grad) for s, i, c in layer.iter_components()]
    assert flags == [(0, False), (1, True), (0, False), (1, True)]
    assert new["k"] is layer.components["k"][1]


def test_bad_config_errors():
    with pytest.raises(ConfigError, match="rank 13 is impossible"):
        LoRAComponent(D, D, rank=13)
    with pytest.raises(ConfigError, match="subset"):
        make(("x",))
    with pytest.raises(ConfigError, match="timm VisionTransformer"):
        inject_lora(nn.Sequential(nn.Linear(2, 2)))


def test_negated_flips_every_update_magnitude_included_and_restores_them():
    """Inside ``negated`` the layer computes W0 x - sum of the updates (a component's own
    magnitude is kept and negated); afterwards the layer is as before."""
    torch.manual_seed(0)
    layer = LoRAQKV(nn.Linear(6, 18), slices=("k", "v"))
    for _ in range(2):
        for comp in layer.add_component(2).values():
            nn.init.normal_(comp.B)
    with_magnitude = layer.components["v"][1]
    magnitudes = Magnitudes("product", count=2, init=0.5)
    with_magnitude.use_magnitude(magnitudes, 1)
    x = torch.randn(4, 6)
    base, full = layer.base(x), layer(x)
    with negated([c for _, _, c in layer.iter_components()]):
        flipped = layer(x)
    torch.testing.assert_close(flipped, 2 * base - full)
    assert with_magnitude.magnitude_index == 1 and layer.components["k"][0].factor() is None
    torch.testing.assert_close(layer(x), full)


def test_magnitude_is_alpha_over_the_direction_norm_in_forward_and_delta_weight():
    """With a magnitude, a component adds alpha_k B A x / ||B A||_F (SD-LoRA Eq. 3-4, against
    geometry.normalized_direction), whatever its scale; ``raw`` drops the norm."""
    torch.manual_seed(0)
    comp = LoRAComponent(6, 5, rank=2, scale=3.0)
    nn.init.normal_(comp.B)
    magnitudes = Magnitudes("product", count=2, init=0.7)
    comp.use_magnitude(magnitudes, 1)
    want = 0.7 * normalized_direction(comp.A.detach(), comp.B.detach(), "product")
    torch.testing.assert_close(comp.delta_weight(), want)
    x = torch.randn(4, 6)
    torch.testing.assert_close(comp(x), x @ want.T)
    magnitudes.enter_raw(1)
    torch.testing.assert_close(comp.delta_weight(), 0.7 * comp.B @ comp.A)
