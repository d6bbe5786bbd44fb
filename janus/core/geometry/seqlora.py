"""SeqLoRA: the regularised complement projection (Eq. 17, Alg. 1 line 20), the cross-Hessian
and the bilevel reduced gradient (Eq. 9, 15-16, Alg. 1 lines 9-18), and the optimal feasible
basis of Thm 7 (App. C.2, Eq. 84-90).

SeqLoRA writes ``W = W0 + A B^T`` with ``A`` (n x r = d_out x r) and ``B`` (m x r = d_in x r):
its ``B`` is the *input* basis, i.e. our ``A^T``, and its ``A`` is our ``s B``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


def _as_tuple(x: torch.Tensor | Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    return (x,) if isinstance(x, torch.Tensor) else tuple(x)


def _like(structure: torch.Tensor | Sequence[torch.Tensor], values: tuple[torch.Tensor, ...]):
    """``values`` in the structure of ``structure``: one tensor, or the tuple itself."""
    return values[0] if isinstance(structure, torch.Tensor) else values


def regularized_complement_projection(
    B: torch.Tensor, bases: torch.Tensor | Sequence[torch.Tensor], eps: float
) -> torch.Tensor:
    """SeqLoRA Eq. 17 / Alg. 1 line 20: ``[I - B_int (B_int^T B_int + eps I)^-1 B_int^T] B``.

    ``B`` is SeqLoRA's input basis (``d_in x r``, our ``A^T``); ``bases`` is
    ``B_int = [B_1, ..., B_{i-1}]`` (``d_in x k``, a tensor or a sequence concatenated along
    columns). ``eps = 0`` is the exact projection of Eq. 17, the minimiser of Eq. 13 (computed
    as ``B - B_int B_int^+ B``, so a rank-deficient ``B_int`` is allowed); ``eps > 0`` is the
    regularised projection of Algorithm 1, which differs from it by
    ``eps B_int G^-1 (G + eps I)^-1 B_int^T B`` (``G = B_int^T B_int``): O(eps / sigma_min^2),
    not scale-invariant in ``B_int``.
    """
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    B_int = bases if isinstance(bases, torch.Tensor) else torch.cat(list(bases), dim=1)
    if B_int.numel() == 0:
        return B.clone()
    if eps == 0:
        return B - B_int @ (torch.linalg.pinv(B_int) @ B)
    gram = B_int.T @ B_int
    eye = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
    return B - B_int @ torch.linalg.solve(gram + eps * eye, B_int.T @ B)


def cross_hessian_operator(
    loss_fn: Callable[..., torch.Tensor],
    A: torch.Tensor | Sequence[torch.Tensor],
    B: torch.Tensor | Sequence[torch.Tensor],
) -> tuple[tuple[torch.Tensor, ...], Callable[..., torch.Tensor | tuple[torch.Tensor, ...]]]:
    """``(grad_A L(A, B), H)`` with ``H(g_A) = grad_B <g_A, grad_A L(A, B)>`` (SeqLoRA Eq. 16).

    One forward and one differentiable backward build the graph of ``grad_A L`` at ``(A, B)``;
    every call of ``H`` is one more backward through it, so Alg. 1's local B-steps, which all
    contract at the same point ``(A^(k), B^(k))`` (line 17), share it. ``A`` (lower level) and
    ``B`` (upper level) are tensors or sequences of tensors (several layers: the contraction
    then includes the cross-layer blocks); ``g_A`` has the structure of ``A`` and ``H(g_A)``
    that of ``B``, zero where ``grad_A L`` does not depend on ``B``.
    """
    As = tuple(a.detach().requires_grad_(True) for a in _as_tuple(A))
    Bs = tuple(b.detach().requires_grad_(True) for b in _as_tuple(B))
    with torch.enable_grad():
        grads_A = torch.autograd.grad(loss_fn(_like(A, As), _like(B, Bs)), As, create_graph=True)

    def apply(g_A: torch.Tensor | Sequence[torch.Tensor]):
        with torch.enable_grad():
            inner = sum(
                (ga * g.detach()).sum() for ga, g in zip(grads_A, _as_tuple(g_A), strict=True)
            )
            if not inner.requires_grad:
                return _like(B, tuple(torch.zeros_like(b) for b in Bs))
            out = torch.autograd.grad(inner, Bs, retain_graph=True, allow_unused=True)
        return _like(
            B, tuple(torch.zeros_like(b) if o is None else o for o, b in zip(out, Bs, strict=True))
        )

    return tuple(g.detach() for g in grads_A), apply


def cross_hessian_vector_product(
    loss_fn: Callable[..., torch.Tensor],
    A: torch.Tensor | Sequence[torch.Tensor],
    B: torch.Tensor | Sequence[torch.Tensor],
    g_A: torch.Tensor | Sequence[torch.Tensor],
) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """SeqLoRA Eq. 16: ``H_AB[g_A] = grad_B <g_A, grad_A L(A, B)>``, by double backward
    (one contraction of :func:`cross_hessian_operator`)."""
    return cross_hessian_operator(loss_fn, A, B)[1](g_A)


def partial_grads(
    loss_fn: Callable[..., torch.Tensor],
    A: torch.Tensor | Sequence[torch.Tensor],
    B: torch.Tensor | Sequence[torch.Tensor],
) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Partial gradients ``(grad_A L, grad_B L)`` as tuples (zeros where L does not depend)."""
    As = tuple(a.detach().requires_grad_(True) for a in _as_tuple(A))
    Bs = tuple(b.detach().requires_grad_(True) for b in _as_tuple(B))
    with torch.enable_grad():
        grads = torch.autograd.grad(loss_fn(_like(A, As), _like(B, Bs)), As + Bs, allow_unused=True)
    grads = tuple(
        torch.zeros_like(x) if g is None else g for g, x in zip(grads, As + Bs, strict=True)
    )
    return grads[: len(As)], grads[len(As) :]


def bilevel_reduced_gradient(
    loss_fn: Callable[..., torch.Tensor],
    A: torch.Tensor | Sequence[torch.Tensor],
    B: torch.Tensor | Sequence[torch.Tensor],
    alpha: float,
) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """SeqLoRA Eq. 15 (Alg. 1 lines 9-18, one local step): the gradient of the reduced
    objective ``Phi(B) = L(A - alpha grad_A L(A, B), B)`` (Eq. 9) at ``(A, B) = (A^(k), B^(k))``.

    ``grad Phi = grad_B L(A~, B) - alpha H_AB(A, B)[grad_A L(A~, B)]`` with
    ``A~ = A - alpha grad_A L(A, B)`` and ``H_AB`` of Eq. 16 (the cross-Hessian at ``A``, not
    ``A~``). Structures as in :func:`cross_hessian_operator`.
    """
    grad_A, H = cross_hessian_operator(loss_fn, A, B)
    A_tilde = tuple(a.detach() - alpha * g for a, g in zip(_as_tuple(A), grad_A, strict=True))
    g_A, g_B = partial_grads(loss_fn, _like(A, A_tilde), B)
    return _like(B, reduced_gradient(g_B, _as_tuple(H(g_A)), alpha))


def reduced_gradient(
    g_B: Sequence[torch.Tensor], hvp: Sequence[torch.Tensor], alpha: float
) -> tuple[torch.Tensor, ...]:
    """SeqLoRA Eq. 15 / Alg. 1 line 18: ``grad Phi = g_B - alpha H_AB[g_A]``, per tensor."""
    return tuple(gb - alpha * h for gb, h in zip(g_B, hvp, strict=True))


def optimal_feasible_basis(
    Sigma: torch.Tensor, bases: torch.Tensor | Sequence[torch.Tensor], r: int
) -> torch.Tensor:
    """SeqLoRA Thm 7 (App. C.2, Eq. 84-90): an orthonormal ``d_in x r`` basis of the top-r
    eigenspace of the compressed covariance ``P_free Sigma P_free`` (Eq. 87),
    ``P_free = I - B_int (B_int^T B_int)^+ B_int^T`` (Eq. 85): the feasible rank-r subspace
    that captures the most energy ``Tr(P Sigma)`` (Eq. 96). ``Sigma`` is the ``d_in x d_in``
    input covariance; needs ``r <= d_in - rank(B_int)``.
    """
    eye = torch.eye(Sigma.shape[0], dtype=Sigma.dtype, device=Sigma.device)
    P_free = regularized_complement_projection(eye, bases, 0.0)
    compressed = P_free @ Sigma @ P_free
    compressed = (compressed + compressed.T) / 2
    _, vecs = torch.linalg.eigh(compressed)
    return vecs[:, -r:].flip(1)
