"""Sequential fine-tuning with one LoRA pair per adapted slice: the lower bound of
Janus-LoRA Table 2 ("Finetune": "sequentially fine-tuned on tasks using standard LoRA
without any anti-forgetting mechanism", Sec. 4.1)."""

from __future__ import annotations

from janus.methods.base import Method, TaskContext
from janus.model.continual import ContinualViT


class Finetune(Method, name="finetune"):
    """Sequential LoRA fine-tuning, no anti-forgetting (lower bound)."""

    def setup(self, model: ContinualViT) -> None:
        """One LoRA pair per slice, trained continually over all tasks."""
        if not model.lora_components():
            model.add_lora_components()

    def before_task(self, model: ContinualViT, ctx: TaskContext) -> None:
        model.set_lora_trainable(True)
