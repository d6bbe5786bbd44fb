"""SD-LoRA-RR (Wu et al., ICLR 2025, Sec. 3.5, Eq. 6, Alg. 1 lines 2-4): SD-LoRA
(:mod:`janus.methods.sdlora`) with a stepwise reduced rank for later tasks. Choices:
``docs/methods/sdlora.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

from janus.core.errors import ConfigError
from janus.core.fields import param
from janus.methods.sdlora import PAPER_RANKS, SDLoRA, SDLoRAParams, scaled_rank


@dataclass(frozen=True)
class SDLoRARRParams(SDLoRAParams):
    mu: int = param(4, "first task (1-based) of rank r_mu", low=2)
    nu: int = param(8, "first task (1-based) of rank r_nu", low=3)
    ranks: tuple[int, ...] | None = param(
        None, "(r_1, r_mu, r_nu); None scales the paper's (10, 8, 6) to lora.rank", low=1)

    def check(self) -> None:
        super().check()
        if not self.mu < self.nu:
            raise ConfigError(f"mu={self.mu} must be < nu={self.nu}")
        r = self.ranks
        if r is not None and not (len(r) == 3 and r[0] >= r[1] >= r[2]):
            raise ConfigError(f"ranks={list(r)} must be 3 non-increasing ranks (r_1, r_mu, "
                              f"r_nu)")


class SDLoRARR(SDLoRA, name="sd-lora-rr", params=SDLoRARRParams):
    """SD-LoRA-RR: SD-LoRA with a stepwise reduced rank for later tasks.

    SD-LoRA-RR, Eq. 6 / Alg. 1 lines 2-4: rank r_1 for tasks 1..mu-1, r_mu for tasks
    mu..nu-1, r_nu from task nu on (1-based task indices, as in the paper)."""

    def init_state(self) -> None:
        super().init_state()
        ranks = self.params.ranks
        self.ranks = ranks if ranks is not None else tuple(
            scaled_rank(self.cfg.lora.rank, r) for r in PAPER_RANKS)

    def rank(self, task: int) -> int:
        t = task + 1
        return self.ranks[0] if t < self.params.mu else (
            self.ranks[1] if t < self.params.nu else self.ranks[2]
        )
