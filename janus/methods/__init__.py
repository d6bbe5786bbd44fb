"""Continual-learning methods, registered by name (``janus list`` shows them)."""

from janus.methods import finetune  # noqa: F401  (registers the method)
from janus.methods.base import METHODS, Method, TaskContext, build_method, register_method

__all__ = ["METHODS", "Method", "TaskContext", "build_method", "register_method"]
