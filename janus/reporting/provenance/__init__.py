"""Where each method comes from and how far it is checked: the official code it was compared
with, each unit-level check and the test that holds it, and every known deviation with its
reason and the switch that undoes it. The source of ``REPRODUCIBILITY.md``
(:mod:`janus.reporting.ledger`); the prose behind each entry is the method's
``docs/methods/`` page."""

from __future__ import annotations

from janus.reporting.provenance.baselines import FINETUNE, JOINT, LORA_GPM, NCM
from janus.reporting.provenance.bilora import BILORA
from janus.reporting.provenance.eblora import EBLORA
from janus.reporting.provenance.inflora import INFLORA
from janus.reporting.provenance.janus_lora import JANUS_LORA
from janus.reporting.provenance.lora_drs import LORA_DRS
from janus.reporting.provenance.prompts import CODA_PROMPT, DUALPROMPT, L2P
from janus.reporting.provenance.records import Check, Deviation, Provenance
from janus.reporting.provenance.sdlora import SD_LORA, SD_LORA_KD, SD_LORA_RR
from janus.reporting.provenance.seqlora import CONTINUAL_ALTERNATING, SEQLORA

__all__ = ["PROVENANCE", "Check", "Deviation", "Provenance"]


PROVENANCE: tuple[Provenance, ...] = (
    BILORA,
    CODA_PROMPT,
    CONTINUAL_ALTERNATING,
    DUALPROMPT,
    EBLORA,
    FINETUNE,
    INFLORA,
    JANUS_LORA,
    JOINT,
    L2P,
    LORA_DRS,
    LORA_GPM,
    NCM,
    SD_LORA,
    SD_LORA_KD,
    SD_LORA_RR,
    SEQLORA,
)
"""One entry per registered method, in name order."""
