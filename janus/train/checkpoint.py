"""A run's checkpoint (``checkpoint.pt`` in its folder), written after every task so that a
stopped run continues from its last finished task: writing it, reading it, and restoring the
model and method from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from janus.core.errors import ConfigError, JanusError
from janus.core.results import atomic_path
from janus.methods import Method
from janus.model.continual import ContinualViT

CHECKPOINT_NAME = "checkpoint.pt"


def write_checkpoint(path: Path, entries: dict[str, Any], model: ContinualViT,
                     backbone_keys: frozenset[str], method: Method) -> None:
    """Write ``entries`` (what the run is made with and how far it got), the model's structure
    and its entries outside the frozen backbone (``backbone_keys``, rebuilt from the config on
    resume) and the method's state to ``path``, atomically."""
    state = {
        **entries,
        "structure": model.structure(),
        "model": {k: v for k, v in model.state_dict().items() if k not in backbone_keys},
        "method": method.state_dict(),
    }
    # through a Python file: a full disk is then an OSError (ENOSPC) that atomic_path turns
    # into one message; torch's own file writer reports it as an opaque RuntimeError
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(state, f)


def read_checkpoint(path: Path, device: torch.device) -> dict[str, Any]:
    """The checkpoint at ``path``, its tensors on ``device``; one error if it cannot be read."""
    try:
        return torch.load(path, map_location=device, weights_only=False)
    except Exception as err:  # truncated or overwritten file
        raise JanusError(
            f"the checkpoint {path} cannot be read ({type(err).__name__}; truncated?), so "
            f"the run cannot continue from it; pass --force to start over (its record "
            f"keeps the accuracies of the finished tasks until then)") from None


def restore(state: dict[str, Any], path: Path, model: ContinualViT,
            backbone_keys: frozenset[str], method: Method) -> None:
    """Rebuild ``model`` to the checkpoint's structure, set ``method`` up on it and load both
    from the checkpoint ``state`` read from ``path``; one error if it does not fit the model."""
    model.rebuild(state["structure"])
    method.setup(model)
    missing, unexpected = model.load_state_dict(state["model"], strict=False)
    if unexpected or not set(missing) <= backbone_keys:
        raise ConfigError(f"the checkpoint at {path} does not fit this model (missing "
                          f"{sorted(set(missing) - backbone_keys)[:3]}, unexpected "
                          f"{unexpected[:3]}); pass --force to start over")
    method.load_state_dict(state["method"])
