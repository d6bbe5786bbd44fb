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
    assert build_method(cfg).params.lambda_b == lambda_b


def test_explicit_parameters_win_over_the_table():
    cfg = apply_overrides(profile("paper"), ["method.name=lora-drs", "data.dataset=cifar100",
                                             "method.params={'margin': 1.5}"])
    params = build_method(cfg).params
    assert params.margin == 1.5 and params.lambda_atl == 0.05 and params.head_lr == 2e-3


def test_every_entry_names_a_registered_method_and_its_parameters():
    for method, per_dataset in BENCHMARK_PARAMS.items():
        assert method in METHODS
        for params in per_dataset.values():
            assert set(params) <= set(METHODS[method].defaults)
    assert benchmark_params("finetune", "cifar100") == {}


# --------------------------------------------------------------------------- which weights


def test_records_name_the_exact_weights(tmp_path):
    from janus.model.backbones import weights_identity
    from janus.train.trainer import run

    paper = weights_identity(profile("paper").model)
    assert paper["timm_tag"] == "vit_base_patch16_224.augreg_in21k"
    assert paper["pretrained_cfg"]["num_classes"] == 21843  # IN-21K, not an IN-1K fine-tune
    bare = apply_overrides(profile("paper"), ["model.name=vit_base_patch16_224"]).model
    assert weights_identity(bare)["timm_tag"] == "vit_base_patch16_224.augreg2_in21k_ft_in1k"
    offline = apply_overrides(profile("paper"), ["model.source=checkpoint",
                                                 "model.checkpoint=/w/vit.pth"]).model
    assert weights_identity(offline) | {"pretrained_cfg": None} == {
        "source": "checkpoint", "file": "/w/vit.pth",
        "timm_tag": "vit_base_patch16_224.augreg_in21k", "pretrained_cfg": None}
    assert weights_identity(profile("mini").model)["timm_tag"] is None  # our own backbone
    cfg = apply_overrides(profile("smoke"), ["data.num_tasks=2", "train.max_steps_per_task=1"])
    assert run(cfg, tmp_path, progress=False)["weights"] == {"source": "config",
                                                             "pretrained": False}


def test_each_papers_tables_get_that_papers_weights_and_a_warning_otherwise():
    import warnings

    from janus.experiments.configs import (
        PAPER_WEIGHTS,
        OtherWeightsWarning,
        check_weights,
        make_config,
        paper_overrides,
    )

    sd = make_config("paper", "sd-lora", overrides=paper_overrides("sd-lora", "paper"))
    assert sd.model.name == "vit_base_patch16_224.augreg2_in21k_ft_in1k"
    assert sd.data.class_order == "pycil-1995"
    assert paper_overrides("sd-lora", "mini") == []  # the mini backbone stands in
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_weights(sd, PAPER_WEIGHTS["sd-lora"])
        check_weights(make_config("paper", "janus-lora"), PAPER_WEIGHTS["janus-lora"])
        check_weights(make_config("mini", "sd-lora"), PAPER_WEIGHTS["sd-lora"])
    with pytest.warns(OtherWeightsWarning, match="made with vit_base_patch16_224.augreg2_in21k"
                      r"_ft_in1k, but this run \(sd-lora\) uses vit_base_patch16_224.augreg_in21k"):
        check_weights(make_config("paper", "sd-lora"), PAPER_WEIGHTS["sd-lora"])
    with pytest.warns(OtherWeightsWarning, match="random weights.*--set model.source=hub"):
        check_weights(make_config("paper", "finetune", overrides=["model.source=config"]),
                      PAPER_WEIGHTS["janus-lora"])
