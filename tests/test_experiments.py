"""Notebook building blocks: configs, ablation variants, sweeps, verdicts."""

import pytest
import timm
from PIL import Image
from timm.models.vision_transformer import VisionTransformer

from janus.core.errors import ConfigError
from janus.data.stream import build_transforms
from janus.experiments.configs import TABLE3_BENCHMARKS, make_config, table_config
from janus.experiments.runner import run_table
from janus.experiments.variants import (
    FIG2_VARIANTS,
    FIG6_VARIANTS,
    FIG7_VARIANTS,
    ONE_EPOCH,
    SDLORA_TABLE4_VARIANTS,
    TABLE1_VARIANTS,
    TABLE5_VARIANTS,
    sweep_variants,
)
from janus.methods import METHODS, build_method
from janus.reporting.tables import best_verdicts, paper_numbers, paper_table, verdict
from janus.train.trainer import run, run_dir


def test_make_config_sets_everything():
    cfg = make_config("smoke", "janus-lora", 3, tasks=4, data_root="/d",
                      overrides=["train.epochs=7"], params={"k": 2}, label="janus-k2")
    assert (cfg.method.name, cfg.seed, cfg.data.num_tasks, cfg.data.root) == (
        "janus-lora", 3, 4, "/d")
    assert cfg.train.epochs == 7 and cfg.method.params == {"k": 2}
    assert cfg.method.run_name == "janus-k2"


def test_table1_variants_are_the_seven_switch_combinations():
    combos = set()
    for v in TABLE1_VARIANTS.values():
        m = build_method(make_config("smoke", v.method, params=v.params))
        off = {"oe": False, "gr": False, "dml": False}
        p = off if v.method == "finetune" else m.params.values()
        combos.add((p["oe"], p["gr"], p["dml"]))
    assert len(combos) == 7 and (True, True, True) in combos
    keys = {v.key for v in TABLE1_VARIANTS.values()}
    assert keys == {r["method"] for r in paper_numbers("janus_lora_table1")}
    for v in FIG2_VARIANTS.values():
        build_method(make_config("smoke", v.method, params=v.params))  # valid parameters


def test_sweep_default_value_reuses_the_plain_runs():
    vs = sweep_variants("margin", [0.1, 0.3], 0.3)
    assert (vs[0].key, vs[0].params) == ("janus-margin0.1", {"margin": 0.1})
    assert (vs[1].key, vs[1].params) == ("janus-lora", {})


def row(name, mean, std, n=3):
    return {"method": name, "acc": mean, "acc_std": std, "seeds": list(range(n))}


@pytest.mark.parametrize(
    "a, b, word",
    [
        ((50.0, 1.0), (45.0, 1.0), "holds:"),  # 5 / sqrt(2/3) = 6.1 s.e.
        ((50.0, 3.0), (49.0, 3.0), "holds, within noise"),
        ((44.0, 1.0), (45.0, 0.5), "fails, within noise"),  # -1 / 0.65 = -1.5 s.e.
        ((40.0, 1.0), (45.0, 1.0), "fails:"),
        ((45.0, 0.0), (45.0, 0.0), "fails, within noise"),
    ],
)
def test_verdict(a, b, word):
    rows = {"a": row("A", *a), "b": row("B", *b)}
    assert verdict(rows, "a", "b", "acc").startswith(word)


def test_make_config_rejects_unknown_profile():
    with pytest.raises(ConfigError, match="unknown profile"):
        make_config("nope")


def test_sdlora_table4_variants_build_and_match_the_paper_rows():
    keys = {(r["method"], r["tasks"]) for r in paper_numbers("sdlora_table4")}
    for v in SDLORA_TABLE4_VARIANTS.values():
        build_method(make_config("smoke", v.method, params=v.params))
        assert {(v.key, 5), (v.key, 10)} <= keys


def test_paper_table_attaches_the_papers_numbers_and_standard_errors():
    rows = [{"method": "SD-LoRA", "variant": "sd-lora", "tasks": 10, "seeds": [0, 1, 2, 3],
             "acc": 50.0, "acc_std": 2.0, "maa": 60.0, "maa_std": 4.0}]
    text = paper_table(rows, "sdlora_table2", key="variant", metrics=("acc", "maa"), spread="se")
    row = rows[0]
    assert row["acc_se"] == pytest.approx(1.0) and row["maa_se"] == pytest.approx(2.0)
    assert (row["paper_acc"], row["paper_acc_se"], row["paper_maa"]) == (77.34, 0.35, 82.04)
    assert "50.00 ± 1.00" in text and "77.34 ± 0.35" in text
    rows[0]["tasks"] = 7  # no such column in the paper
    text = paper_table(rows, "sdlora_table2", key="variant", metrics=("acc", "maa"), spread="se")
    assert text.splitlines()[1].split()[-1] == "-" and rows[0]["paper_acc"] is None


def test_table5_and_fig6_variants():
    """Table 5: OE and GPM differ only in the basis (same update rule, no GR, no DML), under
    their own one-epoch labels; Fig. 6: LoRA-GPM with and without GR."""
    oe, gpm = (build_method(make_config("smoke", v.method, params=v.params))
               for v in (TABLE5_VARIANTS["OE"], TABLE5_VARIANTS["GPM"]))
    assert (oe.params.oe, oe.params.gr, oe.params.dml) == (True, False, False)
    # LoRA-GPM has no DML (its loss is plain CE) and protects through the shared component
    assert not gpm.params.gr and "dml" not in gpm.params.values()
    assert type(gpm).__name__ == "LoRAGPM" and not hasattr(gpm, "protects")
    keys = {r["method"] for r in paper_numbers("janus_lora_table5")}
    assert {v.key for v in TABLE5_VARIANTS.values()} == keys
    assert {r["dataset"] for r in paper_numbers("janus_lora_table5")} == {"imagenet-r", "cifar100"}
    gr = build_method(make_config("smoke", "lora-gpm", params=FIG6_VARIANTS["lora-gpm-gr"].params))
    assert gr.params.gr and FIG6_VARIANTS["lora-gpm"].key == "lora-gpm"


def test_fig7_variants_differ_only_by_dml():
    a, b = (build_method(make_config("smoke", v.method, params=v.params)).params.values()
            for v in FIG7_VARIANTS.values())
    assert {k for k in a if a[k] != b[k]} == {"dml"}


# --------------------------------------------------------------------------- Tables 3 and 4

TINY = ["data.dataset='synthetic'", "data.num_tasks=2", "data.num_classes=6",
        "data.train_per_class=16", "data.test_per_class=8", "train.epochs=5",
        "train.max_steps_per_task=3", "model.img_size=32"]
"""A seconds-long run (sizes of tests/test_trainer.py's tiny()) on a 32x32 backbone."""


@pytest.mark.parametrize(
    "profile, expected",
    [
        ("paper", {"cifar100": ("cifar100", 10, 20), "imagenet-100": ("imagenet-100", 10, 20),
                   "domainnet": ("domainnet", 5, 5)}),
        ("mini", {"cifar100": ("cifar100", 10, 4), "imagenet-100": ("mini-imagenet-32", 10, 4),
                  "domainnet": ("domainnet", 5, 4)}),
        ("smoke", {"cifar100": ("synthetic", 10, 2), "imagenet-100": ("synthetic", 10, 2),
                   "domainnet": ("synthetic", 5, 2)}),
    ],
)
def test_table3_configs(profile, expected):
    """Janus-LoRA Table 3 columns: data set, T and epochs per profile; Adam everywhere."""
    assert set(TABLE3_BENCHMARKS) == set(expected)
    assert {r["dataset"] for r in paper_numbers("janus_lora_table3")} == set(expected)
    for key, (dataset, tasks, epochs) in expected.items():
        cfg = table_config("table3", profile, key, "janus-lora", 2, data_root="/d",
                            overrides=["lora.rank=2"])
        assert (cfg.data.dataset, cfg.data.num_tasks, cfg.train.epochs) == (dataset, tasks, epochs)
        assert (cfg.train.optimizer, cfg.method.name, cfg.seed, cfg.data.root) == (
            "adam", "janus-lora", 2, "/d")
        assert cfg.lora.rank == 2 and cfg.model == make_config(profile).model


def test_table3_mini_imagenet100_is_the_table2_mini_run():
    for method in ("finetune", "janus-lora"):
        cfg = table_config("table3", "mini", "imagenet-100", method, 1)
        assert cfg.to_dict() == make_config("mini", method, 1).to_dict()
        assert run_dir(cfg, "results") == run_dir(make_config("mini", method, 1), "results")


def test_a_32px_backbone_reads_photographs():
    """The mini Table 3 columns feed photographs (DomainNet) to a 32x32 ViT: resized."""
    image = Image.new("RGB", (120, 90))
    for train in (True, False):
        tf = build_transforms(None, 32, (0.5,) * 3, (0.5,) * 3, train=train)
        assert tf(image).shape == (3, 32, 32)


def test_table4_configs_name_the_timm_backbones():
    """Janus-LoRA Table 4: the hub models, ImageNet-R T = 10, the InfLoRA normalisation."""
    names = {"sam": "vit_base_patch16_224.sam_in1k", "dino": "vit_base_patch16_224.dino"}
    assert {r["backbone"] for r in paper_numbers("janus_lora_table4")} == set(names)
    for key, name in names.items():
        cfg = table_config("table4", "paper", key, "inflora", 1)
        assert (cfg.model.source, cfg.model.name) == ("hub", name)
        assert (cfg.data.dataset, cfg.data.num_tasks, cfg.train.epochs) == ("imagenet-r", 10, 50)
        assert (cfg.model.mean, cfg.model.std) == ((0.0,) * 3, (1.0,) * 3)
        for profile in ("smoke", "mini"):  # stand-ins: the profile as is
            assert table_config("table4", profile, key).to_dict() == make_config(profile).to_dict()
    with pytest.raises(ConfigError, match="unknown Table 4 backbone"):
        table_config("table4", "paper", "segment-anything")


def test_paper_numbers_of_tables_3_and_4():
    t3 = paper_numbers("janus_lora_table3")
    assert len(t3) == 27 and {r["method"] for r in t3} <= set(METHODS)
    row = next(r for r in t3 if (r["method"], r["dataset"]) == ("janus-lora", "cifar100"))
    assert (row["tasks"], row["acc"], row["acc_std"], row["bwt"]) == (10, 88.68, 0.25, -5.29)
    t4 = paper_numbers("janus_lora_table4")
    assert len(t4) == 18 and {r["method"] for r in t4} == {r["method"] for r in t3}
    row = next(r for r in t4 if (r["method"], r["backbone"]) == ("janus-lora", "sam"))
    assert (row["acc"], row["maa"], row["bwt"]) == (70.22, 77.90, -6.47)


def test_missing_data_is_reported_as_not_run(tmp_path, capsys):
    """Every column without data: reported, nothing run, the whole table still completes."""
    (tmp_path / "data").mkdir()
    kw = dict(profile="mini", data_root=str(tmp_path / "data"))
    benchmarks = list(TABLE3_BENCHMARKS)
    assert run_table("table3", benchmarks, ["finetune"], [0], tmp_path / "out", **kw) == {}
    assert run_table("table4", ["sam"], ["finetune"], [0], tmp_path / "out", **kw) == {}
    text = capsys.readouterr().out
    assert "CIFAR-100: not run (data set 'cifar100': " in text
    assert "ImageNet-100: not run (data set 'mini-imagenet-32'" in text
    assert "DomainNet: not run (data set 'domainnet'" in text
    assert "sam: not run (data set 'mini-imagenet-32'" in text
    assert not (tmp_path / "out").exists()


def test_table4_hub_path_loads_the_named_backbone(tmp_path, monkeypatch, capsys):
    """The paper profile's hub code path with a stand-in for the download: only DINO's
    weights "exist" (a tiny random ViT); SAM's download fails and is reported as not run."""
    asked = []

    def create_model(name, pretrained=False, **kw):
        asked.append((name, pretrained))
        if (name, pretrained) != ("vit_base_patch16_224.dino", True):
            raise RuntimeError(f"no internet: cannot download {name}")
        return VisionTransformer(img_size=32, patch_size=8, embed_dim=48, depth=2,
                                 num_heads=2, num_classes=kw.get("num_classes", 0))

    monkeypatch.setattr(timm, "create_model", create_model)
    cfg = table_config("table4", "paper", "dino", "finetune", 0, overrides=TINY)
    record = run(cfg, tmp_path / "a", progress=False)
    assert asked == [("vit_base_patch16_224.dino", True)]
    assert record["status"] == "complete"
    assert (record["config"]["model"]["source"], record["config"]["model"]["name"]) == (
        "hub", "vit_base_patch16_224.dino")

    table = run_table("table4", ["sam", "dino"], ["finetune"], [0], tmp_path / "b",
                      profile="paper", overrides=TINY)
    assert list(table) == ["dino"] and table["dino"][0]["variant"] == "finetune"
    assert (tmp_path / "b" / "backbones" / "dino" / run_dir(cfg, "")).is_dir()
    text = capsys.readouterr().out
    assert "sam: not run (could not load pretrained weights for " \
           "'vit_base_patch16_224.sam_in1k'" in text
    assert "model.source=checkpoint" in text  # what to do


def test_paper_table_without_tasks_or_spread_in_the_paper_and_best_verdicts():
    rows = [{"method": m, "variant": m, "tasks": 10, "seeds": [0, 1], "acc": a, "acc_std": 1.0,
             "maa": a, "maa_std": 1.0, "bwt": -1.0, "bwt_std": 0.5}
            for m, a in (("finetune", 40.0), ("janus-lora", 50.0))]
    text = paper_table(rows, [r for r in paper_numbers("janus_lora_table4")
                              if r["backbone"] == "dino"], key="variant")
    assert rows[1]["paper_acc"] == 68.20 and rows[1]["paper_acc_std"] is None
    assert "68.20" in text and "50.00 ± 1.00" in text and "68.20 ±" not in text
    lines = best_verdicts(rows, "janus-lora", ["acc", "maa"])
    assert len(lines) == 2 and all(line.split(": ", 1)[1].startswith("holds") for line in lines)
    assert best_verdicts(rows[:1], "janus-lora")[0].startswith("not tested")


def test_table2_runs_seqlora_in_one_epoch_beside_the_control_only_in_mini():
    from janus.experiments.variants import ONE_EPOCH_CONTROL, table2_variants

    methods = ["finetune", "seqlora", "janus-lora", "continual-alternating"]
    smoke = table2_variants("smoke", methods)
    assert [(v.key, v.label, v.overrides) for v in smoke] == [(m, None, ()) for m in methods]
    mini = table2_variants("mini", methods)
    assert [(v.key, v.overrides) for v in mini] == [
        ("finetune", ()), ("seqlora-e1", ONE_EPOCH), ("janus-lora", ()),
        ("continual-alternating-e1", ONE_EPOCH), ("finetune-e1", ONE_EPOCH)]
    assert mini[-1] is ONE_EPOCH_CONTROL and mini[1].method == "seqlora"
    assert [v.key for v in table2_variants("mini", ["finetune"])] == ["finetune"]  # no control


def test_run_variants_prints_the_records_training_time_also_when_reused(tmp_path, capsys):
    from janus.experiments.runner import run_variants
    from janus.experiments.variants import Variant

    small = ["data.num_tasks=2", "train.max_steps_per_task=1"]
    args = ([Variant("Finetune", "finetune")], [0], tmp_path)
    (record,) = run_variants(*args, profile="smoke", overrides=small)
    trained = sum(t["train_seconds"] for t in record["tasks"])
    first = capsys.readouterr().out
    assert first.startswith("Finetune         seed 0: ACC")
    assert f"(trained in {trained:.0f} s)" in first
    run_variants(*args, profile="smoke", overrides=small)  # reused: same line, same time
    assert capsys.readouterr().out == first
