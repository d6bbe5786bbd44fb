"""Gradient Rectification (Janus-LoRA Sec. 3.3, Eq. 6-7) as a plug-in for any method that
trains LoRA pairs on the fused qkv layers: Janus-LoRA itself, LoRA-GPM + GR and LoRA-DRS + GR
(Janus-LoRA Fig. 6).

GR replaces the factor gradients of a pair by the ridge solutions that make the composite
update ``s (B dA + dB A)`` closest to a *target* full-weight gradient ``G_W Pi``, with
``Pi = keep I + basis_weight V V^T`` (:func:`janus.core.geometry.projected_gradient_products`).
``G_W`` (d_out x d_in) is never formed: GR needs ``B^T G_W Pi`` and ``G_W Pi A^T``, which come
from the factor gradients (``G_A = s B^T G_W``, ``G_B = s G_W A^T``) and ``G_W V = Gy^T (X V)``,
captured per step by :class:`ActivationCapture` (rank r + k work per slice).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from janus.core import geometry as geo
from janus.core.precision import full_precision, statistic
from janus.model.lora import LoRAComponent, LoRAQKV


class ActivationCapture:
    """Forward/gradient hooks on one fused qkv layer during training steps.

    Keeps the batch's inputs X (tokens x d_in, float32) for OE, and, when a basis is set, the
    products ``G_W V = Gy^T (X V)`` per adapted slice (d_out x k, float32) for GR. Both come
    from the activations of the (possibly autocast) forward, cast to float32, and are formed
    with autocast off. Its owner sets it up with :meth:`configure` and takes what a step
    captured with :meth:`take_inputs` and :meth:`take_products`.
    """

    def __init__(self, adapter: LoRAQKV, register: Callable[[LoRAQKV, Callable], None]) -> None:
        """``register(adapter, fn)`` adds the forward hook, e.g. a method's
        :meth:`~janus.methods.base.Method.forward_hook` (which removes it at the end of the
        run)."""
        self.adapter = adapter
        self._keep_inputs = True
        self._basis: torch.Tensor | None = None
        self._x: torch.Tensor | None = None
        self._gw_v: dict[str, torch.Tensor] = {}
        register(adapter, self._forward)

    def configure(self, basis: torch.Tensor | None, keep_inputs: bool) -> None:
        """From the next step on: capture ``G_W V`` for ``V = basis`` (None: none), and keep
        the inputs X or not."""
        self._basis, self._keep_inputs = basis, keep_inputs

    @property
    def basis(self) -> torch.Tensor | None:
        """The basis V whose products ``G_W V`` are captured (None: none)."""
        return self._basis

    @property
    def inputs(self) -> torch.Tensor | None:
        """The last step's inputs X, if kept and not yet taken."""
        return self._x

    def take_inputs(self) -> torch.Tensor | None:
        """The last step's inputs X (None: not kept, or already taken); forgets them."""
        x, self._x = self._x, None
        return x

    def take_products(self) -> dict[str, torch.Tensor]:
        """The last step's ``G_W V`` per slice (empty without a basis); forgets them."""
        products, self._gw_v = self._gw_v, {}
        return products

    def _forward(self, module: LoRAQKV, inputs: tuple, output: torch.Tensor) -> None:
        if not (torch.is_grad_enabled() and output.requires_grad):
            return
        x = statistic(inputs[0].reshape(-1, module.in_features))
        self._x = x if self._keep_inputs else None
        if self._basis is None:
            return
        with full_precision():
            xv = x @ self._basis.float()

        def grab(gy: torch.Tensor) -> None:
            gy = statistic(gy.reshape(-1, module.base.out_features))
            with full_precision():
                self._gw_v = {s: gy[:, module.rows(s)].T @ xv for s in module.slices}

        output.register_hook(grab)


def rectified_gradients(
    comp: LoRAComponent,
    gamma: float,
    basis: torch.Tensor | None = None,
    gw_v: torch.Tensor | None = None,
    keep: float = 1.0,
    basis_weight: float = -1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GR (Eq. 6-7) of ``comp``'s raw factor gradients towards ``G_W Pi``,
    ``Pi = keep I + basis_weight V V^T`` with ``V = basis`` and ``gw_v = G_W V``; without a
    basis, towards the raw gradient ``G_W``. The defaults are Janus-LoRA's safe gradient
    ``G_W (I - V V^T)``."""
    s = comp.scale
    A, B = comp.A.detach().float(), comp.B.detach().float()
    bt_g = comp.A.grad.float() / s  # B^T G_W
    g_at = comp.B.grad.float() / s  # G_W A^T
    if basis is not None:
        bt_g, g_at = geo.projected_gradient_products(bt_g, g_at, gw_v, basis, A, keep,
                                                     basis_weight)
    d_a, d_b = geo.rectify_from_products(bt_g, g_at, A, B, s, gamma)
    return d_a.to(comp.A.dtype), d_b.to(comp.B.dtype)
