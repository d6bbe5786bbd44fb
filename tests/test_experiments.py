"""Notebook building blocks: configs, ablation variants, sweeps, verdicts."""

import pytest

from janus.errors import ConfigError
from janus.experiments import (
    FIG2_VARIANTS,
    FIG6_VARIANTS,
    FIG7_VARIANTS,
    SDLORA_TABLE4_VARIANTS,
    TABLE1_VARIANTS,
    TABLE5_VARIANTS,
    make_config,
    paper_comparison,
    sweep_variants,
    verdict,
)
from janus.methods import build_method
from janus.results import paper_numbers


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
        p = {"oe": False, "gr": False, "dml": False} if v.method == "finetune" else m.params
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


def test_paper_comparison_attaches_the_papers_numbers_and_standard_errors():
    rows = [{"method": "SD-LoRA", "variant": "sd-lora", "tasks": 10, "seeds": [0, 1, 2, 3],
             "acc": 50.0, "acc_std": 2.0, "maa": 60.0, "maa_std": 4.0}]
    text = paper_comparison(rows, "sdlora_table2", key="variant")
    row = rows[0]
    assert row["acc_se"] == pytest.approx(1.0) and row["maa_se"] == pytest.approx(2.0)
    assert (row["paper_acc"], row["paper_acc_se"], row["paper_maa"]) == (77.34, 0.35, 82.04)
    assert "50.00 ± 1.00" in text and "77.34 ± 0.35" in text
    rows[0]["tasks"] = 7  # no such column in the paper
    assert "-" in paper_comparison(rows, "sdlora_table2", key="variant").splitlines()[1]
    assert rows[0]["paper_acc"] is None


def test_table5_and_fig6_variants():
    """Table 5: OE and GPM differ only in the basis (same update rule, no GR, no DML), under
    their own one-epoch labels; Fig. 6: LoRA-GPM with and without GR."""
    oe, gpm = (build_method(make_config("smoke", v.method, params=v.params))
               for v in (TABLE5_VARIANTS["OE"], TABLE5_VARIANTS["GPM"]))
    assert (oe.params["oe"], oe.params["gr"], oe.params["dml"]) == (True, False, False)
    assert (gpm.params["gr"], gpm.params["dml"], gpm.protects) == (False, False, True)
    keys = {r["method"] for r in paper_numbers("janus_lora_table5")}
    assert {v.key for v in TABLE5_VARIANTS.values()} == keys
    assert {r["dataset"] for r in paper_numbers("janus_lora_table5")} == {"imagenet-r", "cifar100"}
    gr = build_method(make_config("smoke", "lora-gpm", params=FIG6_VARIANTS["lora-gpm-gr"].params))
    assert gr.params["gr"] and FIG6_VARIANTS["lora-gpm"].key == "lora-gpm"


def test_fig7_variants_differ_only_by_dml():
    a, b = (build_method(make_config("smoke", v.method, params=v.params)).params
            for v in FIG7_VARIANTS.values())
    assert {k for k in a if a[k] != b[k]} == {"dml"}
