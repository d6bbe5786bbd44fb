"""Continual-learning metrics from an accuracy matrix (Janus-LoRA Sec. 4.1).

``A[t, i]`` is the accuracy (percent) on task i's test set after training task t
(0-based here; the paper counts from 1). Only the lower triangle i <= t is defined.
"""

from __future__ import annotations

import numpy as np


def _matrix(acc: np.ndarray | list) -> np.ndarray:
    a = np.asarray(acc, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 1:
        raise ValueError(f"accuracy matrix must be square T x T, got shape {a.shape}")
    if np.isnan(a[np.tril_indices(len(a))]).any():
        raise ValueError("accuracy matrix has missing entries on or below the diagonal")
    return a


def final_accuracy(acc: np.ndarray | list) -> float:
    """ACC = (1/T) sum_i A[T, i]: mean accuracy over all tasks after the last one."""
    a = _matrix(acc)
    return float(a[-1].mean())


def average_accuracies(acc: np.ndarray | list) -> np.ndarray:
    """``(1/t) sum_{i<=t} A[t, i]`` for t = 1..T: the average accuracy over the tasks seen,
    after each task (Janus-LoRA Fig. 5's curves)."""
    a = _matrix(acc)
    return np.array([a[t, : t + 1].mean() for t in range(len(a))])


def mean_average_accuracy(acc: np.ndarray | list) -> float:
    """MAA = (1/T) sum_t (1/t) sum_{i<=t} A[t, i]: the average accuracy after each task,
    averaged over the T tasks."""
    return float(average_accuracies(acc).mean())


def backward_transfer(acc: np.ndarray | list) -> float:
    """BWT = (1/(T-1)) sum_{i<T} (A[T, i] - A[i, i]); negative means forgetting.
    Defined as 0 for a single task."""
    a = _matrix(acc)
    t = len(a)
    if t == 1:
        return 0.0
    return float(np.mean(a[-1, :-1] - np.diag(a)[:-1]))


def summary(acc: np.ndarray | list) -> dict[str, float]:
    """ACC, MAA and BWT of one accuracy matrix."""
    return {
        "acc": final_accuracy(acc),
        "maa": mean_average_accuracy(acc),
        "bwt": backward_transfer(acc),
    }
