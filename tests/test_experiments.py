"""Notebook building blocks: configs, ablation variants, sweeps, verdicts."""

import pytest

from janus.errors import ConfigError
from janus.experiments import (
    FIG2_VARIANTS,
    TABLE1_VARIANTS,
    make_config,
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
