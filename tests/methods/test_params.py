"""Typed method parameters (janus/methods/params.py): every method's values are checked for
type and range before anything is built (issue 24, item 3), and `janus list --method` shows
them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from janus.cli import main
from janus.core.config import profile
from janus.core.errors import ConfigError
from janus.core.fields import param
from janus.methods import METHODS, Method, build_method
from janus.methods.params import Params


@dataclass(frozen=True)
class Example(Params):
    flag: bool = param(True, "a switch")
    count: int = param(3, "a count", low=1)
    rate: float = param(0.5, "a rate", low=0, low_open=True, high=1)
    mode: Literal["a", "b"] = param("a", "a choice")
    size: int | None = param(None, "optional", low=2)
    blocks: tuple[int, ...] | None = param(None, "a list", low=0)


@pytest.mark.parametrize("given, message", [
    ({"flag": "no"}, "flag='no' is not bool"),
    ({"flag": 1}, "flag=1 is not bool"),
    ({"count": 2.5}, "count=2.5 is not int"),
    ({"count": True}, "count=True is not int"),
    ({"count": 0}, "count=0 is out of range: it must be >= 1"),
    ({"rate": 0}, "rate=0 is out of range: it must be > 0 and <= 1"),
    ({"rate": 1.5}, "rate=1.5 is out of range"),
    ({"rate": float("nan")}, "rate=nan is not float"),
    ({"rate": "0.1"}, "rate='0.1' is not float"),
    ({"mode": "c"}, "mode='c' is not 'a' | 'b'"),
    ({"size": 1}, "size=1 is out of range"),
    ({"blocks": [0, -1]}, "blocks=[0, -1] is out of range"),
    ({"blocks": [0, 1.5]}, "is not a list of int or None"),
])
def test_a_value_of_the_wrong_type_or_range_is_refused(given, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        Example(**given)


def test_accepted_values_are_kept_as_given_except_lists_become_tuples():
    e = Example(rate=1, size=None, blocks=[0, 2])
    assert e.rate == 1 and isinstance(e.rate, int) and e.blocks == (0, 2)
    assert Example.defaults() == {"flag": True, "count": 3, "rate": 0.5, "mode": "a",
                                  "size": None, "blocks": None}


@pytest.mark.parametrize("method, params, message", [
    ("janus-lora", {"gr": "no"}, "gr='no' is not bool"),
    ("janus-lora", {"k": 2.5}, "k=2.5 is not int"),
    ("janus-lora", {"margin": -1}, "margin=-1 is out of range"),
    ("janus-lora", {"lambda_dml": -5}, "lambda_dml=-5 is out of range"),
    ("janus-lora", {"oe_lr": -1}, "oe_lr=-1 is out of range"),
    ("janus-lora", {"gamma": -1}, "gamma=-1 is out of range"),
    ("janus-lora", {"tau": 0}, "tau=0 is out of range"),
    ("lora-gpm", {"threshold": 1.5}, "threshold=1.5 is out of range"),
    ("lora-drs", {"energy": 2}, "energy=2 is out of range"),
    ("inflora", {"energy": "cubed"}, "energy='cubed' is not"),
    ("l2p", {"top_k": 11}, "top_k=11 exceeds pool_size=10"),
    ("coda-prompt", {"length": 7}, "length=7 must be even"),
    ("dualprompt", {"g_layers": [0, "x"]}, "g_layers="),
    ("seqlora", {"a_steps": 0}, "a_steps=0 is out of range"),
    ("bilora", {"frequencies": 0}, "frequencies=0 is out of range"),
])
def test_every_method_refuses_bad_values_before_building_anything(method, params, message):
    cfg = profile("smoke")
    cfg.method.name, cfg.method.params = method, params
    with pytest.raises(ConfigError) as err:
        build_method(cfg)
    assert f"method {method!r}: " in str(err.value) and message in str(err.value)
    assert f"janus list --method {method}" in str(err.value)


def test_every_methods_defaults_pass_its_own_checks_and_are_documented():
    for name, cls in METHODS.items():
        cfg = profile("smoke")
        cfg.method.name = name
        method = build_method(cfg)
        assert method.params.values() == cls.defaults
        for field, _kind, _default, help_text in cls.params_type.describe():
            assert help_text, f"{name}.{field} has no help"


def test_janus_list_method_prints_fields_defaults_and_help(capsys):
    assert main(["list", "--method", "janus-lora"]) == 0
    out = capsys.readouterr().out
    assert "  margin (float, >= 0; default 0.3)" in out
    assert "  memory ('snapshot' | 'union'; default 'snapshot')" in out
    assert "DML temperature" in out
    assert main(["list", "--method", "nope"]) == 2
    assert "unknown method 'nope'" in capsys.readouterr().err


def test_a_record_stores_the_params_exactly_as_before():
    """The resolved params dict keeps the order and values of the former ``defaults``."""
    root = Path(__file__).resolve().parents[2]
    record = json.loads((root / "results" / "mini" / "mini-imagenet-32-T10" / "inflora" / "seed0"
                         / "record.json").read_text())
    cfg = profile("mini")
    cfg.method.name = "inflora"
    assert json.dumps(build_method(cfg).params.values()) == json.dumps(record["method"]["params"])


def test_a_class_statement_with_name_registers_a_method_with_typed_params(monkeypatch):
    """One file, one registration: ``name=`` and ``params=`` on the class statement."""
    monkeypatch.setattr("janus.methods.base.METHODS", dict(METHODS))
    from janus.methods import base
    from janus.methods.finetune import Finetune

    class Mine(Finetune, name="mine-test", params=Example):
        """Mine: a one-line summary for `janus list`.

        More text that `janus list` does not show."""

    class Shared(Mine):  # no name=: not registered, parameters inherited
        pass

    assert base.METHODS["mine-test"] is Mine and Shared not in base.METHODS.values()
    assert Mine.description == "Mine: a one-line summary for `janus list`"
    assert Mine.defaults == Example.defaults() == Shared.defaults
    cfg = profile("smoke")
    cfg.method.name, cfg.method.params = "mine-test", {"count": 5}
    method = base.build_method(cfg)
    assert isinstance(method, Mine) and method.params.count == 5
    with pytest.raises(ValueError, match="'mine-test' registered twice"):
        class Again(Method, name="mine-test"):
            pass
