"""Provenance of SeqLoRA and its Continual Alternating baseline."""

from __future__ import annotations

from janus.reporting.provenance.records import Check, Deviation, Provenance
from janus.reporting.provenance.shared import _ORTHOGONAL_BASES, _SEQLORA_DEVIATIONS

CONTINUAL_ALTERNATING = Provenance(
    method="continual-alternating",
    paper=(
        "Parsa et al., arXiv 2605.22743 (2026), the Continual Alternating baseline of SeqLoRA: "
        "Bilevel Orthogonal Adaptation for Continual Multi-Concept Generation"
    ),
    official=(),
    note="SeqLoRA's paper names no code for its baselines; we know of none.",
    doc="docs/methods/seqlora.md",
    checks=(
        Check(
            what=(
                "The B-step is the partial-gradient step at the frozen A~, and differs from "
                "SeqLoRA's by exactly beta alpha H[g_A] (within 1e-12)."
            ),
            test=(
                "tests/methods/test_seqlora.py::test_continual_alternating_drops_exactly_the_cr"
                "oss_hessian_term"
            ),
        ),
        _ORTHOGONAL_BASES,
    ),
    deviations=_SEQLORA_DEVIATIONS,
)


SEQLORA = Provenance(
    method="seqlora",
    paper=(
        "Parsa et al., arXiv 2605.22743 (2026), SeqLoRA: Bilevel Orthogonal Adaptation for "
        "Continual Multi-Concept Generation"
    ),
    official=(),
    note="The SeqLoRA paper names no code; we know of none.",
    doc="docs/methods/seqlora.md",
    checks=(
        Check(
            what=(
                "One local step equals the projected gradient step of Phi (Eq. 14, 17) and the "
                "A-step of Eq. 18, by autograd through the unrolled inner step (rel 1e-12)."
            ),
            test=(
                "tests/methods/test_seqlora.py::test_one_local_step_is_the_projected_gradient_s"
                "tep_of_phi"
            ),
        ),
        Check(
            what=(
                "Later local steps keep Alg. 1's stale A~ and cross-Hessian point (lines "
                "14-17), within 1e-7."
            ),
            test="tests/methods/test_seqlora.py::test_later_local_steps_keep_alg1s_stale_point",
        ),
        Check(
            what=(
                "One model step equals Eq. 14/17 and 18 computed by hand on the model's own "
                "parameters, with SeqLoRA's B as our A^T and its A as our B (within 1e-5)."
            ),
            test=(
                "tests/methods/test_seqlora.py::test_model_step_maps_seqlora_notation_onto_our_"
                "adapters"
            ),
        ),
        _ORTHOGONAL_BASES,
        Check(
            what=(
                "Linear setting: the Haar-random basis's captured energy matches Eq. 99 and "
                "never beats the Ky Fan basis."
            ),
            test="tests/test_seqlora_linear.py::test_haar_mean_matches_eq99_and_never_beats_kyfan",
        ),
        Check(
            what="Linear setting: forgetting is crosstalk plus inner product (Eq. 114).",
            test=(
                "tests/test_seqlora_linear.py::test_forgetting_is_crosstalk_plus_inner_product_"
                "eq114"
            ),
        ),
    ),
    deviations=(
        Deviation(
            what=(
                "The cross-Hessian of line 17 is contracted over all layers at once, where the "
                "paper writes it per layer."
            ),
            reason=(
                "It is the exact chain rule of Phi for the stacked variables (Eq. 15) at one "
                "double backward; the per-layer reading differs from grad Phi by 14-87%."
            ),
            switch=None,
        ),
        *_SEQLORA_DEVIATIONS,
    ),
)
