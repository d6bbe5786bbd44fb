"""Continual-learning methods, registered by name (``janus list`` shows them)."""

from janus.methods import (  # noqa: F401 (registers them)
    bilora,
    eblora,
    finetune,
    inflora,
    janus_lora,
    lora_drs,
    lora_gpm,
    prompts,
    references,
    sdlora,
    seqlora,
)
from janus.methods.base import METHODS, Method, TaskContext, build_method

__all__ = ["METHODS", "Method", "TaskContext", "build_method"]
