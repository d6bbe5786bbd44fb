"""Every SD-LoRA claim holds (or is a documented FINDING), and every numeric check fails on a
perturbed formula."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

from janus.core import geometry as geo
from tests.proofs.harness import in_module, paper_claim_tests

FINDINGS = {"sdlora.eq8.printed", "sdlora.thm1.sequential"}
REQUIRED = ("sdlora.eq3", "sdlora.eq7", "sdlora.eq8", "sdlora.thm1")
"""Claim-id prefixes the registry must hold."""
G = {name: getattr(geo, name) for name in dir(geo) if not name.startswith("_")}


# --------------------------------------------------------------- perturbed formulas


def _kd_squared_residual(new_dir, old_dirs):
    coeffs, residual = G["sdlora_kd_coefficients"](new_dir, old_dirs)
    return coeffs, residual**2


def _kd_inner_products(new_dir, old_dirs):
    coeffs = torch.stack([(new_dir * d).sum() for d in old_dirs])
    fit = sum(c * d for c, d in zip(coeffs, old_dirs, strict=True))
    return coeffs, float((new_dir - fit).norm())


# (name of the geometry function, wrong formula, claims that must FAIL with it)
PERTURBATIONS: dict[str, tuple[str, Callable, set[str]]] = {
    "direction normalised by the code's norm by default": (
        "normalized_direction",
        lambda A, B, norm="product": G["normalized_direction"](A, B, "factors"),
        {"sdlora.eq3.decomposition"},
    ),
    "direction normalised by the squared norm": (
        "normalized_direction",
        lambda A, B, norm="product": (B @ A) / (B @ A).norm() ** (2 if norm == "product" else 1),
        {"sdlora.eq3.decomposition"},
    ),
    "Eq. 4 ignores the magnitudes": (
        "sdlora_delta",
        lambda alphas, As, Bs, norm="product": G["sdlora_delta"]([1.0] * len(As), As, Bs, norm),
        {"sdlora.eq3.decomposition"},
    ),
    "KD residual squared": (
        "sdlora_kd_coefficients",
        _kd_squared_residual,
        {"sdlora.eq7.kd"},
    ),
    "KD coefficients as inner products (ignores the Gram matrix)": (
        "sdlora_kd_coefficients",
        _kd_inner_products,
        {"sdlora.eq7.kd", "sdlora.eq8.printed"},
    ),
    "absorption as printed (alpha_k + dalpha_k) by default": (
        "sdlora_absorb_magnitudes",
        lambda alphas, alpha_new, coeffs, as_printed=False: alphas + coeffs,
        {"sdlora.eq7.kd", "sdlora.eq8.printed"},
    ),
    "LoRA factor gradients with the wrong sign": (
        "lora_factor_gradients",
        lambda grad, A, B, s: tuple(-x for x in G["lora_factor_gradients"](grad, A, B, s)),
        {"sdlora.thm1.sequential"},
    ),
    "LoRA factor gradient of B without A^T": (
        "lora_factor_gradients",
        lambda grad, A, B, s: (s * (B.T @ grad), s * grad @ torch.linalg.pinv(A)),
        {"sdlora.thm1.sequential"},
    ),
}


(
    test_registry_has_the_claims,
    test_claim_verdict,
    test_perturbed_formula_fails,
    test_every_numeric_check_is_falsified,
) = paper_claim_tests("sdlora.", REQUIRED, FINDINGS, in_module(geo, PERTURBATIONS))


def test_normalized_direction_rejects_unknown_norm():
    A, B = torch.randn(2, 4), torch.randn(3, 2)
    with pytest.raises(ValueError, match="norm"):
        geo.normalized_direction(A, B, norm="spectral")


def test_logistic_times_closed_form():
    """Rank 1, U = V = I: p_1(0) = (a + b)^2 / 4 for A = (a, 0), B = (b, 0)^T."""
    from proofs.sdlora import logistic_times

    f64 = torch.float64
    eye = torch.eye(2, dtype=f64)
    A, B = torch.tensor([[0.01, 0.0]], dtype=f64), torch.tensor([[0.03], [0.0]], dtype=f64)
    sigma = torch.tensor([2.0, 1.0], dtype=f64)
    (t,) = logistic_times(eye, eye, sigma, A, B, 0.1)
    assert t == pytest.approx(math.log(2.0 / (0.04**2 / 4)) / (2 * math.log(1.2)), rel=1e-12)
