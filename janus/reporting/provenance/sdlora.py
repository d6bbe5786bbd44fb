"""Provenance of SD-LoRA and its variants SD-LoRA-KD and SD-LoRA-RR."""

from __future__ import annotations

from janus.reporting.provenance.records import Check, Deviation, Provenance
from janus.reporting.provenance.shared import _SD_LORA_CODE, _SD_LORA_DEVIATIONS, _SD_LORA_TITLE


def _sd_lora(
    variant: str, checks: tuple[Check, ...], deviations: tuple[Deviation, ...] = ()
) -> Provenance:
    """The entry of SD-LoRA (``variant`` empty) or of its variant ``KD`` or ``RR``: the same
    paper, official code and doc page, and the variant's own deviations followed by those
    shared by the three."""
    name = f"SD-LoRA-{variant}" if variant else "SD-LoRA"
    title = f"{name} of {_SD_LORA_TITLE}" if variant else _SD_LORA_TITLE
    return Provenance(
        method=name.lower(),
        paper=f"Wu et al., ICLR 2025, {title}",
        official=_SD_LORA_CODE,
        doc="docs/methods/sdlora.md",
        checks=checks,
        deviations=(*deviations, *_SD_LORA_DEVIATIONS),
    )


SD_LORA = _sd_lora(
    variant="",
    checks=(
        Check(
            what=(
                "The forward and the gradients of all magnitudes and the current factors equal "
                "Eq. 4 by autograd through the dense form (rtol 1e-4), for both norms; earlier "
                "factors frozen."
            ),
            test="tests/methods/test_sdlora.py::test_forward_and_gradients_are_those_of_eq_4",
        ),
        Check(
            what=(
                "The sd-lora-code preset's Q and V outputs equal a reference written out from "
                "the code's _LoRA_qkv_timm_train over 3 tasks (rtol 1e-5, atol 1e-6)."
            ),
            test=(
                "tests/methods/test_sdlora.py::test_code_protocol_preset_runs_the_official_forw"
                "ard"
            ),
        ),
        Check(
            what=(
                "current=raw: the term in training is alpha_t B_t A_t, normalised once its task"
                " ends."
            ),
            test=(
                "tests/methods/test_sdlora.py::test_code_option_raw_current_term_until_its_task"
                "_ends"
            ),
        ),
        Check(
            what=(
                "One magnitude set is shared by all projections, in the optimiser with the new "
                "pair only."
            ),
            test="tests/methods/test_sdlora.py::test_one_magnitude_set_for_all_projections",
        ),
        Check(
            what=(
                "In task 2 the earlier directions are frozen while both magnitudes and the new "
                "pair learn."
            ),
            test=(
                "tests/methods/test_sdlora.py::test_task_2_freezes_directions_and_trains_magnit"
                "udes_and_the_new_pair"
            ),
        ),
        Check(
            what=(
                "delta_weight(), merge() and the Fig. 2 probe include the magnitudes (Eq. 4's "
                "update)."
            ),
            test="tests/methods/test_sdlora.py::test_dense_update_and_merge_include_the_magnitudes",
        ),
    ),
)


SD_LORA_KD = _sd_lora(
    variant="KD",
    checks=(
        Check(
            what=(
                "A rescaled copy of an earlier direction is absorbed exactly: magnitudes "
                "summed, the component deleted, outputs unchanged (rtol 1e-5)."
            ),
            test="tests/methods/test_sdlora.py::test_kd_absorbs_a_rescaled_copy_exactly",
        ),
        Check(
            what=(
                "A combination of earlier directions is absorbed with the corrected Eq. 8, "
                "alpha_k + alpha_t c_k (rel 1e-5), outputs unchanged; the printed Eq. 8 would "
                "change them."
            ),
            test="tests/methods/test_sdlora.py::test_kd_absorbs_a_combination_with_corrected_eq_8",
        ),
        Check(
            what="A direction outside the span is kept, with residual above tau.",
            test="tests/methods/test_sdlora.py::test_kd_keeps_a_new_direction_outside_the_span",
        ),
        Check(
            what=(
                "The residual is the root-mean-square over projections of the stacked fit (rel "
                "1e-6)."
            ),
            test="tests/methods/test_sdlora.py::test_kd_residual_is_rms_over_projections",
        ),
        Check(
            what=(
                "Resume after every direction was absorbed (tau = 1) reproduces the accuracy "
                "matrix."
            ),
            test="tests/methods/test_sdlora.py::test_resume_after_every_direction_was_absorbed",
        ),
    ),
    deviations=(
        Deviation(
            what=(
                "Eq. 8 is applied as alpha_k + alpha_t c_k, where the printed alpha_k + delta "
                "alpha_k is right only for alpha_t = 1."
            ),
            reason="The corrected form preserves W (ERRATA D1).",
            switch=None,
        ),
        Deviation(
            what=(
                "One Eq. 7 fit on the directions of all projections, flattened, stacked and "
                "divided by sqrt(P); the residual is their root-mean-square."
            ),
            reason=(
                "The magnitudes are shared, so one set of coefficients must serve every "
                "projection."
            ),
            switch=None,
        ),
        Deviation(
            what=(
                "The residual is taken between unit directions (Eq. 7), not between the raw "
                "products of Alg. 1 line 11."
            ),
            reason=(
                "With unit directions it is the sine of an angle in [0, 1], the units of tau "
                "(ERRATA D2)."
            ),
            switch=None,
        ),
    ),
)


SD_LORA_RR = _sd_lora(
    variant="RR",
    checks=(
        Check(
            what=(
                "The rank schedule follows Eq. 6 with 1-based tasks (10,10,10,8,8,8,8,6,6,6 at "
                "rank 10); mu=5, nu=9 gives the code's commented-out block; ranks scaled to "
                "lora.rank."
            ),
            test="tests/methods/test_sdlora.py::test_rr_schedule_follows_eq_6_with_one_based_tasks",
        ),
        Check(
            what="New components get the scheduled ranks.",
            test="tests/methods/test_sdlora.py::test_rr_components_get_the_scheduled_ranks",
        ),
        Check(
            what="A smoke run finishes with finite metrics and the ranks 4, 4, 4, 3, 3.",
            test="tests/methods/test_sdlora.py::test_smoke_run_finishes_with_finite_metrics",
        ),
        Check(
            what="The forward and gradients equal Eq. 4 (rtol 1e-4).",
            test="tests/methods/test_sdlora.py::test_forward_and_gradients_are_those_of_eq_4",
        ),
    ),
    deviations=(
        Deviation(
            what=(
                "Task mu = 4 is the first reduced one with 1-based task numbers, where the "
                "code's commented-out (inactive) block reduces from 0-based tasks 4 and 8."
            ),
            reason=(
                "Eq. 6 indexes tasks from 1 and makes task mu the first reduced one, and Alg. 1"
                " agrees."
            ),
            switch="method.params.mu=5 method.params.nu=9",
        ),
        Deviation(
            what=(
                "r_mu and r_nu keep the paper's ratios 8/10 and 6/10 of lora.rank (rounded half"
                " up), which is the paper's 10/8/6 only at rank 10."
            ),
            reason="Keeping the ratios gives the same relative parameter saving on small models.",
            switch="method.params.ranks=[10,8,6]",
        ),
    ),
)
