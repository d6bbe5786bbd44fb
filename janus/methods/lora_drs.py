"""LoRA-DRS, "LoRA Subtraction for Drift-Resistant Space" (Liu & Chang, CVPR 2025), from the
facts about its public code in ``shared/papers/baselines-method-notes.md`` (Sec. 4; the
paper's text is not in ``shared/papers``).

Per task t a new LoRA pair on every adapted slice (A Kaiming-uniform, B with one N(0, 0.01)
entry per column), trained with the task's head:

1. before training (t > 0), the drift-resistant space of each block: the Gram of the qkv
   inputs over the task's training batches through the *LoRA-subtracted* network
   (``W0 - sum_{j<t} B_j A_j`` on K and V), its top eigenvectors ``U_k`` reaching
   ``energy`` (0.99) of the eigenvalue sum, ``P = U_k U_k^T / ||U_k U_k^T||_F``;
2. every optimiser step of the new pair is projected into that space: ``dA <- dA P``,
   ``dB <- P dB`` (the code's projected Adam; ``dB`` is projected on its rows, which works
   because K/V are square); none in task 0;
3. loss: cross-entropy on the task's head + ``lambda_atl`` x the augmented triplet loss on
   normalised features (hardest positive in the batch, hardest negative among the batch and
   all stored old-class prototypes);
4. after training, each new class's prototype is the mean of its (unnormalised) features;
   prediction is nearest normalised prototype (NME); the heads are not used at test time.

``gr=True`` is Janus-LoRA Fig. 6's "LoRA-DRS + GR": instead of projecting the optimiser's
steps, the new pair's gradients are rectified (Janus-LoRA Eq. 6-7) towards the projected
full-weight gradient ``G_W P`` (:mod:`janus.methods.rectification`), and Adam steps with them.

Choices: ``docs/methods/lora_drs.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from janus.core.errors import ConfigError
from janus.core.fields import param
from janus.core.precision import in_full_precision
from janus.methods.activations import input_grams
from janus.methods.base import Method, TaskContext
from janus.methods.params import Params
from janus.methods.protected_lora import ProtectedLoRA
from janus.methods.prototypes import NearestMeanClassifier
from janus.model.continual import ContinualViT
from janus.model.lora import LoRAComponent, negated


def drift_resistant_basis(gram: torch.Tensor, energy: float) -> torch.Tensor:
    """``U_k``: the fewest top eigenvectors of ``gram`` whose eigenvalues reach ``energy`` of
    their sum (d x k)."""
    vals, vecs = torch.linalg.eigh(gram)
    vals, vecs = vals.flip(0).clamp_min(0), vecs.flip(1)
    k = int((vals.cumsum(0) < energy * vals.sum()).sum()) + 1
    k = min(k, len(vals))
    return vecs[:, :k]


def drift_resistant_projector(gram: torch.Tensor, energy: float) -> torch.Tensor:
    """``U_k U_k^T / sqrt(k)`` (``sqrt(k) = ||U_k U_k^T||_F``) for
    :func:`drift_resistant_basis` ``U_k``."""
    U = drift_resistant_basis(gram, energy)
    return U @ U.T / U.shape[1] ** 0.5


@in_full_precision
def augmented_triplet_loss(
    z: torch.Tensor, y: torch.Tensor, old: torch.Tensor | None, margin: float
) -> torch.Tensor:
    """Mean over anchors of ``max(0, d_ap - d_an + margin)``: ``d_ap`` the largest distance to
    a same-label sample of the batch, ``d_an`` the smallest distance to a different-label
    sample or to any old prototype ``old``; ``z`` and ``old`` L2-normalised rows. Anchors
    without a negative are skipped. In float32 under any autocast."""
    dist = torch.cdist(z, z)
    same = y[:, None] == y[None, :]
    d_ap = torch.where(same, dist, torch.zeros_like(dist)).amax(dim=1)
    d_neg = torch.where(same, torch.full_like(dist, torch.inf), dist)
    if old is not None and len(old):
        d_neg = torch.cat([d_neg, torch.cdist(z, old)], dim=1)
    d_an = d_neg.amin(dim=1)
    ok = torch.isfinite(d_an)
    if not ok.any():
        return z.sum() * 0
    return F.relu(d_ap[ok] - d_an[ok] + margin).mean()


@dataclass
class DriftSpace:
    """One block's drift-resistant space in the current task (step 1): the basis ``U_k``
    (d x k, float64, CPU) and the step projector ``U_k U_k^T / sqrt(k)`` (float32)."""

    basis: torch.Tensor
    projector: torch.Tensor


@dataclass
class TaskPair:
    """One slice's pair of the current task and, while a step is projected (step 2), its
    factors before the optimiser's step."""

    block: int
    slice: str
    comp: LoRAComponent
    before: tuple[torch.Tensor, torch.Tensor] | None = None


@dataclass(frozen=True)
class LoRADRSParams(Params):
    energy: float = param(0.99, "eigenvalue energy of the drift-resistant space", low=0,
                          low_open=True, high=1)
    lambda_atl: float = param(0.2, "weight of the augmented triplet loss (ImageNet-R config; "
                              "CIFAR-100 0.05 from janus.methods.anchors)", low=0)
    margin: float = param(2.0, "triplet margin (ImageNet-R config; CIFAR-100 1.0)", low=0)
    head_lr: float | None = param(None, "the code's fc_lrate; None = train.lr", low=0,
                                  low_open=True)
    b_init_std: float = param(0.01, "the single non-zero entry per column of a new B", low=0)
    gr: bool = param(False, "Janus-LoRA Fig. 6: rectify towards G_W P instead of projecting")
    gamma: float = param(1e-4, "GR's ridge coefficient (as janus-lora)", low=0, low_open=True)


class LoRADRS(NearestMeanClassifier, Method, name="lora-drs", params=LoRADRSParams):
    """LoRA-DRS: LoRA subtraction, drift-resistant projection, triplet loss, NME.

    Per-task LoRA, steps projected into the drift-resistant space of the
    LoRA-subtracted features, augmented triplet loss, nearest-prototype evaluation."""

    def init_state(self) -> None:
        self.spaces: list[DriftSpace] | None = None
        """Per block, the current task's drift-resistant space (None in task 0)."""
        self.pairs: list[TaskPair] = []
        self.protection: ProtectedLoRA | None = None
        """``gr``: the captures of ``G_W U`` and the rectification."""
        self.prototypes: torch.Tensor | None = None

    @property
    def projectors(self) -> list[torch.Tensor] | None:
        """The step projectors of the blocks (None in task 0)."""
        return None if self.spaces is None else [space.projector for space in self.spaces]

    @property
    def current(self) -> list[tuple[int, str, LoRAComponent]]:
        """``(block, slice, component)`` of the current task's pairs."""
        return [(pair.block, pair.slice, pair.comp) for pair in self.pairs]

    # ------------------------------------------------------------------ tasks
    def setup(self, model: ContinualViT) -> None:
        a = model.adapters[0]
        if a.slice_dim != a.in_features:
            raise ConfigError(f"{self.name} projects B's step with the input-space projector, "
                              f"which needs square projections; got {a.slice_dim}x{a.in_features}")
        if self.params.gr:
            self.protection = ProtectedLoRA(model.adapters, self.forward_hook, rectify=True,
                                            gamma=self.params.gamma)

    def before_task(self, model: ContinualViT, ctx: TaskContext) -> None:
        model.set_lora_trainable(False)
        self.spaces = None
        if ctx.index > 0:
            bases = [drift_resistant_basis(g, self.params.energy)
                     for g in self.subtracted_grams(model, ctx)]
            self.spaces = [DriftSpace(U, (U @ U.T / U.shape[1] ** 0.5).float()) for U in bases]
        if self.protection is not None:
            self.protect(model)
        self.pairs = []
        for i, added in enumerate(model.add_lora_components()):
            for s, comp in added.items():
                self.init_b(comp)
                self.pairs.append(TaskPair(i, s, comp))

    def protect(self, model: ContinualViT) -> None:
        """``gr``: rectify towards ``G_W U U^T / sqrt(k)`` in each block (towards ``G_W`` in
        task 0, where nothing is projected)."""
        if self.spaces is None:
            self.protection.protect([None] * len(model.adapters))
            return
        bases = [space.basis.float().to(model.device) for space in self.spaces]
        self.protection.protect(bases, keep=0.0, weights=[U.shape[1] ** -0.5 for U in bases])

    def init_b(self, comp: LoRAComponent) -> None:
        """One N(0, b_init_std^2) entry per column at a random row (the code's ``sparse_``)."""
        with torch.no_grad():
            comp.B.zero_()
            rows = torch.randint(comp.B.shape[0], (comp.B.shape[1],))
            cols = torch.arange(comp.B.shape[1])
            values = torch.randn(comp.B.shape[1]) * self.params.b_init_std
            comp.B[rows.to(comp.B.device), cols.to(comp.B.device)] = values.to(comp.B)

    def subtracted_grams(self, model: ContinualViT, ctx: TaskContext) -> list[torch.Tensor]:
        """Per block, the Gram of the qkv inputs over the task's training batches (training
        augmentation, a generator of its own) with every earlier component negated."""
        gen = torch.Generator().manual_seed(int(torch.randint(2**31 - 1, (1,))))
        with negated(model.lora_components()):
            grams = input_grams(model, ctx.stream.train_loader(ctx.task, gen), torch.float64)
        return [g.cpu() for g in grams]

    def parameter_groups(self, model: ContinualViT, ctx: TaskContext) -> list[dict[str, Any]]:
        """The new pairs; the head with ``head_lr`` when set."""
        head = list(model.heads[ctx.index].parameters())
        adapters = [p for pair in self.pairs for p in (pair.comp.A, pair.comp.B)]
        head_group: dict[str, Any] = {"params": head}
        if self.params.head_lr is not None:
            head_group["lr"] = self.params.head_lr
        return [{"params": adapters}, head_group]

    def loss(self, model, images, targets, ctx):
        feats = self.features(model, images)
        loss = self.head_loss(model, feats, targets, ctx)
        if self.params.lambda_atl > 0:
            y = targets - ctx.label_offset
            old = None if self.prototypes is None else F.normalize(self.prototypes, dim=-1)
            atl = augmented_triplet_loss(F.normalize(feats.float(), dim=-1), y, old,
                                         self.params.margin)
            loss = loss + self.params.lambda_atl * atl
        return loss

    def after_backward(self, model: ContinualViT, ctx: TaskContext) -> None:
        if self.protection is not None:
            self.protection.update_gradients(self.current)
        elif self.spaces is not None:
            for pair in self.pairs:
                pair.before = (pair.comp.A.detach().clone(), pair.comp.B.detach().clone())

    @torch.no_grad()
    def after_step(self, model: ContinualViT, ctx: TaskContext) -> None:
        """The optimiser's step of the new pairs, projected: ``dA P`` and ``P dB`` (not with
        ``gr``, whose gradients are already rectified towards the projected gradient)."""
        if self.spaces is None or self.params.gr:
            return
        for pair in self.pairs:
            comp, (a_old, b_old) = pair.comp, pair.before
            P = self.spaces[pair.block].projector.to(comp.A)
            comp.A.copy_(a_old + (comp.A - a_old) @ P)
            comp.B.copy_(b_old + P @ (comp.B - b_old))
            pair.before = None
