"""Provenance of EBLoRA."""

from __future__ import annotations

from janus.reporting.provenance.records import Check, Deviation, Provenance

EBLORA = Provenance(
    method="eblora",
    paper=(
        "Gu et al. 2026, Spectral Imbalance Causes Forgetting in Low-Rank Continual Adaptation "
        "(abstract only)"
    ),
    official=(),
    note=(
        "The abstract's code link, haodotgu/EBLoRA (HEAD 5585607, a LLaVA set-up, fetched "
        "2026-12-05), was found too late for a unit-level comparison; "
        "../shared/papers/eblora-notes.md summarises it, and the comparison is still to do."
    ),
    doc="docs/methods/eblora.md",
    checks=(
        Check(
            what=(
                "The factor init is the top-r SVD of the descent direction restricted to the "
                "complement of P (Ky Fan value, rel 1e-12), also for rank-deficient gradients."
            ),
            test=(
                "tests/methods/test_eblora.py::test_factor_init_is_the_restricted_top_r_svd_of_"
                "the_descent_direction"
            ),
        ),
        Check(
            what=(
                "GPM growth keeps the fewest top directions reaching the threshold, adds "
                "nothing when P already captures enough, and respects the cap (within 1e-10)."
            ),
            test=(
                "tests/methods/test_eblora.py::test_gpm_growth_keeps_the_fewest_directions_reac"
                "hing_the_threshold"
            ),
        ),
        Check(
            what=(
                "Projected gradients equal the chain rule of the fused weight's dense gradient "
                "(rtol 1e-5); one Adam step leaves the restricted manifold (leak above 1e-3) "
                "and after_step restores it (below 1e-6)."
            ),
            test="tests/methods/test_eblora.py::test_one_riemannian_adam_step",
        ),
        Check(
            what=(
                "After every step of a smoke run U and Vt are orthonormal (1e-6), B = m U, Vt P"
                " below 1e-6 relative, all r singular values equal scale times m (1e-5 "
                "relative), earlier updates bit-identical."
            ),
            test=(
                "tests/methods/test_eblora.py::test_invariants_hold_after_every_step_of_a_smoke"
                "_run"
            ),
        ),
        Check(
            what=(
                "The walkthrough's plain Stiefel projection drifts into span(P); EBLoRA's step "
                "does not."
            ),
            test="tests/proofs/test_eblora_claims.py::test_projection_leak_of_the_notebook_modes",
        ),
    ),
    deviations=(
        Deviation(
            what=(
                "The trainer's Adam (torch's coupled L2 decay, 0 in every profile, none on U "
                "and Vt) replaces the source's AdamW."
            ),
            reason=(
                "The trainer owns the optimiser, and decay of a point on the Stiefel manifold "
                "is normal to it, so it would only distort the moments."
            ),
            switch=None,
        ),
        Deviation(
            what=(
                "The actual step is re-projected with the restricted tangent projection before "
                "the polar retraction, not with the plain Stiefel one."
            ),
            reason=(
                "Adam's coordinate scaling leaves the set Z P = 0, which the plain Stiefel "
                "projection does not remove (ERRATA B1)."
            ),
            switch=None,
        ),
        Deviation(
            what=(
                "Adapted from the source's vision-language set-up: one scalar m per component "
                "on B = m U (s = lora.scale times the absolute value of m), on K and V of every"
                " block."
            ),
            reason=(
                "LoRAComponent has no learnable scale, and putting m on the output factor keeps"
                " Vt exactly orthonormal."
            ),
            switch=None,
        ),
        Deviation(
            what=(
                "Before each retraction the previous point's float32 rounding inside span(P) is"
                " removed (safe_update)."
            ),
            reason=(
                "Without it the leak grows like a random walk (7.9e-7 after 400 smoke steps "
                "against 4.5e-8 with it)."
            ),
            switch=None,
        ),
    ),
)
