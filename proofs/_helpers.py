"""Small helpers shared by the claim modules (float64, seeds, sympy, notes).

Not a claim module: :func:`proofs.load_all` skips names starting with ``_``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import sympy as sp
import torch

F64 = torch.float64


def gen(seed: int) -> torch.Generator:
    """A CPU generator with a fixed seed."""
    return torch.Generator().manual_seed(seed)


def randn(g: torch.Generator, *shape: int) -> torch.Tensor:
    """Standard normal float64 tensor."""
    return torch.randn(*shape, generator=g, dtype=F64)


def eye(n: int) -> torch.Tensor:
    """float64 identity."""
    return torch.eye(n, dtype=F64)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / max(||b||, 1e-300)."""
    return float((a - b).norm() / max(float(b.norm()), 1e-300))


def gate(ok: bool) -> float:
    """0 if a qualitative requirement holds, else an infinite error."""
    return 0.0 if ok else math.inf


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log(ys) against log(xs) (zeros are clamped to 1e-300)."""
    return float(np.polyfit(np.log(xs), np.log(np.maximum(ys, 1e-300)), 1)[0])


def orthonormal(g: torch.Generator, rows: int, cols: int) -> torch.Tensor:
    """A Haar-random matrix with orthonormal columns (rows >= cols)."""
    Q, R = torch.linalg.qr(randn(g, rows, cols))
    return Q * torch.sign(torch.diagonal(R))


def spd(g: torch.Generator, n: int, eigs: list[float]) -> torch.Tensor:
    """A symmetric matrix with the given eigenvalues and a random eigenbasis."""
    Q = orthonormal(g, n, n)
    return Q @ torch.diag(torch.tensor(eigs, dtype=F64)) @ Q.T


def spec(M: torch.Tensor) -> float:
    """Spectral norm."""
    return float(torch.linalg.matrix_norm(M, 2))


def sym_matrix(name: str, rows: int, cols: int) -> sp.Matrix:
    """A matrix of real sympy symbols name{i}{j}."""
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{name}{i}{j}", real=True))


def sym_residual(M: sp.Matrix) -> float:
    """0 if every entry cancels to zero, else the number of entries that do not."""
    return float(sum(sp.cancel(e) != 0 for e in M))


def to_torch(M: sp.Matrix, values: dict) -> torch.Tensor:
    """Evaluate a sympy matrix at ``values`` as a float64 tensor."""
    return torch.tensor(np.array(M.subs(values).evalf(), dtype=np.float64))


def listed(values: Iterable[float], spec: str) -> str:
    """``values`` formatted with the format ``spec`` and joined by ", " (for notes)."""
    return ", ".join(format(v, spec) for v in values)
