"""Provenance of BiLoRA."""

from __future__ import annotations

from janus.reporting.provenance.records import Check, Deviation, Provenance

BILORA = Provenance(
    method="bilora",
    paper=(
        "Zhu, Zhang, Dong & Koniusz, CVPR 2025, BiLoRA (title not in the sources): fixed "
        "Fourier bases with a sparse learnable core per task"
    ),
    official=(
        (
            "nqh-tq-32052503/BiLoRA@78ff950 (models/fft.py, methods/bilora.py, configs/*.json, "
            "utils/schedulers.py)"
        ),
        "Geeks-Z/Awesome-CIL (models/bilora.py, configs/bilora/*; commit not recorded)",
    ),
    doc="docs/methods/bilora.md",
    checks=(
        Check(
            what=(
                "The update alpha Re(IFFT2(F_t)) equals the explicit bilinear form alpha Re(Psi"
                " F Psi) with the inverse-DFT kernel (rtol 1e-5, atol 1e-6)."
            ),
            test="tests/methods/test_bilora.py::test_update_is_alpha_re_psi_f_psi",
        ),
        Check(
            what=(
                "Updates of supports that do not meet, mirror images included, are orthogonal "
                "(below 1e-6 relative); a shared mirror position breaks it (above 1e-3)."
            ),
            test=(
                "tests/methods/test_bilora.py::test_disjoint_mirrored_supports_give_orthogonal_"
                "updates"
            ),
        ),
        Check(
            what=(
                "Supports are seeded per task; 3000 frequencies at width 768 as in the code, "
                "188 (the same density) at width 192."
            ),
            test=(
                "tests/methods/test_bilora.py::test_supports_are_seeded_per_task_and_scaled_wit"
                "h_width"
            ),
        ),
        Check(
            what=(
                "Over 3 tasks each task starts from zero coefficients with the earlier updates "
                "frozen and summed into K and V (within 1e-5); Q is untouched and only the "
                "task's coefficients and head train."
            ),
            test=(
                "tests/methods/test_bilora.py::test_three_tasks_add_frozen_updates_to_k_and_v_o"
                "nly"
            ),
        ),
    ),
    deviations=(
        Deviation(
            what=(
                "At widths other than 768 the number of frequencies keeps the code's density n "
                "/ d^2 (188 at width 192) instead of the hard-coded 3000."
            ),
            reason=(
                "This keeps the expected support collisions per task pair small and the update "
                "norm per unit of coefficient change the same."
            ),
            switch="method.params.frequencies=3000",
        ),
        Deviation(
            what=(
                "The code's schedules (40 epochs on CIFAR-100's first task and 20 later, SGD on"
                " DomainNet) are replaced by the protocol's optimiser and epochs."
            ),
            reason=(
                "Every method gets the protocol's optimiser, learning rate, schedule and "
                "epochs."
            ),
            switch=None,
        ),
    ),
)
