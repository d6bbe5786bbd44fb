"""The linear model of SeqLoRA's stylised setting (App. E, Eq. 108-112) and its three choices of
input bases: (a) frozen random (Orthogonal Adaptation), (b) Ky Fan (Thm 7), (c) learned.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from janus.core import geometry as geo
from janus.core.errors import ConfigError

F64 = torch.float64


class PaperIdentityError(AssertionError):
    """A formula of the paper does not hold in the computed numbers (a bug, or bad luck in a
    statistical check at several standard errors)."""


def require(ok: bool, what: str) -> None:
    """Raise :class:`PaperIdentityError` with ``what`` (the equation and the values) unless
    ``ok``; unlike ``assert`` it also runs under ``python -O``."""
    if not ok:
        raise PaperIdentityError(what)


@dataclass
class LinearSetting:
    """The parameters and the concepts of App. E, Eq. 108-112 (``n = m``).

    ``Sigma_j = Q_j diag(spectrum) Q_j^T`` with a Haar rotation ``Q_j`` and a geometric
    spectrum (``decay**(i-1)``, unit trace); ``W*_j = W0 + D_j`` with ``D_j`` Haar orthogonal.
    Drawn at construction, in this order: ``W0``, then per concept ``Q_j`` and ``D_j``.
    """

    seed: int = 0
    m: int = 32
    r: int = 2
    num_tasks: int = 6
    draws: int = 200
    decay: float = 0.75
    noise: float = 0.1
    gd_steps: int = 300
    gd_lr: float = 10.0
    mc_samples: int = 4000
    generator: torch.Generator = field(init=False, repr=False)
    spectrum: torch.Tensor = field(init=False, repr=False)
    W0: torch.Tensor = field(init=False, repr=False)
    Sigmas: list[torch.Tensor] = field(init=False, repr=False)
    targets: list[torch.Tensor] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if min(self.m, self.r, self.num_tasks) < 1:
            raise ConfigError(f"m, r and num_tasks must be >= 1, got {self.m}, {self.r}, "
                              f"{self.num_tasks}")
        if self.num_tasks * self.r > self.m:
            raise ConfigError(
                f"num_tasks * r = {self.num_tasks} * {self.r} > m = {self.m}: the orthogonality "
                "constraint (Eq. 5) allows at most m / r concepts (Sec. 5); lower num_tasks or r"
            )
        if min(self.draws, self.mc_samples) < 2:
            raise ConfigError(f"draws and mc_samples need >= 2 samples for a standard error, "
                              f"got {self.draws}, {self.mc_samples}")
        self.generator = torch.Generator().manual_seed(self.seed)
        spectrum = self.decay ** torch.arange(self.m, dtype=F64)
        self.spectrum = spectrum / spectrum.sum()
        self.W0 = self.randn(self.n, self.m) / math.sqrt(self.m)
        self.Sigmas, self.targets = [], []
        for _ in range(self.num_tasks):
            Q = self.haar_frame(self.m, self.m)
            self.Sigmas.append(Q @ torch.diag(self.spectrum) @ Q.T)
            self.targets.append(self.W0 + self.haar_frame(self.n, self.n))

    @property
    def n(self) -> int:
        """The output dimension (equal to ``m``)."""
        return self.m

    @property
    def eye(self) -> torch.Tensor:
        """``I_m`` in float64."""
        return torch.eye(self.m, dtype=F64)

    def randn(self, *shape: int) -> torch.Tensor:
        """A standard Gaussian float64 tensor from the setting's generator."""
        return torch.randn(*shape, generator=self.generator, dtype=F64)

    def haar_frame(self, rows: int, cols: int) -> torch.Tensor:
        """A Haar-random ``rows x cols`` frame: the QR of a Gaussian matrix with diag(R) > 0
        (:func:`~janus.core.geometry.qr_retraction`'s sign convention)."""
        return geo.qr_retraction(self.randn(rows, cols))

    def stack(self, bases: Sequence[torch.Tensor]) -> torch.Tensor:
        """``B_int = [B_1, ..., B_{j-1}]`` (``m x (j-1) r``); empty for the first concept."""
        return torch.cat(list(bases), 1) if bases else torch.zeros(self.m, 0, dtype=F64)

    def loss(self, W: torch.Tensor, j: int) -> float:
        """Eq. 108, population risk of concept ``j``:
        ``Tr((W - W*_j) Sigma_j (W - W*_j)^T) + n noise^2``."""
        D = W - self.targets[j]
        return float(torch.trace(D @ self.Sigmas[j] @ D.T)) + self.n * self.noise**2

    def loss_grad(self, W: torch.Tensor, j: int) -> torch.Tensor:
        """Eq. 121: ``grad L_j(W) = 2 E[(W x - y) x^T] = 2 (W - W*_j) Sigma_j``."""
        return 2 * (W - self.targets[j]) @ self.Sigmas[j]

    def fit_A(self, W_prev: torch.Tensor, j: int, B: torch.Tensor) -> torch.Tensor:
        """``argmin_A L_j(W_prev + A B^T) = (W*_j - W_prev) Sigma_j B (B^T Sigma_j B)^-1``
        (the lower level of Eq. 6, in closed form)."""
        S = self.Sigmas[j]
        return (self.targets[j] - W_prev) @ S @ B @ torch.linalg.inv(B.T @ S @ B)

    def reduced_loss(self, W_prev: torch.Tensor, j: int, B: torch.Tensor) -> float:
        """``Phi(B) = min_A L_j(W_prev + A B^T)``, the reduced bilevel objective of Eq. 6."""
        return self.loss(W_prev + self.fit_A(W_prev, j, B) @ B.T, j)

    def eckart_young_loss(self) -> float:
        """The best rank-r loss of concept 1 from ``W0``: ``1 - sum_{q<=r} lambda_q + n
        noise^2`` (Eckart-Young in the Sigma-norm, ``D_1`` orthogonal)."""
        return 1.0 - float(self.spectrum[: self.r].sum()) + self.n * self.noise**2


@dataclass
class ConceptRun:
    """One sequence of concepts: per concept the basis ``B_j``, the factor ``A_j`` and the
    model ``W_j`` after it (Eq. 110); ``log`` holds method (c)'s descent per concept as
    (loss at the start, final loss, final step size)."""

    B: list[torch.Tensor] = field(default_factory=list)
    A: list[torch.Tensor] = field(default_factory=list)
    W: list[torch.Tensor] = field(default_factory=list)
    log: list[tuple[float, float, float]] = field(default_factory=list)


Chooser = Callable[[int, list[torch.Tensor], torch.Tensor], torch.Tensor]


def residual(B: torch.Tensor, Sigma: torch.Tensor) -> float:
    """Eq. 112: the residual energy ``Tr(P_B^perp Sigma)``, ``P_B`` the projector onto col(B)."""
    P_perp = geo.orthogonal_complement_projector(geo.qr_retraction(B))
    return float(torch.trace(P_perp @ Sigma))


def captured(B: torch.Tensor, Sigma: torch.Tensor) -> float:
    """The captured energy ``Tr(P_B Sigma) = Tr Sigma - Tr(P_B^perp Sigma)``."""
    return float(torch.trace(Sigma)) - residual(B, Sigma)


def spectral(M: torch.Tensor) -> float:
    """The spectral norm ``||M||_2``."""
    return float(torch.linalg.matrix_norm(M, 2))


def run_sequence(s: LinearSetting, choose: Chooser, run: ConceptRun | None = None) -> ConceptRun:
    """Learn concepts 1..T in order (Eq. 110): ``B_j = choose(j, earlier bases, W_{j-1})``,
    then the exact ``A_j`` (:meth:`LinearSetting.fit_A`)."""
    run = ConceptRun() if run is None else run
    W = s.W0.clone()
    for j in range(s.num_tasks):
        B = choose(j, run.B, W)
        A = s.fit_A(W, j, B)
        W = W + A @ B.T
        run.B.append(B), run.A.append(A), run.W.append(W)
    return run


def frozen_random_runs(s: LinearSetting) -> list[ConceptRun]:
    """Method (a), Orthogonal Adaptation: per run one Haar orthogonal ``m x m`` matrix whose
    j-th block of r columns is ``B_j`` (``draws`` runs, one draw each)."""
    runs = []
    for _ in range(s.draws):
        Q = s.haar_frame(s.m, s.m)
        runs.append(run_sequence(s, lambda j, bases, W, Q=Q: Q[:, j * s.r : (j + 1) * s.r]))
    return runs


def kyfan_run(s: LinearSetting) -> ConceptRun:
    """Method (b), Thm 7: ``B_j`` spans the top-r eigenvectors of the compressed covariance
    (Eq. 87), :func:`~janus.core.geometry.optimal_feasible_basis` (no draws)."""
    return run_sequence(
        s, lambda j, bases, W: geo.optimal_feasible_basis(s.Sigmas[j], s.stack(bases), s.r)
    )


def learn_basis(
    s: LinearSetting, j: int, bases: list[torch.Tensor], W_prev: torch.Tensor
) -> tuple[torch.Tensor, tuple[float, float, float]]:
    """Method (c) for concept ``j``: projected gradient descent on ``Phi(B)`` from a
    Haar-random feasible start (one ``randn(m, r)``). Each step is projected with Eq. 17
    (eps = 0) and re-orthonormalised; a step that would raise ``Phi`` is halved. The gradient
    is ``grad_W L^T A*`` (envelope theorem). Returns ``B_j`` and (start loss, final, step)."""
    B_int = s.stack(bases)
    B = geo.qr_retraction(geo.regularized_complement_projection(s.randn(s.m, s.r), B_int, 0.0))
    lr, current = s.gd_lr, s.reduced_loss(W_prev, j, B)
    first = current
    for _ in range(s.gd_steps):
        A = s.fit_A(W_prev, j, B)
        grad_B = s.loss_grad(W_prev + A @ B.T, j).T @ A  # grad_B L at A = A*(B)
        while lr > 1e-12:
            cand = geo.qr_retraction(
                geo.regularized_complement_projection(B - lr * grad_B, B_int, 0.0)
            )
            new = s.reduced_loss(W_prev, j, cand)
            if new <= current:
                B, current = cand, new
                break
            lr /= 2
    return B, (first, current, lr)


def learned_run(s: LinearSetting) -> ConceptRun:
    """Method (c): every basis learned by :func:`learn_basis`; ``ConceptRun.log`` keeps its
    descent."""
    run = ConceptRun()

    def choose(j: int, bases: list[torch.Tensor], W_prev: torch.Tensor) -> torch.Tensor:
        B, entry = learn_basis(s, j, bases, W_prev)
        run.log.append(entry)
        return B

    return run_sequence(s, choose, run)
