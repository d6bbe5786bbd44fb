"""Continual-learning methods, registered by name (``janus list`` shows them)."""

from janus.methods import (  # noqa: F401 (registers them)
    bilora,
    coda_prompt,
    dualprompt,
    eblora,
    finetune,
    inflora,
    janus_lora,
    l2p,
    lora_drs,
    lora_gpm,
    references,
    sdlora,
    sdlora_kd,
    sdlora_rr,
    seqlora,
)
from janus.methods.base import METHODS, Method, TaskContext, build_method

__all__ = ["METHODS", "Method", "TaskContext", "build_method"]
