"""LoRA pairs protected by a per-block basis, with Gradient Rectification: the component that
Janus-LoRA, LoRA-GPM and LoRA-DRS (and their "+ GR" variants, Janus-LoRA Fig. 6) share.

Each method decides *which* basis protects a block (Janus-LoRA: a snapshot of its online
estimate; LoRA-GPM: the offline GPM basis; LoRA-DRS: the drift-resistant space) and *which*
pairs are trained; this component turns the raw factor gradients of those pairs into the
protected ones after every backward pass:

- with ``rectify``: GR (Janus-LoRA Eq. 6-7) towards ``G_W Pi``, ``Pi = keep I + w V V^T``
  (:func:`janus.methods.rectification.rectified_gradients`); Janus-LoRA's safe gradient
  ``G_W (I - V V^T)`` (Thm 3.1, Eq. 3) is ``keep = 1, w = -1``, LoRA-DRS's projected gradient
  ``G_W U U^T / sqrt(k)`` is ``keep = 0, w = 1 / sqrt(k)``; without a basis, towards ``G_W``;
- without: A's gradient projected off the basis, ``G_A (I - V V^T)`` (Janus-LoRA Table 1's
  "OE only", LoRA-GPM).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch

from janus.core import geometry as geo
from janus.methods.rectification import ActivationCapture, rectified_gradients
from janus.model.lora import LoRAComponent, LoRAQKV

Pair = tuple[int, str, LoRAComponent]
"""``(block, slice, component)``: one trained LoRA pair and where it sits."""


class ProtectedLoRA:
    """The per-block captures, the protecting bases and the gradient rule of a method."""

    def __init__(
        self,
        adapters: Sequence[LoRAQKV],
        register: Callable[[LoRAQKV, Callable], None],
        *,
        rectify: bool,
        gamma: float,
    ) -> None:
        """One :class:`ActivationCapture` per adapter, hooked through ``register`` (a method's
        :meth:`~janus.methods.base.Method.forward_hook`); ``gamma`` is GR's ridge
        coefficient."""
        self.captures = [ActivationCapture(a, register) for a in adapters]
        self.rectify = rectify
        self.gamma = gamma
        self.bases: list[torch.Tensor | None] = [None] * len(self.captures)
        self.weights: list[float] = [-1.0] * len(self.captures)
        self.keep = 1.0

    def protect(
        self,
        bases: Sequence[torch.Tensor | None],
        *,
        keep_inputs: bool = False,
        keep: float = 1.0,
        weights: Sequence[float] | None = None,
    ) -> None:
        """From the next step on, protect block i's updates by ``bases[i]`` (None: not
        protected), GR's target being ``G_W (keep I + weights[i] V V^T)`` (default: the safe
        gradient); ``keep_inputs`` keeps each step's layer inputs (:meth:`inputs`)."""
        self.bases = list(bases)
        self.keep = keep
        self.weights = [-1.0] * len(self.bases) if weights is None else list(weights)
        for capture, basis in zip(self.captures, self.bases, strict=True):
            capture.configure(basis if self.rectify else None, keep_inputs)

    def continual_pairs(self) -> list[Pair]:
        """The pairs of a single continually trained LoRA (each adapter's component 0)."""
        return [(i, s, comp) for i, cap in enumerate(self.captures)
                for s, comp in cap.adapter.task_components(0).items()]

    def update_gradients(self, pairs: Iterable[Pair]) -> None:
        """Replace the raw factor gradients of ``pairs`` by the protected ones (module
        docstring); pairs without gradients are left alone."""
        products = [capture.take_products() for capture in self.captures]
        for block, s, comp in pairs:
            if comp.A.grad is None or comp.B.grad is None:
                continue
            basis = self.bases[block]
            if self.rectify:
                comp.A.grad, comp.B.grad = rectified_gradients(
                    comp, self.gamma, basis, products[block].get(s), self.keep,
                    self.weights[block],
                )
            elif basis is not None:
                comp.A.grad = geo.safe_update(comp.A.grad.float(), basis).to(comp.A.grad.dtype)

    def take_inputs(self) -> list[torch.Tensor | None]:
        """Per block, the last step's layer inputs (None where not kept); forgets them."""
        return [capture.take_inputs() for capture in self.captures]
