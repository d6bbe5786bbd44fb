"""Baselines and reference rows without a code base of their own: fine-tuning, joint training,
LoRA-GPM and the NCM prototype classifier."""

from __future__ import annotations

from janus.reporting.provenance.records import Check, Deviation, Provenance

FINETUNE = Provenance(
    method="finetune",
    paper=(
        "Chen et al., ICML 2026, JANUS-LoRA Sec. 4.1 Fine-Tuning baseline: standard LoRA "
        "without any anti-forgetting mechanism"
    ),
    official=(),
    note="The lower bound of every table: the protocol's LoRA with no anti-forgetting term.",
    doc="docs/interpretations.md",
    checks=(
        Check(
            what=(
                "A smoke run learns the first task (above 60%) and then largely forgets it (BWT"
                " below -20)."
            ),
            test="tests/test_trainer.py::test_smoke_finetune_forgets",
        ),
        Check(
            what=(
                "Janus-LoRA with OE, GR and DML off gives the same accuracy matrix, step for "
                "step (Table 1 row 1 equals Table 2's Fine-Tuning row)."
            ),
            test="tests/methods/test_janus_lora.py::test_all_switches_off_is_plain_lora_finetuning",
        ),
        Check(
            what="The stored metrics re-derive from the stored per-task correct and total counts.",
            test="tests/test_trainer.py::test_end_to_end_record_rederives_metrics",
        ),
        Check(
            what=(
                "A run resumed after a crash in task 3 reproduces the uninterrupted accuracy "
                "matrix and losses (run for every method)."
            ),
            test="tests/test_trainer.py::test_resume_after_crash_in_task_3_matches_uninterrupted",
        ),
    ),
)


JOINT = Provenance(
    method="joint",
    paper="Reference row (no paper): the protocol's LoRA trained on all classes as one task",
    official=(),
    note="A reference row (the upper bound), not a published method.",
    doc="docs/methods/references.md",
    checks=(
        Check(
            what=(
                "One task with every class, one head of all classes, the LoRA trained, one "
                "epoch's steps over all images, the record filed under the T-task config (ACC ="
                " MAA)."
            ),
            test=(
                "tests/methods/test_references.py::test_joint_trains_one_lora_on_all_classes_as"
                "_one_task"
            ),
        ),
    ),
)


LORA_GPM = Provenance(
    method="lora-gpm",
    paper=(
        "Chen et al., ICML 2026, LoRA-GPM baseline of JANUS-LoRA, named after GPM (Saha et al.,"
        " ICLR 2021)"
    ),
    official=(),
    note=(
        "No reference implementation exists (../shared/papers/baselines-method-notes.md); built"
        " from GPM's and Janus-LoRA's descriptions."
    ),
    doc="docs/methods/lora_gpm.md",
    checks=(
        Check(
            what=(
                "The GPM basis after a task captures at least 0.97 of the task's input energy "
                "with the fewest directions, orthonormal and growing; A's gradient is "
                "orthogonal to it (below 1e-4 relative), B's left alone."
            ),
            test=(
                "tests/methods/test_lora_gpm.py::test_gpm_basis_captures_the_threshold_energy_a"
                "nd_a_is_projected"
            ),
        ),
        Check(
            what="gr=True (Fig. 6) rectifies instead and changes B's gradient too.",
            test="tests/methods/test_lora_gpm.py::test_gr_plug_in_rectifies_instead",
        ),
        Check(
            what="GR towards G_W (I - V V^T) equals Eq. 6-7 written out densely in float64.",
            test="tests/test_rectification.py::test_gr_follows_eq_6_7_for_the_target_g_pi",
        ),
        Check(
            what=(
                "The input Grams under bf16 autocast equal the float64 ones (below 1e-6 "
                "relative)."
            ),
            test="tests/test_precision.py::test_input_grams_do_not_depend_on_the_callers_autocast",
        ),
    ),
    deviations=(
        Deviation(
            what=(
                "No reference implementation exists: LoRA-GPM is read as Janus-LoRA's one LoRA "
                "pair with A's gradient projected off an offline GPM basis (threshold 0.97 + "
                "0.003 t) and B's left alone."
            ),
            reason=(
                "Only under this reading do OE only and LoRA-GPM differ exactly by the basis "
                "(Table 1, Table 5) and does GR have a deviation to rectify (Fig. 6)."
            ),
            switch=None,
        ),
    ),
)


NCM = Provenance(
    method="ncm",
    paper=(
        "Zhou et al., IJCV 2024, SimpleCIL prototype classifier (Revisiting class-incremental "
        "learning with pre-trained models)"
    ),
    official=(),
    note=(
        "SimpleCIL's prototype classifier, written from its description "
        "(docs/methods/references.md)."
    ),
    doc="docs/methods/references.md",
    checks=(
        Check(
            what=(
                "The final accuracy row equals an independent computation (frozen features, "
                "unnormalised class means, cosine arg-max); no LoRA component and zero steps."
            ),
            test=(
                "tests/methods/test_references.py::test_ncm_is_cosine_nearest_class_mean_of_the"
                "_frozen_features"
            ),
        ),
        Check(
            what=(
                "The class sums behind the prototypes (shared with LoRA-DRS) under bf16 "
                "autocast equal the float32 ones (below 1e-6 relative)."
            ),
            test=(
                "tests/test_precision.py::test_class_prototypes_do_not_depend_on_the_callers_au"
                "tocast"
            ),
        ),
        Check(
            what=(
                "Nearest-prototype scores under autocast are float32 and equal their float32 "
                "values (below 1e-6 relative)."
            ),
            test="tests/test_precision.py::test_metric_terms_are_float32_under_autocast",
        ),
    ),
)
