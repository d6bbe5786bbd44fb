"""Numerics of a run: mixed precision (``train.amp``), deterministic kernels
(``train.deterministic``) and the precision policy for method statistics.

Policy (``docs/interpretations.md``, "Precision"): the training forward pass and the
evaluation run under autocast when ``train.amp`` resolves to ``bf16``; the parameters, their
gradients, the optimizer and every quantity a method *keeps or projects with* (Gram matrices,
bases, OE's estimate, GR's ``G_W V``, prototypes, magnitudes' norms) are float32 or float64.
Hooks that run inside the autocast forward compute those quantities under
:func:`full_precision` from inputs cast to float32 (:func:`statistic`); offline passes over a
task's images (Grams, prototypes) run their whole forward in full precision.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch

from janus.core.errors import ConfigError

AMP_MODES = ("auto", "off", "bf16", "fp16")
"""``train.amp`` values: ``auto`` (bf16 on CUDA, off elsewhere), ``off``, ``bf16``; ``fp16`` is
refused (:func:`resolve_amp`)."""

AUTOCAST_DEVICES = ("cpu", "cuda")
CUBLAS_WORKSPACE = ":4096:8"
"""``CUBLAS_WORKSPACE_CONFIG`` that makes cuBLAS deterministic (CUDA >= 10.2 docs)."""

F = TypeVar("F", bound=Callable[..., Any])


def amp_mode(value: Any) -> str:
    """``train.amp`` as one of :data:`AMP_MODES`; the booleans of records written before the
    choice existed read as ``auto`` (True) and ``off`` (False)."""
    if value is True:
        return "auto"
    if value is False:
        return "off"
    if value not in AMP_MODES:
        raise ConfigError(f"train.amp={value!r} is not a precision: choose one of "
                          f"{', '.join(AMP_MODES[:3])}")
    return value


def resolve_amp(value: Any, device: torch.device) -> str:
    """The autocast dtype a run on ``device`` uses, ``off`` or ``bf16``.

    ``fp16`` is refused: it needs a loss scaler, and the methods that rewrite gradients before
    the optimizer step (GR, GPM / DRS projections, Riemannian steps) and SeqLoRA's own bilevel
    steps would each have to unscale first; bf16 has float32's range and needs none."""
    mode = amp_mode(value)
    if mode == "fp16":
        raise ConfigError(
            "train.amp=fp16 is not supported: fp16 needs a gradient scaler, which the methods "
            "that rewrite gradients (GR, projections, Riemannian steps) would have to undo; use "
            "--set train.amp=bf16 (same speed on Ampere and later GPUs) or train.amp=off")
    if mode == "auto":
        return "bf16" if device.type == "cuda" else "off"
    if mode == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("train.amp=bf16 but this GPU has no bfloat16 support (before "
                          "Ampere); use --set train.amp=off")
    return mode


def autocast(mode: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The autocast context of a resolved ``mode`` (:func:`resolve_amp`) on ``device``."""
    if mode == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def full_precision() -> Iterator[None]:
    """Within the block autocast is off on every device (tensors keep their dtypes): where
    method statistics are computed."""
    with contextlib.ExitStack() as stack:
        for device_type in AUTOCAST_DEVICES:
            if torch.is_autocast_enabled(device_type):
                stack.enter_context(torch.autocast(device_type, enabled=False))
        yield


def in_full_precision(fn: F) -> F:
    """``fn`` run under :func:`full_precision` (for hooks that compute statistics)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with full_precision():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def statistic(x: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``x`` detached and cast to ``dtype`` (float32 by default), at least float32."""
    if torch.finfo(dtype).bits < 32:
        raise ValueError(f"statistics are kept in float32 or float64, not {dtype}")
    return x.detach().to(dtype)


# --------------------------------------------------------------------------- determinism


def fix_cublas_workspace() -> None:
    """Set ``CUBLAS_WORKSPACE_CONFIG`` (unless the user set it) before anything runs on the GPU:
    PyTorch reads it when the process first uses cuBLAS, so a process that ran a matrix
    product on the GPU before keeps its workspace (a warning then names the operation)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)


@contextlib.contextmanager
def determinism(enabled: bool) -> Iterator[None]:
    """Deterministic kernels within the block when ``enabled``: PyTorch's deterministic
    algorithms (warn-only: an operation without a deterministic kernel warns, naming itself,
    instead of stopping a long run), cuDNN deterministic without autotuning, and cuBLAS'
    fixed workspace (``CUBLAS_WORKSPACE_CONFIG``, read when cuBLAS first starts in the
    process). The previous settings are restored afterwards."""
    if not enabled:
        yield
        return
    saved = (torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    fix_cublas_workspace()
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[2:]


def numerics(mode: str, deterministic: bool) -> dict[str, Any]:
    """What a record stores about its numerics: the resolved autocast dtype, deterministic
    kernels, and the float32 matmul settings that change results on a GPU (TF32)."""
    return {
        "amp": mode,
        "deterministic": deterministic,
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cuda_matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
    }
