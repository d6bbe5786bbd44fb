"""LoRA adapters on slices of timm's fused ``qkv`` Linear.

A timm ViT block computes ``qkv = W x + b`` with ``W`` of shape (3d, d): rows [0, d) are the
query projection, [d, 2d) the key, [2d, 3d) the value. :class:`LoRAQKV` wraps that Linear
and adds, for each adapted slice ``p`` in {q, k, v},

    delta_p(x) = sum_c  s * B_c A_c x,        A_c in R^{r x d_in},  B_c in R^{d_p x r}

(Hu et al. 2022, Eq. 3; the K/V placement and the per-task component lists follow InfLoRA,
Liang & Li 2024). Per-task methods append one component per task and freeze the old ones;
Janus-style methods keep a single, continually trained component per slice.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from janus.core.errors import ConfigError
from janus.core.precision import full_precision

SLICES = ("q", "k", "v")


def direction_norm(A: torch.Tensor, B: torch.Tensor, norm: str) -> torch.Tensor:
    """The denominator of :func:`janus.core.geometry.normalized_direction` (SD-LoRA Eq. 3) in
    float32, from r x r Gram matrices (``||B A||_F^2 = <B^T B, A A^T>``) instead of the dense
    product; ``norm="factors"``: ``||B||_F ||A||_F`` (the official code's)."""
    with full_precision():
        A, B = A.float(), B.float()
        if norm == "product":
            return ((B.T @ B) * (A @ A.T)).sum().clamp_min(0).sqrt()
        return B.norm() * A.norm()


class Magnitudes(nn.Module):
    """Learnable magnitudes ``alpha_k`` of normalised LoRA directions, one per component index
    and shared by every adapted slice of every block (SD-LoRA, Wu et al. ICLR 2025, Eq. 4,
    Sec. 4.1): component k of a slice computes ``alpha_k dir(A_k, B_k) x`` instead of
    ``scale B_k A_k x``.

    The model owns it (:meth:`janus.model.continual.ContinualViT.add_magnitudes`), so its
    ``alphas`` are in the model's ``state_dict`` and its structure (resume rebuilds it); the
    components only refer to it (:meth:`LoRAComponent.use_magnitude`)."""

    def __init__(self, norm: str, count: int = 0, init: float = 0.0) -> None:
        super().__init__()
        self.norm = norm
        self.alphas = nn.Parameter(torch.full((count,), float(init)))
        self.raw: int | None = None

    def assign(self, values: torch.Tensor) -> None:
        """Replace the magnitudes by ``values`` (a new parameter: grown by a task, merged by
        SD-LoRA-KD)."""
        self.alphas = nn.Parameter(values.detach().to(self.alphas).clone())

    def enter_raw(self, k: int | None) -> None:
        """Component ``k`` enters as ``alpha_k B_k A_k`` (the official code's un-normalised
        current task); None: every component normalised."""
        self.raw = k

    def factor(self, comp: LoRAComponent, k: int) -> torch.Tensor:
        """The factor that turns ``scale B A x`` into component k's term."""
        if k == self.raw:
            return self.alphas[k] / comp.scale
        return self.alphas[k] / (comp.scale * direction_norm(comp.A, comp.B, self.norm))


class LoRAComponent(nn.Module):
    """One low-rank pair: ``delta(x) = scale * B (A x)``; with a magnitude
    (:meth:`use_magnitude`) SD-LoRA's ``alpha_k dir(A, B) x`` instead, and inside
    :meth:`negated` minus its update: the forward pass, :meth:`delta_weight` and
    :meth:`LoRAQKV.merge` all include both.

    A starts Kaiming-uniform and B at zero (Hu et al. 2022), so a fresh component leaves the
    layer's output unchanged.
    """

    def __init__(self, d_in: int, d_out: int, rank: int, scale: float = 1.0) -> None:
        super().__init__()
        if not 1 <= rank <= min(d_in, d_out):
            raise ConfigError(
                f"LoRA rank {rank} is impossible for a {d_out}x{d_in} projection: "
                f"choose 1 <= rank <= {min(d_in, d_out)}"
            )
        self.rank = rank
        self.scale = scale
        self.A = nn.Parameter(torch.empty(rank, d_in))
        self.B = nn.Parameter(torch.zeros(d_out, rank))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        self._magnitude: tuple[Magnitudes, int] | None = None  # a tuple: not a submodule
        self._minus_one: torch.Tensor | None = None  # set while negated, made once per block

    def use_magnitude(self, magnitudes: Magnitudes | None, k: int = 0) -> None:
        """Scale by ``magnitudes``' entry ``k`` over the direction's norm (None: plain LoRA)."""
        self._magnitude = None if magnitudes is None else (magnitudes, k)

    @property
    def magnitude_index(self) -> int | None:
        """The index of this component's magnitude (None: plain LoRA)."""
        return None if self._magnitude is None else self._magnitude[1]

    @contextmanager
    def negated(self) -> Iterator[None]:
        """Within the ``with`` block the component adds minus its update."""
        self._minus_one = torch.tensor(-1.0, device=self.A.device)
        try:
            yield
        finally:
            self._minus_one = None

    def factor(self) -> torch.Tensor | None:
        """What ``scale B A`` is multiplied by (None: nothing)."""
        f = None if self._magnitude is None else self._magnitude[0].factor(self, self._magnitude[1])
        if self._minus_one is not None:
            return -f if f is not None else self._minus_one
        return f

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.scale * F.linear(F.linear(x, self.A), self.B)
        f = self.factor()
        return out if f is None else out * f

    def delta_weight(self) -> torch.Tensor:
        """The dense update ``scale * B A`` (d_out x d_in), times :meth:`factor` if any."""
        w = self.scale * self.B @ self.A
        f = self.factor()
        return w if f is None else w * f

    def set_trainable(self, trainable: bool) -> None:
        self.A.requires_grad_(trainable)
        self.B.requires_grad_(trainable)


class LoRAQKV(nn.Module):
    """A frozen fused ``qkv`` Linear plus low-rank components on chosen slices."""

    def __init__(self, qkv: nn.Linear, slices: Sequence[str] = ("k", "v")) -> None:
        super().__init__()
        unknown = set(slices) - set(SLICES)
        if unknown or not slices:
            raise ConfigError(f"LoRA targets must be a non-empty subset of {SLICES}, got {slices}")
        if qkv.out_features % 3:
            raise ConfigError(f"expected a fused qkv Linear, got out_features={qkv.out_features}")
        self.base = qkv
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.slices = tuple(s for s in SLICES if s in slices)
        self.components = nn.ModuleDict({s: nn.ModuleList() for s in self.slices})

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def slice_dim(self) -> int:
        return self.base.out_features // 3

    def rows(self, name: str) -> slice:
        """Rows of the fused weight that belong to slice ``name``."""
        i = SLICES.index(name)
        return slice(i * self.slice_dim, (i + 1) * self.slice_dim)

    def add_component(self, rank: int, scale: float = 1.0) -> dict[str, LoRAComponent]:
        """Append a fresh (trainable) component to every adapted slice."""
        added = {}
        for s in self.slices:
            comp = LoRAComponent(self.in_features, self.slice_dim, rank, scale)
            comp.to(device=self.base.weight.device, dtype=self.base.weight.dtype)
            self.components[s].append(comp)
            added[s] = comp
        return added

    def iter_components(self) -> Iterator[tuple[str, int, LoRAComponent]]:
        """``(slice, index in its slice, component)`` of every component."""
        for s in self.slices:
            for i, comp in enumerate(self.components[s]):
                yield s, i, comp

    def slice_components(self, name: str) -> list[LoRAComponent]:
        """The components of slice ``name`` in the order they were added."""
        return list(self.components[name])

    def task_components(self, k: int) -> dict[str, LoRAComponent]:
        """Component ``k`` of every adapted slice (a per-task method's task ``k``)."""
        return {s: self.components[s][k] for s in self.slices}

    def remove_components(self, k: int) -> None:
        """Delete component ``k`` of every adapted slice; the later ones move down by one."""
        for s in self.slices:
            del self.components[s][k]

    def set_trainable(self, trainable: bool) -> None:
        """Train (True) or freeze (False) every component."""
        for _, _, comp in self.iter_components():
            comp.set_trainable(trainable)

    def slice_delta(self, name: str, x: torch.Tensor) -> torch.Tensor | None:
        comps = self.components[name] if name in self.slices else ()
        out = None
        for comp in comps:
            d = comp(x)
            out = d if out is None else out + d
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        if not any(len(self.components[s]) for s in self.slices):
            return out
        parts = list(out.split(self.slice_dim, dim=-1))
        for i, name in enumerate(SLICES):
            delta = self.slice_delta(name, x)
            if delta is not None:
                parts[i] = parts[i] + delta
        return torch.cat(parts, dim=-1)

    def delta_weight(self) -> torch.Tensor:
        """Dense sum of all components as a (3d x d) update of the fused weight."""
        w = torch.zeros_like(self.base.weight)
        for s, _, comp in self.iter_components():
            w[self.rows(s)] += comp.delta_weight().to(w.dtype)
        return w

    @torch.no_grad()
    def merge(self) -> None:
        """Fold every component into the base weight and remove it (W0 <- W0 + sum of their
        :meth:`LoRAComponent.delta_weight`)."""
        self.base.weight += self.delta_weight()
        for s in self.slices:
            self.components[s] = nn.ModuleList()


@contextmanager
def negated(components: Sequence[LoRAComponent]) -> Iterator[None]:
    """Within the ``with`` block every component of ``components`` adds minus its update
    (LoRA-DRS's LoRA subtraction), magnitude included (:meth:`LoRAComponent.negated`)."""
    with ExitStack() as stack:
        for c in components:
            stack.enter_context(c.negated())
        yield


def inject_lora(model: nn.Module, slices: Sequence[str] = ("k", "v")) -> list[LoRAQKV]:
    """Replace every ``attn.qkv`` Linear of a timm ViT by a :class:`LoRAQKV` wrapper."""
    wrapped = []
    for block in getattr(model, "blocks", []):
        attn = block.attn
        if isinstance(attn.qkv, LoRAQKV):
            raise ConfigError("adapters are already injected into this model")
        attn.qkv = LoRAQKV(attn.qkv, slices)
        wrapped.append(attn.qkv)
    if not wrapped:
        raise ConfigError("no `blocks[i].attn.qkv` Linear found: is this a timm VisionTransformer?")
    return wrapped
