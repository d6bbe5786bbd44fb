"""Seeds of the random number generators: one call seeds Python's, NumPy's and PyTorch's, and
each task of a run derives its own seed from the run seed."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's generators with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def task_seed(seed: int, task: int) -> int:
    """Independent seed of task ``task`` under run seed ``seed``."""
    return int(np.random.SeedSequence([seed, task]).generate_state(1)[0])
