"""Every Janus-LoRA claim holds, and every numeric check fails on a perturbed formula."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from janus.core import geometry as geo
from janus.core import metrics
from proofs.core import REGISTRY, Outcome, claim
from tests.proofs.harness import paper_claim_tests

FINDINGS = {
    "janus.gr.eq31-printed",
    "janus.gr.leak",
    "janus.gr.leak-vs-naive",
    "janus.eq4.printed",
}
REQUIRED = ("janus.thm31", "janus.gr", "janus.eq4", "janus.stiefel", "janus.core.metrics")
"""Claim-id prefixes the registry must hold."""


# --------------------------------------------------------------- perturbed formulas

G = {name: getattr(geo, name) for name in dir(geo) if not name.startswith("_")}
M = {name: getattr(metrics, name) for name in ("mean_average_accuracy", "backward_transfer")}


def _rectify_residual_not_subtracted(w, A, B, s, gamma):
    dA, _ = G["rectify_factor_updates"](w, A, B, s, gamma)
    _, dB = G["rectify_factor_updates"](w, A, torch.zeros_like(B), s, gamma)  # R = dW_safe
    return dA, dB


def _maa_wrong_denominator(acc):
    a = np.asarray(acc, dtype=float)
    return float(np.mean([np.nansum(a[t, : t + 1]) / len(a) for t in range(len(a))]))


def _bwt_wrong_denominator(acc):
    a = np.asarray(acc, dtype=float)
    return float(np.sum(a[-1, :-1] - np.diag(a)[:-1]) / len(a))


# (module, name, wrong formula, claims that must FAIL with it)
PERTURBATIONS: dict[str, tuple[object, str, Callable, set[str]]] = {
    "safe_update wrong sign": (
        geo,
        "safe_update",
        lambda dw, V: dw + (dw @ V) @ V.T,
        {"janus.thm31.numeric", "janus.gr.leak-vs-naive"},
    ),
    "safe_update projector on the wrong side": (
        geo,
        "safe_update",
        lambda dw, V: dw - V @ (V.T @ dw),
        {"janus.thm31.numeric"},
    ),
    "safe_update_from_inputs projector on the wrong side": (
        geo,
        "safe_update_from_inputs",
        lambda dw, X, rtol=None: dw - X @ (torch.linalg.pinv(X) @ dw),
        {"janus.thm31.numeric", "janus.thm31.symbolic"},
    ),
    "safe_update_from_inputs without pseudo-inverse": (
        geo,
        "safe_update_from_inputs",
        lambda dw, X, rtol=None: dw - dw @ X @ X.T / (X * X).sum(),
        {"janus.thm31.numeric"},
    ),
    "orthogonal_complement_projector returns V V^T": (
        geo,
        "orthogonal_complement_projector",
        lambda V: V @ V.T,
        {"janus.thm31.numeric"},
    ),
    "exactly_safe_factor_steps leaves dB alone": (
        geo,
        "exactly_safe_factor_steps",
        lambda dA, dB, A, V: (dA - dA @ V @ V.T, dB),
        {"janus.exact-safe"},
    ),
    "exactly_safe_factor_steps zeroes dB always": (
        geo,
        "exactly_safe_factor_steps",
        lambda dA, dB, A, V: (dA - dA @ V @ V.T, 0 * dB),
        {"janus.exact-safe"},
    ),
    "lora_factor_gradients missing transpose": (
        geo,
        "lora_factor_gradients",
        lambda g, A, B, s: (s * (B.T @ g.T), s * (g @ A.T)),
        {"janus.eq4.factor-grads"},
    ),
    "lora_factor_gradients as printed (Eq. 4)": (
        geo,
        "lora_factor_gradients",
        lambda g, A, B, s: ((g.T @ B), (A.T @ g)),
        {"janus.eq4.factor-grads", "janus.eq4.printed", "janus.gr.leak",
         "janus.gr.leak-vs-naive"},
    ),
    "lora_factor_gradients without s": (
        geo,
        "lora_factor_gradients",
        lambda g, A, B, s: (B.T @ g, g @ A.T),
        {"janus.eq4.factor-grads", "janus.eq4.printed", "janus.gr.leak-vs-naive"},
    ),
    "rectify with delta ignored (delta = 0)": (
        geo,
        "rectify_factor_updates",
        lambda w, A, B, s, gamma: G["rectify_factor_updates"](w, A, B, s, 0.0),
        {"janus.gr.ridge", "janus.gr.symbolic"},
    ),
    "rectify with delta = gamma instead of gamma / s^2": (
        geo,
        "rectify_factor_updates",
        lambda w, A, B, s, gamma: G["rectify_factor_updates"](w, A, B, s, gamma * s**2),
        {"janus.gr.ridge", "janus.gr.symbolic", "janus.gr.delta-limit", "janus.gr.leak-vs-naive"},
    ),
    "rectify without the 1/s": (
        geo,
        "rectify_factor_updates",
        lambda w, A, B, s, gamma: tuple(
            s * x for x in G["rectify_factor_updates"](w, A, B, s, gamma)
        ),
        {"janus.gr.ridge", "janus.gr.symbolic", "janus.gr.joint-optimum"},
    ),
    "rectify with R = dW_safe (residual not subtracted)": (
        geo,
        "rectify_factor_updates",
        _rectify_residual_not_subtracted,
        {
            "janus.gr.ridge",
            "janus.gr.symbolic",
            "janus.gr.joint-optimum",
            "janus.gr.safe-when",
            "janus.gr.leak",
            "janus.gr.leak-vs-naive",
        },
    ),
    "composite_update wrong sign": (
        geo,
        "composite_update",
        lambda dA, dB, A, B, s, second_order=False: s * (B @ dA - dB @ A),
        {"janus.gr.safe-when", "janus.gr.joint-optimum", "janus.gr.leak-vs-naive"},
    ),
    "composite_update drops the second-order term": (
        geo,
        "composite_update",
        lambda dA, dB, A, B, s, second_order=False: s * (B @ dA + dB @ A),
        {"janus.gr.safe-when"},
    ),
    "reconstruction_gradient wrong sign": (
        geo,
        "reconstruction_gradient",
        lambda X, V: -G["reconstruction_gradient"](X, V),
        {"janus.stiefel.gradient", "janus.stiefel.oe-converges"},
    ),
    "reconstruction_gradient valid only on the manifold": (
        geo,
        "reconstruction_gradient",
        lambda X, V: -(X.T @ (X @ V)) + V @ (V.T @ (X.T @ (X @ V))),
        {"janus.stiefel.gradient"},
    ),
    "qr_retraction without the sign fix": (
        geo,
        "qr_retraction",
        lambda V: torch.linalg.qr(V).Q,
        {"janus.stiefel.qr"},
    ),
    "qr_retraction that does not orthonormalise": (
        geo,
        "qr_retraction",
        lambda V: V,
        {"janus.stiefel.qr", "janus.stiefel.oe-converges"},
    ),
    "MAA with 1/T inside": (
        metrics,
        "mean_average_accuracy",
        _maa_wrong_denominator,
        {"janus.core.metrics.hand"},
    ),
    "BWT divided by T": (
        metrics,
        "backward_transfer",
        _bwt_wrong_denominator,
        {"janus.core.metrics.hand"},
    ),
    "ACC over the diagonal": (
        metrics,
        "final_accuracy",
        lambda acc: float(np.mean(np.diag(np.asarray(acc)))),
        {"janus.core.metrics.hand"},
    ),
}


(
    test_registry_has_the_claims,
    test_claim_verdict,
    test_perturbed_formula_fails,
    test_every_numeric_check_is_falsified,
) = paper_claim_tests("janus.", REQUIRED, FINDINGS, PERTURBATIONS, kinds={"symbolic", "numeric"})


def test_claim_run_turns_errors_into_verdicts():
    @claim("test.raises", paper="t", where="-", statement="-", method="numeric", tolerance=1.0)
    def raises() -> Outcome:
        raise RuntimeError("boom")

    @claim("test.nan", paper="t", where="-", statement="-", method="numeric", tolerance=1.0)
    def nan() -> Outcome:
        return Outcome(float("nan"))

    @claim(
        "test.finding",
        paper="t",
        where="-",
        statement="-",
        method="symbolic",
        tolerance=1.0,
        finding=True,
    )
    def finding() -> Outcome:
        return Outcome(0.5, "measured")

    try:
        assert REGISTRY["test.raises"].run().verdict == "FAIL"
        assert "boom" in REGISTRY["test.raises"].run().note
        assert REGISTRY["test.nan"].run().verdict == "FAIL"
        assert REGISTRY["test.finding"].run().verdict == "FINDING"
        with pytest.raises(ValueError, match="twice"):
            claim("test.nan", paper="t", where="-", statement="-", method="numeric", tolerance=1.0)(
                nan
            )
    finally:
        for cid in ("test.raises", "test.nan", "test.finding"):
            REGISTRY.pop(cid)
