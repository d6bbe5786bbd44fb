"""The training device named by ``train.device``."""

from __future__ import annotations

import torch

from janus.core.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when present, else the CPU; a CUDA name needs CUDA."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name!r} but CUDA is not available; use cpu or auto")
    return torch.device(name)
