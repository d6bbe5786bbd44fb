"""GPM (Saha et al. 2021, Eq. 8-9): growing a protected input basis by the energy threshold,
and InfLoRA's code for GPM's first task.
"""

from __future__ import annotations

import torch

from janus.core.geometry.janus_lora import orthogonal_complement_projector, qr_retraction
from janus.core.geometry.seqlora import optimal_feasible_basis


def grown_basis(
    protected: torch.Tensor, gram: torch.Tensor, threshold: float, max_dim: int
) -> torch.Tensor:
    """GPM (Saha et al. 2021, Eq. 8-9) on the Gram ``R R^T`` of a task's layer inputs: append
    the fewest top eigenvectors of the residual ``(I - PP^T) R R^T (I - PP^T)`` such that the
    energy of ``R`` captured by P and them reaches ``threshold`` of ``||R||_F^2``; at most
    ``max_dim`` columns in all."""
    total = float(torch.trace(gram))
    if total <= 0 or protected.shape[1] >= max_dim:
        return protected
    q = orthogonal_complement_projector(protected)
    residual = torch.linalg.eigvalsh(q @ gram @ q).flip(0)
    need = threshold * total - (total - float(residual.sum()))
    if need <= 0:
        return protected
    k = int((residual.cumsum(0) < need).sum()) + 1
    k = min(k, max_dim - protected.shape[1], int((residual > 1e-12 * total).sum()))
    if k == 0:
        return protected
    new = optimal_feasible_basis(gram, protected, k)
    return qr_retraction(torch.cat([protected, new], dim=1))


def first_task_gpm_basis(gram: torch.Tensor, threshold: float, max_dim: int) -> torch.Tensor:
    """InfLoRA's code for GPM's first task (official ``methods/inflora.py`` line 332): the top
    eigenvectors of ``gram`` whose energy ratios' running sum stays *below* ``threshold``, at
    least one and at most ``max_dim``; one fewer than :func:`grown_basis` from an empty basis
    (the smallest count reaching the threshold) when the threshold is not hit exactly."""
    values, vectors = torch.linalg.eigh(gram)
    values, vectors = values.flip(0), vectors.flip(1)
    total = float(values.sum())
    if total <= 0:
        return vectors[:, :0]
    k = max(int((values.cumsum(0) / total < threshold).sum()), 1)
    return vectors[:, : min(k, max_dim)].contiguous()
