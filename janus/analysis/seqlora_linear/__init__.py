"""SeqLoRA's stylised linear setting (Sec. 2.4 Example 1; App. C.2 Thm 7 / Prop. 2; App. E Thm 8).

A linear model ``W = W0 + sum_j A_j B_j^T`` (SeqLoRA's letters: ``A_j`` is ``n x r``, ``B_j``
the ``m x r`` *input basis*) learns ``num_tasks`` concepts in sequence, each with ``B_j``
orthogonal to the earlier bases (Eq. 5) and the exact least-squares ``A_j``. Everything is a
closed-form population quantity in float64 except the Monte-Carlo checks.

:class:`LinearSetting` holds the parameters, the one ``torch.Generator`` seeded by ``seed`` and
the concepts drawn from it (spectrum, ``W0``, covariances ``Sigma_j``, targets ``W*_j``). Later
draws come from the same generator, so the functions below must be called in the notebook's
order (``reproductions/seqlora_linear.ipynb``) to reproduce its numbers: the three basis choices
(:func:`frozen_random_runs`, :func:`kyfan_run`, :func:`learned_run`), :func:`energy_rows`,
:func:`learned_vs_kyfan`, :func:`forgetting_rows`, then the draw-free rest.

Every paper identity is checked on every call; a violation raises :class:`PaperIdentityError`
naming the equation. The model and the bases are in :mod:`.model`, the Thm 7 / Prop. 2 checks
in :mod:`.energy`, the Thm 8 checks in :mod:`.forgetting`, the JSON record in :mod:`.record`;
the tables and the figure in :mod:`janus.reporting.seqlora_linear`.
"""

from __future__ import annotations

from janus.analysis.seqlora_linear.energy import (
    check_orthogonality,
    energy_rows,
    isotropic_gap,
    learned_vs_kyfan,
    rank_sweep,
)
from janus.analysis.seqlora_linear.forgetting import (
    FORGETTING_KEYS,
    forgetting,
    forgetting_rows,
    update_norms,
)
from janus.analysis.seqlora_linear.model import (
    F64,
    Chooser,
    ConceptRun,
    LinearSetting,
    PaperIdentityError,
    captured,
    frozen_random_runs,
    kyfan_run,
    learn_basis,
    learned_run,
    require,
    residual,
    run_sequence,
    spectral,
)
from janus.analysis.seqlora_linear.record import PAPER, record, write_record

__all__ = [
    "F64",
    "FORGETTING_KEYS",
    "PAPER",
    "Chooser",
    "ConceptRun",
    "LinearSetting",
    "PaperIdentityError",
    "captured",
    "check_orthogonality",
    "energy_rows",
    "forgetting",
    "forgetting_rows",
    "frozen_random_runs",
    "isotropic_gap",
    "kyfan_run",
    "learn_basis",
    "learned_run",
    "learned_vs_kyfan",
    "rank_sweep",
    "record",
    "require",
    "residual",
    "run_sequence",
    "spectral",
    "update_norms",
    "write_record",
]
