"""Continual-learning methods, registered by name (``janus list`` shows them)."""

from janus.methods import finetune, janus_lora  # noqa: F401  (register the methods)
from janus.methods.base import METHODS, Method, TaskContext, build_method, register_method

__all__ = ["METHODS", "Method", "TaskContext", "build_method", "register_method"]
