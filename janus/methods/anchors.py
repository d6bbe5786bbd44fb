"""Per-benchmark method settings of the anchors' official configs, in one table.

A method's ``defaults`` hold the setting of its main benchmark; where an official config sets
a parameter differently for another data set, the entry below overrides the default for that
``data.dataset`` (explicit ``method.params`` still win). Each value cites the config file it
comes from; ``docs/methods/<method>.md`` says which commit was read.
"""

from __future__ import annotations

from typing import Any

BENCHMARK_PARAMS: dict[str, dict[str, dict[str, Any]]] = {
    "inflora": {  # liangyanshuo/InfLoRA@e08b00e, key "lamb" of configs/<benchmark>_inflora.json
        "cifar100": {"lambda_b": 0.95},  # configs/cifar100_inflora.json
        "imagenet-r": {"lambda_b": 0.98},  # configs/mimg{5,10,20}_inflora.json
        "domainnet": {"lambda_b": 0.95},  # configs/domainnet_inflora.json
    },
    "lora-drs": {  # DngBack/LoRA-Sub-DRS@836ad29, configs/*.json lines 24 ("fc_lrate"),
        # 30 ("margin_inter") and 31 ("lambada")
        "cifar100": {"margin": 1.0, "lambda_atl": 0.05, "head_lr": 2e-3},  # configs/cifar100.json
        "imagenet-r": {"margin": 2.0, "lambda_atl": 0.2, "head_lr": 5e-4},  # configs/imagenetr.json
    },
}


# No entry for L2P / DualPrompt ``batchwise``: the ports' CIFAR-100 configs vote per batch,
# but every table we reproduce was made with per-sample selection (Janus-LoRA's through the
# InfLoRA code base, liangyanshuo/InfLoRA@e08b00e models/zoo.py lines 418-447):
# docs/methods/prompts.md, "Prompt selection".


def benchmark_params(method: str, dataset: str) -> dict[str, Any]:
    """The official per-benchmark settings of ``method`` on ``dataset`` (empty when none)."""
    return dict(BENCHMARK_PARAMS.get(method, {}).get(dataset, {}))
