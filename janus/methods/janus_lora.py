"""Janus-LoRA (Chen et al. 2026): Online Estimation (OE), Gradient Rectification (GR) and the
Decoupled Margin Loss (DML) on one continually trained LoRA pair per adapted slice.

Per training step (Sec. 3.4, "The Integrated Janus-LoRA Update Process"):

1. loss = CE(current head) + lambda_DML * L_DML (Eq. 11-12);
2. backward gives the raw factor gradients G_A = s B^T G_W and G_B = s G_W A^T (Eq. 4,
   corrected, see proofs/ERRATA.md E1), G_W = dL/dW of the slice;
3. the safe gradient G_W (I - V V^T) is formed for the *historical* basis V (Thm 3.1, Eq. 3)
   and rectified into factor gradients by the ridge solves of Eq. 6-7 (GR);
4. the online basis of each block takes one Stiefel step on the batch's input activations
   (Eq. 8-10).

``G_W`` (d_out x d_in) is never formed: GR needs only ``B^T G_W (I - VV^T) = (G_A/s)(I - VV^T)``
and ``G_W (I - VV^T) A^T = G_B/s - (G_W V)(V^T A^T)``, with ``G_W V = Gy^T (X V)`` from the
captured output gradients Gy and inputs X of the layer (rank r + k work per slice).

Which basis is "historical" is not specified by the paper; see docs/interpretations.md and
``memory``: ``snapshot`` (default) projects with a frozen copy of the online basis taken at the
end of the previous task, ``union`` with the orthonormalised union of all end-of-task
snapshots (capped at ``max_rank``). At the cap, ``union`` keeps the directions of highest input
energy (:func:`union_basis`): each snapshot V_t carries the energy its task's inputs have in it,
``V_t^T G_t V_t / tr G_t`` (G_t the Gram of the task's training tokens at the end of the task),
and the history keeps the top eigenvectors of the summed energy operator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F

from janus.core import geometry as geo
from janus.core.errors import ConfigError
from janus.core.fields import param
from janus.core.precision import in_full_precision
from janus.methods.activations import input_grams
from janus.methods.base import Method, TaskContext
from janus.methods.params import Params
from janus.methods.protected_lora import ProtectedLoRA
from janus.methods.prototypes import class_sums
from janus.model.continual import ContinualViT

PAPER_WIDTH, PAPER_K = 768, 50
UNION_RTOL = 1e-6
"""Directions of the union whose singular value is below this fraction of the largest are
dropped as numerically dependent."""


def scaled_k(k_paper: int, width: int) -> int:
    """The paper's OE rank at width 768 scaled to ``width`` (at least 1)."""
    return max(1, round(k_paper * width / PAPER_WIDTH))


def union_basis(
    old: torch.Tensor,
    new: torch.Tensor,
    cap: int,
    old_energy: torch.Tensor | None = None,
    new_energy: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``memory=union``: an orthonormal basis of span(old) + span(new), at most ``cap`` columns,
    and its energy matrix.

    ``old_energy`` (old.shape[1] square) and ``new_energy`` (new.shape[1] square) represent the
    energy operator ``H = old E_old old^T + new E_new new^T`` in the two bases. The union basis
    U is the left singular basis of ``[old, new]`` (rank by :data:`UNION_RTOL`); below the cap it
    is returned as it is (the same basis as without energies), with ``U^T H U``. Above the cap
    the basis is the ``cap`` eigenvectors of ``U^T H U`` of highest energy, in decreasing
    energy, with their energies on the diagonal; equal energies (exact ties, which data-derived
    energies do not produce in practice) keep ``eigh``'s order, by a stable sort: the result is
    a function of the inputs alone. Without energies (``None``, e.g. a checkpoint from before
    them) the first ``cap`` singular directions are kept, as before: shared directions first,
    directions of one snapshot only in LAPACK's order; the energy is then ``None``.
    """
    u, sv, _ = torch.linalg.svd(torch.cat([old, new], dim=1), full_matrices=False)
    rank = int((sv > UNION_RTOL * sv[0]).sum())
    if old_energy is None or new_energy is None:
        return u[:, :min(cap, rank)].contiguous(), None
    u = u[:, :rank]
    a, b = u.T @ old, u.T @ new
    energy = a @ old_energy @ a.T + b @ new_energy @ b.T
    if rank <= cap:
        return u.contiguous(), energy
    values, vectors = torch.linalg.eigh((energy + energy.T) / 2)
    order = torch.argsort(values, descending=True, stable=True)[:cap]
    return (u @ vectors[:, order]).contiguous(), torch.diag(values[order])


@dataclass
class BlockState:
    """Janus-LoRA's state of one block: its online basis V (d_in x k, Eq. 8-10), the
    historical basis updates are protected from (None before the first task ends) and, with
    ``memory=union``, that basis' energy matrix (:func:`union_basis`)."""

    online: torch.Tensor
    history: torch.Tensor | None = None
    energy: torch.Tensor | None = None


@dataclass(frozen=True)
class JanusLoRAParams(Params):
    oe: bool = param(True, "Online Estimation of each block's input basis (Sec. 3.3.3, Eq. 8-10)")
    gr: bool = param(True, "Gradient Rectification of the factor updates (Sec. 3.3.2, Eq. 5-7)")
    dml: bool = param(True, "Decoupled Margin Loss (Sec. 3.4, Eq. 11)")
    k: int | None = param(None, "OE basis size per block; None scales the paper's k = 50 at "
                          "width 768 to the model width", low=1)
    oe_lr: float = param(1.0, "step of Eq. 9 relative to the batch energy ||X||_F^2", low=0,
                         low_open=True)
    gamma: float = param(1e-4, "ridge coefficient of Eq. 27 / 34 (delta = gamma / s^2)", low=0,
                         low_open=True)
    memory: Literal["snapshot", "union"] = param(
        "snapshot", "protected basis: the last OE snapshot, or the union of all snapshots")
    max_rank: int | None = param(None, "cap of the union basis (None: d_in // 2)", low=1)
    exact_safe: bool = param(False, "also remove the update's leak on span(V) after the step")
    lambda_dml: float = param(1.0, "weight lambda of DML in L_task + lambda L_DML (Sec. 3.2)",
                              low=0)
    tau: float = param(0.07, "DML temperature tau (Eq. 11; 0.07 as in Sec. 4.1)", low=0,
                       low_open=True)
    margin: float = param(0.3, "DML margin m of the inter-task hinge (Eq. 11)", low=0)


class JanusLoRA(Method, name="janus-lora", params=JanusLoRAParams):
    """Janus-LoRA: online estimation + gradient rectification + margin loss.

    ``oe``/``gr``/``dml`` switch the components (Table 1 ablations).

    ``memory="union"`` keeps the union of all end-of-task OE snapshots, at most ``max_rank``
    directions; at that cap the highest-energy directions are kept (:func:`union_basis`),
    runs below the cap get the plain SVD union, unchanged.
    """

    def init_state(self) -> None:
        if self.params.exact_safe and not self.params.oe:
            raise ConfigError(f"{self.name} exact_safe=True needs a protected basis (oe=True)")
        if self.params.memory == "union":
            self.version = 2  # 2: at its cap the union keeps the highest-energy directions
        self.blocks: list[BlockState] = []
        """One state per block of the model (:meth:`setup`)."""
        self.protection: ProtectedLoRA | None = None
        """The captures and the gradient rule (:meth:`setup`)."""
        self.old_prototypes: torch.Tensor | None = None
        self.pending_steps: list[tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor]] = []

    # ------------------------------------------------------------------ per-block views
    @property
    def online(self) -> list[torch.Tensor]:
        """The online bases, block by block."""
        return [b.online for b in self.blocks]

    @online.setter
    def online(self, bases: list[torch.Tensor]) -> None:
        for block, v in zip(self.blocks, bases, strict=True):
            block.online = v

    @property
    def history(self) -> list[torch.Tensor | None]:
        """The historical bases, block by block."""
        return [b.history for b in self.blocks]

    @history.setter
    def history(self, bases: list[torch.Tensor | None]) -> None:
        for block, v in zip(self.blocks, bases, strict=True):
            block.history = v

    def projections(self) -> list[torch.Tensor | None]:
        """Per block, the basis its updates are protected from in this task: the historical
        OE basis, none without OE."""
        return [b.history if self.params.oe else None for b in self.blocks]

    # ------------------------------------------------------------------ set-up
    def rank_k(self, d_in: int) -> int:
        k = self.params.k
        if k is None:
            k = scaled_k(PAPER_K, d_in)
        if not 1 <= k < d_in:
            raise ConfigError(f"janus-lora k={k} must lie in 1..{d_in - 1} for width {d_in}")
        return int(k)

    def setup(self, model: ContinualViT) -> None:
        if not model.lora_components():
            model.add_lora_components()
        self.blocks = []
        for adapter in model.adapters:
            d = adapter.in_features
            g = torch.randn(d, self.rank_k(d), dtype=torch.float32)
            self.blocks.append(BlockState(geo.qr_retraction(g).to(model.device)))
        self.protection = ProtectedLoRA(model.adapters, self.forward_hook,
                                        rectify=self.params.gr, gamma=self.params.gamma)

    def before_task(self, model: ContinualViT, ctx: TaskContext) -> None:
        model.set_lora_trainable(True)
        self.protection.protect(self.projections(), keep_inputs=self.params.oe)

    # ------------------------------------------------------------------ loss
    def loss(self, model, images, targets, ctx):
        feats = self.features(model, images)
        loss = self.head_loss(model, feats, targets, ctx)
        if self.params.dml:
            y = targets - ctx.label_offset
            loss = loss + self.params.lambda_dml * self.dml_loss(feats, y)
        return loss

    @in_full_precision
    def dml_loss(self, feats: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Janus-LoRA Eq. 11: prototype contrastive term over the batch's classes + hinge
        against all stored old-class prototypes. Features are L2-normalised pre-logits;
        current-class prototypes are the normalised means of the batch's features per class.
        In float32 under any autocast (the hinge compares cosines with the margin)."""
        z = F.normalize(feats.float(), dim=-1)
        classes, index = torch.unique(y, return_inverse=True)
        sums = torch.zeros(len(classes), z.shape[1], device=z.device).index_add(0, index, z)
        protos = F.normalize(sums, dim=-1)
        loss = F.cross_entropy(z @ protos.T / self.params.tau, index)
        if self.old_prototypes is not None:
            sim = z @ self.old_prototypes.T
            loss = loss + F.relu(sim - self.params.margin).mean()
        return loss

    # ------------------------------------------------------------------ gradients
    def after_backward(self, model: ContinualViT, ctx: TaskContext) -> None:
        """GR or A's projection (:class:`~janus.methods.protected_lora.ProtectedLoRA`), then,
        with ``exact_safe``, the factors before the step, and one OE step."""
        self.protection.update_gradients(self.protection.continual_pairs())
        if self.params.exact_safe:
            bases = self.projections()
            self.pending_steps = [
                (comp, bases[block], comp.A.detach().clone(), comp.B.detach().clone())
                for block, _, comp in self.protection.continual_pairs()
                if bases[block] is not None
            ]
        if self.params.oe:
            self.estimate(self.protection.take_inputs())

    @torch.no_grad()
    def after_step(self, model: ContinualViT, ctx: TaskContext) -> None:
        """``exact_safe``: replace the optimizer's factor steps by the closest ones whose exact
        composite update vanishes on the historical subspace
        (:func:`janus.core.geometry.exactly_safe_factor_steps`)."""
        for comp, basis, a_old, b_old in self.pending_steps:
            d_a, d_b = geo.exactly_safe_factor_steps(
                comp.A.float() - a_old.float(), comp.B.float() - b_old.float(), a_old.float(),
                basis,
            )
            comp.A.copy_(a_old + d_a.to(a_old.dtype))
            comp.B.copy_(b_old + d_b.to(b_old.dtype))
        self.pending_steps = []

    @torch.no_grad()
    def estimate(self, inputs: list[torch.Tensor | None]) -> None:
        """One OE step (Eq. 9-10) per block on the batch's input activations ``inputs``."""
        for block, x in zip(self.blocks, inputs, strict=True):
            if x is None:
                continue
            # on the device, without a host synchronisation; float64 as Python's division
            energy = x.pow(2).sum().double()
            lr = self.params.oe_lr / energy.clamp_min(torch.finfo(torch.float64).tiny)
            step = geo.online_estimation_step(block.online, x, lr)
            block.online = torch.where(energy > 0, step, block.online)  # no step on x = 0

    # ------------------------------------------------------------------ tasks
    @torch.no_grad()
    def after_task(self, model: ContinualViT, ctx: TaskContext) -> None:
        self.update_history(model, ctx)
        if self.params.dml:
            self.store_prototypes(model, ctx)

    def update_history(self, model: ContinualViT, ctx: TaskContext) -> None:
        """The historical basis for the next task: the OE basis at the end of this one
        (``snapshot``), or its union with the earlier history (``union``, :func:`union_basis`;
        the snapshot's energy comes from one pass over the task's training images, test
        transform, with the training run's RNG untouched)."""
        if self.params.memory == "snapshot":
            for block in self.blocks:
                block.history = block.online.clone()
            return
        with torch.random.fork_rng(devices=[]):
            grams = input_grams(model, ctx.stream.eval_loader(ctx.task.train_plain),
                                torch.float64)
        for block, gram in zip(self.blocks, grams, strict=True):
            v = block.online
            vd = v.to(gram.device, torch.float64)
            energy = (vd.T @ gram @ vd / gram.trace().clamp_min(1e-300)).to(v)
            if block.history is None:
                block.history, block.energy = v.clone(), energy
                continue
            cap = self.params.max_rank or v.shape[0] // 2
            block.history, block.energy = union_basis(block.history, v, cap, block.energy,
                                                      energy)

    def store_prototypes(self, model: ContinualViT, ctx: TaskContext) -> None:
        """Normalised mean normalised feature of each class of the finished task."""
        protos = F.normalize(class_sums(model, ctx, normalized=True)[0], dim=-1)
        old = self.old_prototypes
        self.old_prototypes = protos if old is None else torch.cat([old, protos])

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "online": self.online,
            "history": self.history,
            "energy": [b.energy for b in self.blocks],
            "old_prototypes": self.old_prototypes,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.online = list(state["online"])
        self.history = list(state["history"])
        # checkpoints from before the energies: the cap falls back to the singular order
        for block, energy in zip(self.blocks, state.get("energy", [None] * len(self.blocks)),
                                 strict=True):
            block.energy = energy
        self.old_prototypes = state["old_prototypes"]
