"""Provenance of JANUS-LoRA."""

from __future__ import annotations

from janus.reporting.provenance.records import Check, Deviation, Provenance

JANUS_LORA = Provenance(
    method="janus-lora",
    paper=(
        "Chen et al., ICML 2026, JANUS-LoRA: A Balanced Low-Rank Adaptation for Continual "
        "Learning"
    ),
    official=(),
    note=(
        "The paper's code link, zackschen/Janus-LoRA (HEAD 5d7f706, fetched 2026-12-05), holds "
        "only a README saying the code will be released; there is nothing to compare yet."
    ),
    doc="docs/interpretations.md",
    checks=(
        Check(
            what=(
                "GR equals the dense ridge rectification (Eq. 6-7) of the safe gradient G_W (I "
                "- V V^T), with and without a history (relative error below 1e-5); raw factor "
                "gradients equal the chain rule."
            ),
            test=(
                "tests/methods/test_janus_lora.py::test_gr_equals_dense_rectification_of_the_sa"
                "fe_gradient"
            ),
        ),
        Check(
            what=(
                "With a history, A's rectified gradient has no component in span(V) (below 1e-5"
                " relative)."
            ),
            test=(
                "tests/methods/test_janus_lora.py::test_safe_projection_matters_and_rectified_u"
                "pdate_spares_the_basis"
            ),
        ),
        Check(
            what=(
                "The OE step equals Eq. 9-10 written out (autograd gradient of the "
                "reconstruction loss, step, QR) on the captured tokens (within 1e-5)."
            ),
            test=(
                "tests/methods/test_janus_lora.py::test_oe_step_follows_eq_9_10_on_the_captured"
                "_tokens"
            ),
        ),
        Check(
            what=(
                "DML equals a direct computation of Eq. 11 (rel 1e-5), with set values and with"
                " the defaults tau = 0.07, m = 0.3."
            ),
            test="tests/methods/test_janus_lora.py::test_dml_matches_a_direct_computation",
        ),
        Check(
            what="OE, GR and DML all off equals Finetune step for step (Table 1 row 1).",
            test="tests/methods/test_janus_lora.py::test_all_switches_off_is_plain_lora_finetuning",
        ),
        Check(
            what="The Fig. 2 null-space-violation probe equals a direct computation on the tokens.",
            test="tests/test_violation.py::test_probe_matches_direct_computation",
        ),
    ),
    deviations=(
        Deviation(
            what=(
                "The OE rank k = 50 at width 768 is scaled to the model width, round(50 width /"
                " 768) (12 at width 192)."
            ),
            reason=(
                "The paper's k is given for ViT-B's width 768; at 768 the scaled value is the "
                "paper's."
            ),
            switch="method.params.k=50",
        ),
        Deviation(
            what=(
                "GR protects a frozen end-of-task snapshot of the OE basis (memory=snapshot), "
                "since the paper does not say how a basis learned on the current task protects "
                "earlier ones."
            ),
            reason=(
                "It is the reading asked for first and the one every committed janus-lora "
                "record used; memory=union is the variant that forgets less."
            ),
            switch=None,
        ),
    ),
)
