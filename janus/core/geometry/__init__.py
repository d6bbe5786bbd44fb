"""The paper formulas as plain torch functions, one submodule per paper or topic; use them
through this package (``from janus.core import geometry as geo``).

- :mod:`~janus.core.geometry.janus_lora`: Janus-LoRA Sec. 3.2-3.3, App. A (Eq. 3-10, 25-39);
- :mod:`~janus.core.geometry.seqlora`: SeqLoRA Eq. 9, 13-17 and Thm 7 (Eq. 84-90);
- :mod:`~janus.core.geometry.sdlora`: SD-LoRA Eq. 3-8;
- :mod:`~janus.core.geometry.stiefel`: EBLoRA's (code) Stiefel retraction and projections;
- :mod:`~janus.core.geometry.gpm`: GPM Eq. 8-9 and InfLoRA's first-task rule.

Conventions (as in :mod:`janus.model.lora`): a weight (or weight update) is ``d_out x d_in``
and acts as ``y = W x``; LoRA writes ``W = W0 + s B A`` with ``A`` of shape ``r x d_in`` and
``B`` of shape ``d_out x r``. Past inputs are the *columns* of ``X_past`` (``d_in x N``), so an
update is "safe" when ``dW X_past = 0``; an orthonormal basis ``V`` of the protected subspace is
``d_in x k``. Online Estimation (Eq. 8-10) instead takes a mini-batch ``X`` as ``batch x d_in``
(rows are samples), as the paper does. Each submodule maps its paper's letters onto these.
Everything works in any floating dtype; the proofs use float64.
"""

from __future__ import annotations

from janus.core.geometry.gpm import first_task_gpm_basis, grown_basis
from janus.core.geometry.janus_lora import (
    complement_basis,
    composite_update,
    exactly_safe_factor_steps,
    lora_factor_gradients,
    online_estimation_step,
    orthogonal_complement_projector,
    projected_gradient_products,
    qr_retraction,
    reconstruction_gradient,
    reconstruction_loss,
    rectify_factor_updates,
    rectify_from_products,
    safe_update,
    safe_update_from_inputs,
)
from janus.core.geometry.sdlora import (
    normalized_direction,
    sdlora_absorb_magnitudes,
    sdlora_delta,
    sdlora_kd_coefficients,
)
from janus.core.geometry.seqlora import (
    bilevel_reduced_gradient,
    cross_hessian_operator,
    cross_hessian_vector_product,
    optimal_feasible_basis,
    partial_grads,
    reduced_gradient,
    regularized_complement_projection,
)
from janus.core.geometry.stiefel import (
    polar_retraction,
    restricted_tangent_projection,
    stiefel_tangent_projection,
)

__all__ = [
    "bilevel_reduced_gradient",
    "complement_basis",
    "composite_update",
    "cross_hessian_operator",
    "cross_hessian_vector_product",
    "exactly_safe_factor_steps",
    "first_task_gpm_basis",
    "grown_basis",
    "lora_factor_gradients",
    "normalized_direction",
    "online_estimation_step",
    "optimal_feasible_basis",
    "orthogonal_complement_projector",
    "partial_grads",
    "polar_retraction",
    "projected_gradient_products",
    "qr_retraction",
    "reconstruction_gradient",
    "reconstruction_loss",
    "rectify_factor_updates",
    "rectify_from_products",
    "reduced_gradient",
    "regularized_complement_projection",
    "restricted_tangent_projection",
    "safe_update",
    "safe_update_from_inputs",
    "sdlora_absorb_magnitudes",
    "sdlora_delta",
    "sdlora_kd_coefficients",
    "stiefel_tangent_projection",
]
