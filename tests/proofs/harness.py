"""The tests every paper's claims get, built from the paper's data (claim-id prefix, expected
FINDINGs, perturbed formulas): see :func:`paper_claim_tests`."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest

from proofs import load_all
from proofs.core import REGISTRY

Perturbations = dict[str, tuple[object, str, Callable, set[str]]]
"""name -> (module, attribute, wrong formula, claim ids that must FAIL with it)."""


def in_module(module: object, perturbations: dict[str, tuple]) -> Perturbations:
    """``(attribute, wrong, claims)`` perturbations of one module as :data:`Perturbations`."""
    return {name: (module, *p) for name, p in perturbations.items()}


def paper_claim_tests(
    prefix: str,
    required: Iterable[str],
    findings: set[str],
    perturbations: Perturbations,
    kinds: set[str] | None = None,
) -> tuple[Callable, ...]:
    """``(test_registry, test_claim_verdict, test_perturbed_formula_fails,
    test_every_numeric_check_is_falsified)`` for the claims whose ids start with ``prefix``:
    the registry holds a claim for each of the ``required`` id prefixes; every claim's verdict
    is PASS, or FINDING exactly for ``findings``; the claims' methods are ``kinds`` (when
    given); each perturbation makes its claims FAIL (the
    ``assert_fails`` fixture); every numeric claim is falsified by some perturbation."""
    load_all()
    ids = [cid for cid in REGISTRY if cid.startswith(prefix)]
    required = tuple(required)

    def test_registry():
        missing = [p for p in required if not any(cid.startswith(p) for cid in ids)]
        assert not missing, f"no claim for {missing}"
        assert findings <= set(ids)
        if kinds is not None:
            assert {REGISTRY[cid].method for cid in ids} == kinds

    @pytest.mark.parametrize("claim_id", ids)
    def test_claim_verdict(claim_id):
        result = REGISTRY[claim_id].run()
        assert result.verdict == ("FINDING" if claim_id in findings else "PASS"), result.note

    @pytest.mark.parametrize("name", perturbations)
    def test_perturbed_formula_fails(name, assert_fails):
        assert_fails(*perturbations[name])

    def test_every_numeric_check_is_falsified():
        numeric = {cid for cid in ids if REGISTRY[cid].method == "numeric"}
        falsified = set().union(*(p[3] for p in perturbations.values()))
        assert numeric <= falsified, f"never falsified: {sorted(numeric - falsified)}"

    return test_registry, test_claim_verdict, test_perturbed_formula_fails, (
        test_every_numeric_check_is_falsified
    )
