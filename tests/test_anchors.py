"""The per-benchmark table of the anchors' official settings reaches the methods."""

import pytest

from janus.core.config import apply_overrides, profile
from janus.methods import METHODS, build_method
from janus.methods.anchors import BENCHMARK_PARAMS, benchmark_params


@pytest.mark.parametrize(("dataset", "lambda_b"),
                         [("cifar100", 0.95), ("imagenet-r", 0.98), ("domainnet", 0.95),
                          ("mini-imagenet-32", 0.98)])
def test_inflora_threshold_follows_the_official_config_of_the_benchmark(dataset, lambda_b):
    cfg = apply_overrides(profile("paper"), ["method.name=inflora", f"data.dataset={dataset}"])
    assert build_method(cfg).params["lambda_b"] == lambda_b


def test_explicit_parameters_win_over_the_table():
    cfg = apply_overrides(profile("paper"), ["method.name=lora-drs", "data.dataset=cifar100",
                                             "method.params={'margin': 1.5}"])
    params = build_method(cfg).params
    assert params["margin"] == 1.5 and params["lambda_atl"] == 0.05 and params["head_lr"] == 2e-3


def test_every_entry_names_a_registered_method_and_its_parameters():
    for method, per_dataset in BENCHMARK_PARAMS.items():
        assert method in METHODS
        for params in per_dataset.values():
            assert set(params) <= set(METHODS[method].defaults)
    assert benchmark_params("finetune", "cifar100") == {}
