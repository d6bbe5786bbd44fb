"""Continual-learning methods, registered by name (``janus list`` shows them)."""

from janus.methods import eblora, finetune, janus_lora, sdlora  # noqa: F401 (registers them)
from janus.methods.base import METHODS, Method, TaskContext, build_method, register_method

__all__ = ["METHODS", "Method", "TaskContext", "build_method", "register_method"]
