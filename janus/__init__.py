"""Janus-LoRA and the LoRA-based class-incremental methods it is compared with."""

__version__ = "0.1.0"
