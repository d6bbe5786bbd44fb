"""The training device named by ``train.device``, and its out-of-memory errors."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import torch

from janus.core.config import RunConfig
from janus.core.errors import ConfigError, GPUOutOfMemoryError


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when present, else the CPU; a CUDA name needs CUDA."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name!r} but CUDA is not available; use cpu or auto")
    return torch.device(name)


def memory_in_use() -> str:
    """``, X GiB held by PyTorch of Y GiB on the GPU`` (empty without CUDA)."""
    if not torch.cuda.is_available():
        return ""
    held = torch.cuda.memory_reserved() / 2**30
    total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory / 2**30
    return f", {held:.2f} GiB held by PyTorch of {total:.1f} GiB on the GPU"


@contextlib.contextmanager
def out_of_memory_explained(cfg: RunConfig, task: int, phase: str) -> Iterator[None]:
    """Turn a GPU out-of-memory error raised within the block (task ``task``, ``phase``
    ``training`` or ``evaluation``) into one :class:`GPUOutOfMemoryError` naming the batch
    size, the memory asked for and the setting to lower; the cache is emptied first."""
    try:
        yield
    except torch.OutOfMemoryError as err:
        asked = re.search(r"[Tt]ried to allocate ([\d.]+ [KMGT]?i?B)", str(err))
        in_use = memory_in_use()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        key = "data.batch_size" if phase == "training" else "data.eval_batch_size"
        size = cfg.data.batch_size if phase == "training" else cfg.data.eval_batch_size
        lower = [f"--set {key}={max(1, size // 2)}"]
        if cfg.train.amp == "off":
            lower.append("--set train.amp=bf16")
        raise GPUOutOfMemoryError(
            f"GPU out of memory in task {task + 1} ({phase}, {key}={size}): it asked for "
            f"{asked.group(1) if asked else 'more memory'}{in_use}; lower the batch "
            f"({' or '.join(lower)})") from None
