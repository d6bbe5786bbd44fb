"""Every SeqLoRA claim holds, and every numeric check fails on a perturbed formula."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from janus.core import geometry as geo
from tests.proofs.harness import in_module, paper_claim_tests

FINDINGS = {"seqlora.alg1.reading"}
REQUIRED = (
    "seqlora.eq17",
    "seqlora.eq15",
    "seqlora.lemma4",
    "seqlora.thm1",
    "seqlora.thm8",
    "seqlora.thm7",
)
"""Claim-id prefixes the registry must hold."""
G = {name: getattr(geo, name) for name in dir(geo) if not name.startswith("_")}


# --------------------------------------------------------------- perturbed formulas


def _project_onto_span(B, bases, eps):
    return B - G["regularized_complement_projection"](B, bases, eps)


def _eps_wrong_sign(B, bases, eps):
    B_int = bases if isinstance(bases, torch.Tensor) else torch.cat(list(bases), 1)
    if eps == 0:
        return G["regularized_complement_projection"](B, bases, eps)
    gram = B_int.T @ B_int
    eye = torch.eye(gram.shape[0], dtype=gram.dtype)
    return B - B_int @ torch.linalg.solve(gram - eps * eye, B_int.T @ B)


def _plain_inverse(B, bases, eps):
    B_int = bases if isinstance(bases, torch.Tensor) else torch.cat(list(bases), 1)
    gram = B_int.T @ B_int
    eye = torch.eye(gram.shape[0], dtype=gram.dtype)
    return B - B_int @ torch.linalg.inv(gram + eps * eye) @ B_int.T @ B


def _assumes_orthonormal_bases(B, bases, eps):
    B_int = bases if isinstance(bases, torch.Tensor) else torch.cat(list(bases), 1)
    return B - B_int @ (B_int.T @ B)


def _negated_operator(f, A, B):
    grad_A, H = G["cross_hessian_operator"](f, A, B)
    return grad_A, lambda g: _negate(H(g))


def _negate(x):
    return -x if isinstance(x, torch.Tensor) else tuple(-t for t in x)


def _grad_A(loss_fn, A, B):
    A_ = A.detach().requires_grad_(True)
    with torch.enable_grad():
        (gA,) = torch.autograd.grad(loss_fn(A_, B), A_)
    return gA


def _grads(loss_fn, A, B):
    A_, B_ = A.detach().requires_grad_(True), B.detach().requires_grad_(True)
    with torch.enable_grad():
        return torch.autograd.grad(loss_fn(A_, B_), (A_, B_))


def _reduced(hessian_at_tilde=False, cross=1.0, direct_at_A=False):
    """Eq. 15 with one term changed (single-tensor A, B only, as the falsified checks use)."""

    def reduced(loss_fn, A, B, alpha):
        if not isinstance(A, torch.Tensor):
            return G["bilevel_reduced_gradient"](loss_fn, A, B, alpha)
        A_tilde = A - alpha * _grad_A(loss_fn, A, B)
        g_A, g_B = _grads(loss_fn, A_tilde, B)
        if direct_at_A:
            g_B = _grads(loss_fn, A, B)[1]
        at = A_tilde if hessian_at_tilde else A
        return g_B - cross * alpha * G["cross_hessian_vector_product"](loss_fn, at, B, g_A)

    return reduced


def _infLoRA_style_basis(Sigma, bases, r):
    eye = torch.eye(Sigma.shape[0], dtype=Sigma.dtype)
    P_free = G["regularized_complement_projection"](eye, bases, 0.0)
    return torch.linalg.svd(P_free @ Sigma).U[:, :r]


# (name of the geometry function, wrong formula, claims that must FAIL with it)
PERTURBATIONS: dict[str, tuple[str, Callable, set[str]]] = {
    "projection onto span(B_int) instead of its complement": (
        "regularized_complement_projection",
        _project_onto_span,
        {
            "seqlora.eq17.symbolic",
            "seqlora.eq17.eps",
            "seqlora.thm1.descent",
            "seqlora.thm8.forgetting",
            "seqlora.thm7.kyfan",
        },
    ),
    "eps ignored (always the exact projection)": (
        "regularized_complement_projection",
        lambda B, bases, eps: G["regularized_complement_projection"](B, bases, 0.0),
        {"seqlora.eq17.symbolic", "seqlora.eq17.eps"},
    ),
    "eps with the wrong sign": (
        "regularized_complement_projection",
        _eps_wrong_sign,
        {"seqlora.eq17.symbolic", "seqlora.eq17.eps"},
    ),
    "plain inverse of a possibly singular Gram matrix": (
        "regularized_complement_projection",
        _plain_inverse,
        {"seqlora.eq17.eps"},
    ),
    "B_int^T B_int omitted (assumes orthonormal bases)": (
        "regularized_complement_projection",
        _assumes_orthonormal_bases,
        {
            "seqlora.eq17.symbolic",
            "seqlora.eq17.eps",
            "seqlora.thm8.forgetting",
            "seqlora.thm7.kyfan",
        },
    ),
    "cross-Hessian with the wrong sign": (
        "cross_hessian_operator",
        _negated_operator,
        {"seqlora.eq15.cross-hessian", "seqlora.lemma4.lipschitz", "seqlora.alg1.reading"},
    ),
    "reduced gradient without the cross-Hessian (alternating baseline)": (
        "bilevel_reduced_gradient",
        _reduced(cross=0.0),
        {"seqlora.eq15.cross-hessian", "seqlora.lemma4.lipschitz", "seqlora.alg1.reading"},
    ),
    "reduced gradient with + alpha H[g]": (
        "bilevel_reduced_gradient",
        _reduced(cross=-1.0),
        {"seqlora.eq15.cross-hessian", "seqlora.lemma4.lipschitz", "seqlora.alg1.reading"},
    ),
    "cross-Hessian evaluated at A~ instead of A^(k)": (
        "bilevel_reduced_gradient",
        _reduced(hessian_at_tilde=True),
        {"seqlora.eq15.cross-hessian", "seqlora.alg1.reading"},
    ),
    "direct term grad_B L at A instead of A~": (
        "bilevel_reduced_gradient",
        _reduced(direct_at_A=True),
        {"seqlora.eq15.cross-hessian", "seqlora.lemma4.lipschitz", "seqlora.alg1.reading"},
    ),
    "reduced gradient with the wrong sign": (
        "bilevel_reduced_gradient",
        lambda f, A, B, alpha: _negate(G["bilevel_reduced_gradient"](f, A, B, alpha)),
        {"seqlora.eq15.cross-hessian", "seqlora.lemma4.lipschitz", "seqlora.thm1.descent"},
    ),
    "optimal basis ignores the constraint (top eigenvectors of Sigma)": (
        "optimal_feasible_basis",
        lambda Sigma, bases, r: torch.linalg.eigh(Sigma).eigenvectors[:, -r:],
        {"seqlora.thm7.kyfan"},
    ),
    "optimal basis from the bottom of the spectrum": (
        "optimal_feasible_basis",
        lambda Sigma, bases, r: G["optimal_feasible_basis"](-Sigma, bases, r),
        {"seqlora.thm7.kyfan"},
    ),
    "optimal basis from the SVD of (I - P) Sigma (InfLoRA-style)": (
        "optimal_feasible_basis",
        _infLoRA_style_basis,
        {"seqlora.thm7.kyfan"},
    ),
}


(
    test_registry_has_the_claims,
    test_claim_verdict,
    test_perturbed_formula_fails,
    test_every_numeric_check_is_falsified,
) = paper_claim_tests(
    "seqlora.", REQUIRED, FINDINGS, in_module(geo, PERTURBATIONS), kinds={"symbolic", "numeric"}
)


def test_projection_edge_cases():
    B = torch.randn(5, 2, dtype=torch.float64)
    assert torch.equal(geo.regularized_complement_projection(B, torch.zeros(5, 0), 0.0), B)
    with pytest.raises(ValueError, match="eps"):
        geo.regularized_complement_projection(B, B, -1.0)
