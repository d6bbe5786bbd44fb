"""SeqLoRA (``shared/papers/seqlora.txt``, Algorithm 1) and its Continual Alternating baseline,
applied to the class-incremental ViT classifier.

Notation map. SeqLoRA writes ``W = W0 + A_i B_i^T`` with ``A_i`` (``n x r``, output side) and
``B_i`` (``m x r``, the *input basis*); :class:`janus.model.lora.LoRAComponent` writes
``W = W0 + scale B A``. Hence SeqLoRA's ``B_i`` is our ``A^T`` and its ``A_i`` is our
``scale B``: the constraint ``B_j^T B_i = 0`` (Eq. 5) is ``A_j A_i^T = 0`` between the rows of
our ``A`` factors of the same slice and block. Every adapted slice of every block
(``lora.targets``) is one SeqLoRA "layer" with its own ``B_int``.

Per task a new component per slice is added and the earlier ones are frozen (Alg. 1 lines
3-5, 34). Each batch of the loop runs ``bilevel_iterations`` (K) iterations of Alg. 1
lines 6-33 on that batch (:func:`seqlora_iteration`):

1. tentative lower step ``A~ = A^(k) - alpha grad_A L(A^(k), B^(k))`` (line 9, Eq. 8);
2. ``b_steps`` projected B-steps with the reduced gradient ``g_B - alpha H[g_A]`` (lines
   13-20, Eq. 15-17): ``g_A, g_B`` at ``(A~, B)``, the cross-Hessian ``H`` at
   ``(A^(k), B^(k))`` as line 17 prescribes, ``eps``-regularised projection of line 20;
3. ``a_steps`` plain gradient steps of A at the new B (lines 26-29, Eq. 18).

The classifier head of the task is part of the lower-level block (with our ``B`` factors):
it is not constrained, and like ``A_i`` it adapts to the basis. Continual Alternating
(Sec. 3.2, Sec. 4) is the same iteration without the ``alpha H[g_A]`` term. All steps are
plain gradient steps with the step sizes ``alpha`` and ``beta`` of Alg. 1 (no optimizer, no
schedule). Choices and their reasons: ``docs/methods/seqlora.md``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from janus.core import geometry as geo
from janus.core.errors import ConfigError
from janus.core.fields import param
from janus.methods.base import Method, TaskContext
from janus.methods.params import Params
from janus.model.continual import ContinualViT

Tensors = tuple[torch.Tensor, ...]
LossFn = Callable[[Sequence[torch.Tensor], Sequence[torch.Tensor]], torch.Tensor]


def seqlora_iteration(
    loss_fn: LossFn,
    A: Sequence[torch.Tensor],
    B: Sequence[torch.Tensor],
    bases: Sequence[torch.Tensor],
    *,
    alpha: float,
    beta: float,
    b_steps: int,
    a_steps: int,
    eps: float,
    cross_hessian: bool = True,
) -> tuple[Tensors, Tensors, float]:
    """One bilevel iteration of SeqLoRA Alg. 1 (lines 8-31) in SeqLoRA's notation.

    ``loss_fn(A, B)`` is the task loss of the lower-level tensors ``A`` and the upper-level
    input bases ``B`` (each ``m x r``); ``bases[j]`` is ``B_int`` of ``B[j]`` (``m x k``,
    ``k = 0`` for the first task). Returns ``(A^(k+1), B^(k+1), L(A^(k), B^(k)))``. With
    ``cross_hessian=False`` the B-direction is the partial gradient ``g_B`` at ``(A~, B)``:
    Continual Alternating.
    """
    A0, B0 = tuple(a.detach() for a in A), tuple(b.detach() for b in B)
    seen: list[float] = []

    def loss_at_start(A_: Sequence[torch.Tensor], B_: Sequence[torch.Tensor]) -> torch.Tensor:
        """``loss_fn``, keeping the value of its first call: line 9's, at ``(A^(k), B^(k))``."""
        value = loss_fn(A_, B_)
        if not seen:
            seen.append(float(value.detach()))
        return value

    if cross_hessian:  # line 9 and line 17's point
        grad_A0, H = geo.cross_hessian_operator(loss_at_start, A0, B0)
    else:
        grad_A0 = geo.partial_grads(loss_at_start, A0, B0)[0]
    loss0 = seen[0]
    A_tilde = tuple(a - alpha * g for a, g in zip(A0, grad_A0, strict=True))  # line 9
    Bs = B0
    for _ in range(b_steps):  # lines 13-21
        g_A, g_B = geo.partial_grads(loss_fn, A_tilde, Bs)  # lines 14-15
        direction = geo.reduced_gradient(g_B, H(g_A), alpha) if cross_hessian else g_B  # 17-18
        Bs = tuple(
            geo.regularized_complement_projection(b - beta * d, basis, eps)  # lines 19-20
            for b, d, basis in zip(Bs, direction, bases, strict=True)
        )
    As = A0
    for _ in range(a_steps):  # lines 26-29
        g_A = geo.partial_grads(loss_fn, As, Bs)[0]
        As = tuple(a - alpha * g for a, g in zip(As, g_A, strict=True))
    return As, Bs, loss0


@contextlib.contextmanager
def unfused_attention(model: ContinualViT) -> Iterator[None]:
    """timm's attention through explicit softmax(q k^T) v instead of the fused kernel, whose
    backward has no derivative on CPU (the cross-Hessian needs double backward). The same
    function; used by both variants so that their costs differ only by the cross-Hessian."""
    attns = [block.attn for block in model.vit.blocks if hasattr(block.attn, "fused_attn")]
    saved = [a.fused_attn for a in attns]
    for a in attns:
        a.fused_attn = False
    try:
        yield
    finally:
        for a, fused in zip(attns, saved, strict=True):
            a.fused_attn = fused


@dataclass(frozen=True)
class SeqLoRAParams(Params):
    alpha: float = param(0.1, "lower-level step size (A factors, head); not given by the paper",
                         low=0, low_open=True)
    beta: float = param(0.1, "upper-level step size (input bases); not given by the paper",
                        low=0, low_open=True)
    bilevel_iterations: int = param(3, "K per batch (Sec. 4 defaults: K = 3)", low=1)
    b_steps: int = param(2, "S_B (Sec. 4: \"inner steps 2\")", low=1)
    a_steps: int = param(2, "S_A'", low=1)
    eps: float = param(1e-8, "regularisation of the projection (Alg. 1 line 20)", low=0)


class SeqLoRA(Method, name="seqlora", params=SeqLoRAParams):
    """SeqLoRA: per-task LoRA, bilevel (cross-Hessian) steps, orthogonal input bases.

    SeqLoRA, Alg. 1: bilevel training of a new LoRA per task, its input basis kept
    orthogonal to the earlier tasks' bases."""

    owns_step = True
    cross_hessian: ClassVar[bool] = True

    def init_state(self) -> None:
        self.lower: list[torch.nn.Parameter] = []
        self.upper: list[torch.nn.Parameter] = []
        self.bases: list[torch.Tensor] = []

    def setup(self, model: ContinualViT) -> None:
        """Refuse a stream whose bases cannot all be orthogonal (Sec. 5: at most m / r tasks)."""
        d_in, rank = model.adapters[0].in_features, self.cfg.lora.rank
        tasks = self.cfg.data.num_tasks
        if tasks * rank > d_in:
            raise ConfigError(
                f"{self.name} keeps every task's rank-{rank} input basis orthogonal to the earlier "
                f"ones, so {tasks} tasks need {tasks * rank} > {d_in} input dimensions; lower "
                f"lora.rank to at most {d_in // tasks} or use fewer tasks"
            )

    def before_task(self, model: ContinualViT, ctx: TaskContext) -> None:
        """Freeze the earlier components, add this task's (Alg. 1 lines 4-5)."""
        model.set_lora_trainable(False)
        self.lower, self.upper, self.bases = [], [], []
        for adapter, added in zip(model.adapters, model.add_lora_components(), strict=True):
            for s, comp in added.items():
                earlier = [c.A.detach().T for c in adapter.slice_components(s)[:-1]]
                d_in = comp.A.shape[1]
                basis = torch.cat(earlier, dim=1) if earlier else comp.A.new_zeros(d_in, 0)
                self.lower.append(comp.B)
                self.upper.append(comp.A)
                self.bases.append(basis)
        head = model.heads[ctx.index]
        self.lower += [head.weight, head.bias]

    def train_step(
        self, model: ContinualViT, images: torch.Tensor, targets: torch.Tensor, ctx: TaskContext
    ) -> torch.Tensor:
        """K bilevel iterations on this batch; SeqLoRA's ``B`` is our ``A^T``."""
        names = {id(p): n for n, p in model.named_parameters()}
        lower_names = [names[id(p)] for p in self.lower]
        upper_names = [names[id(p)] for p in self.upper]
        labels = ctx.task.labels

        def loss_fn(lower: Sequence[torch.Tensor], bases_t: Sequence[torch.Tensor]) -> torch.Tensor:
            params = dict(zip(lower_names, lower, strict=True))
            params.update((n, b.T) for n, b in zip(upper_names, bases_t, strict=True))
            with ctx.autocast():
                logits = torch.func.functional_call(model, params, (images,))
            return F.cross_entropy(logits[:, labels.start : labels.stop].float(),
                                   targets - labels.start)

        p = self.params
        A = tuple(x.detach() for x in self.lower)
        B = tuple(x.detach().T for x in self.upper)
        first = None
        with unfused_attention(model):
            for _ in range(p.bilevel_iterations):
                A, B, loss = seqlora_iteration(
                    loss_fn, A, B, self.bases, alpha=p.alpha, beta=p.beta,
                    b_steps=p.b_steps, a_steps=p.a_steps, eps=p.eps,
                    cross_hessian=self.cross_hessian,
                )
                first = loss if first is None else first
        with torch.no_grad():
            for param, value in zip(self.lower, A, strict=True):
                param.copy_(value)
            for param, value in zip(self.upper, B, strict=True):
                param.copy_(value.T)
        return torch.tensor(first)


class ContinualAlternating(SeqLoRA, name="continual-alternating"):
    """Continual Alternating: SeqLoRA's Alg. 1 without the cross-Hessian term.

    SeqLoRA's alternating-minimisation baseline (Sec. 3.2): Alg. 1 without the
    cross-Hessian correction of the B-direction."""

    cross_hessian = False
