"""Provenance of InfLoRA."""

from __future__ import annotations

from janus.reporting.provenance.records import Check, Deviation, Provenance
from janus.reporting.provenance.shared import _PER_STEP_COSINE

INFLORA = Provenance(
    method="inflora",
    paper=(
        "Liang & Li, CVPR 2024, InfLoRA: Interference-free low-rank adaptation for continual "
        "learning"
    ),
    official=(
        (
            "liangyanshuo/InfLoRA@e08b00e (methods/inflora.py design lines 116-158 and "
            "update_DualGPM lines 321-397, models/vit_inflora.py, configs/*_inflora.json, "
            "utils/schedulers.py lines 47-57)"
        ),
    ),
    doc="docs/methods/inflora.md",
    checks=(
        Check(
            what=(
                "A_t and the DualGPM bases equal the official design (lines 122-155) and "
                "update_DualGPM (lines 321-368) written out in numpy on the same Grams over "
                "three tasks: row spaces to 1e-5 in float32, bases to 1e-8."
            ),
            test=(
                "tests/methods/test_inflora.py::test_design_and_basis_growth_equal_the_official"
                "_code_on_the_same_grams"
            ),
        ),
        Check(
            what=(
                "A_t spans the top-r left singular subspace of (I - M M^T) C, against a dense "
                "SVD (to 1e-10), with A_t A_t^T = I."
            ),
            test=(
                "tests/methods/test_inflora.py::test_designed_factor_is_the_top_left_singular_s"
                "ubspace_of_the_projected_gram"
            ),
        ),
        Check(
            what=(
                "Over three tasks A_t M = 0, A_t A_t^T = I / 3 and A_t is unchanged by "
                "training; only B_t and the head are trained; earlier pairs unchanged; M "
                "orthonormal and growing."
            ),
            test=(
                "tests/methods/test_inflora.py::test_three_tasks_keep_a_frozen_and_outside_the_"
                "earlier_subspace"
            ),
        ),
        Check(
            what=(
                "The first task keeps one direction fewer than GPM's count, as the code's "
                "sum(cumsum < eps) does."
            ),
            test=(
                "tests/methods/test_inflora.py::test_first_task_counts_one_direction_fewer_than"
                "_gpm_in_the_code"
            ),
        ),
        Check(
            what=(
                "train.schedule=inflora-cosine gives the official CosineSchedule's per-epoch "
                "rates as the code steps it (rel 1e-12): epochs 0 and 1 at full rate, the last "
                "at 9.74% (K = 20) or 4.74% (K = 50)."
            ),
            test="tests/test_trainer.py::test_inflora_cosine_runs_as_the_official_code_steps_it",
        ),
        Check(
            what=(
                "lambda_b follows the official config of the benchmark: 0.95 on CIFAR-100 and "
                "DomainNet, 0.98 on ImageNet-R."
            ),
            test=(
                "tests/test_anchors.py::test_inflora_threshold_follows_the_official_config_of_t"
                "he_benchmark"
            ),
        ),
    ),
    deviations=(
        Deviation(
            what=(
                "Where (I - M M^T) C has rank below r, the SVD is taken inside an orthonormal "
                "basis of the complement of span(M)."
            ),
            reason=(
                "The code's remaining singular vectors are arbitrary there and may enter "
                "span(M); ours keep A_t M = 0 and agree in the generic case."
            ),
            switch=None,
        ),
        Deviation(
            what=(
                "DualGPM's retain mode (and its first-task branch that projects with U[:, :r] "
                "as if it were the complement) is not implemented: M is always stored."
            ),
            reason=(
                "With the squared energy and lambda_b 0.95-0.98 the first basis has a handful "
                "of the 768 directions, so retain mode is not reached on the paper's "
                "benchmarks."
            ),
            switch=None,
        ),
        Deviation(
            what="M keeps at most d_in - rank columns, where the code caps it at d_in.",
            reason="Every task then has rank free directions; a full M would make A_t undefined.",
            switch=None,
        ),
        Deviation(
            what=(
                "The Grams come from the task's training images with the test transform, not "
                "from the augmented training loader."
            ),
            reason=(
                "This keeps augmentation noise out of the statistics, as for EBLoRA and the "
                "Fig. 2 probe."
            ),
            switch=None,
        ),
        _PER_STEP_COSINE,
    ),
)
