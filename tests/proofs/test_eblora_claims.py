"""Every EBLoRA claim holds (or is a documented FINDING), and every numeric check fails on a
perturbed formula."""

from __future__ import annotations

from collections.abc import Callable

import torch

from janus.core import geometry as geo
from tests.proofs.harness import in_module, paper_claim_tests

FINDINGS = {"eblora.adam.reprojection"}
REQUIRED = ("eblora.spectrum", "eblora.polar", "eblora.tangent", "eblora.restricted")
"""Claim-id prefixes the registry must hold."""
G = {name: getattr(geo, name) for name in dir(geo) if not name.startswith("_")}


# --------------------------------------------------------------- perturbed formulas


def _qr_instead_of_polar(M):
    if M.shape[0] >= M.shape[1]:
        return G["qr_retraction"](M)
    return G["qr_retraction"](M.T).T


def _polar_left_factor_only(M):
    U, _, Vh = torch.linalg.svd(M, full_matrices=False)
    return U if M.shape[0] >= M.shape[1] else Vh


def _tall_formula_always(X, G_):
    XtG = X.T @ G_
    return G_ - X @ (XtG + XtG.T) / 2


def _no_symmetrisation(X, G_):
    if X.shape[0] >= X.shape[1]:
        return G_ - X @ (X.T @ G_)
    return G_ - (G_ @ X.T) @ X


# (name of the geometry function, wrong formula, claims that must FAIL with it)
PERTURBATIONS: dict[str, tuple[str, Callable, set[str]]] = {
    "QR factor instead of the polar factor": (
        "polar_retraction",
        _qr_instead_of_polar,
        {"eblora.polar.nearest"},
    ),
    "no retraction": (
        "polar_retraction",
        lambda M: M,
        {"eblora.spectrum.balanced", "eblora.polar.nearest", "eblora.restricted.orthogonal"},
    ),
    "U without V^T": (
        "polar_retraction",
        _polar_left_factor_only,
        {"eblora.polar.nearest"},
    ),
    "tangent projection for orthonormal columns applied to rows": (
        "stiefel_tangent_projection",
        _tall_formula_always,
        {"eblora.tangent.projection", "eblora.restricted.orthogonal"},
    ),
    "tangent projection without sym (drops the skew part)": (
        "stiefel_tangent_projection",
        _no_symmetrisation,
        {"eblora.tangent.projection", "eblora.restricted.orthogonal"},
    ),
    "restricted projection = plain Stiefel projection": (
        "restricted_tangent_projection",
        lambda Vt, G_, P: G["stiefel_tangent_projection"](Vt, G_),
        {"eblora.restricted.orthogonal", "eblora.adam.reprojection"},
    ),
    "restricted projection without the tangent projection": (
        "restricted_tangent_projection",
        lambda Vt, G_, P: G_ - (G_ @ P) @ P.T,
        {"eblora.restricted.orthogonal"},
    ),
}


(
    test_registry_has_the_claims,
    test_claim_verdict,
    test_perturbed_formula_fails,
    test_every_numeric_check_is_falsified,
) = paper_claim_tests("eblora.", REQUIRED, FINDINGS, in_module(geo, PERTURBATIONS))


def test_projection_leak_of_the_notebook_modes():
    """The walkthrough's plain Stiefel projection drifts into span(P); EBLoRA's step does not."""
    from proofs._helpers import gen, orthonormal, randn
    from proofs.eblora import projection_leak

    g = gen(0)
    P = orthonormal(g, 8, 3)
    V0 = geo.polar_retraction(randn(g, 2, 8) @ (torch.eye(8, dtype=torch.float64) - P @ P.T))
    sgd, restricted = (projection_leak(V0, P, g, mode) for mode in ("sgd", "restricted"))
    assert len(sgd) == len(restricted) == 30
    assert sgd[-1] > 1e-2 and max(restricted) < 1e-12
