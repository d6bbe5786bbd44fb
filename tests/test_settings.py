"""Typed run settings (issue 36 item 1): every RunConfig field has a type, a range or a set of
choices and a help text; a wrong value is one ``janus: error`` line naming the field, the value
and what is allowed, before anything is loaded; ``janus list --config`` prints them all."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from janus.cli import main
from janus.core.config import (
    SECTIONS,
    RunConfig,
    apply_overrides,
    check_settings,
    describe_settings,
    profile,
    setting_problems,
)
from janus.core.errors import ConfigError


def every_field() -> list[tuple[str, typing.Any]]:
    """(dotted name, type) of every setting of a RunConfig."""
    out = []
    for name, tp in typing.get_type_hints(RunConfig).items():
        if name in SECTIONS:
            out += [(f"{name}.{n}", t) for n, t in typing.get_type_hints(tp).items()]
        else:
            out.append((name, tp))
    return out


class Odd:
    """A value of no type any setting takes."""

    def __repr__(self) -> str:
        return "<odd>"


@pytest.mark.parametrize("key", [k for k, _ in every_field()])
def test_every_setting_refuses_a_value_of_the_wrong_type_by_name(key):
    cfg = profile("smoke")
    section, _, name = key.rpartition(".")
    setattr(getattr(cfg, section) if section else cfg, name, Odd())
    problems = setting_problems(cfg)
    assert len(problems) == 1 and problems[0].startswith(f"{key}=<odd> is not "), problems


@pytest.mark.parametrize("name", ["smoke", "mini", "paper"])
def test_the_profiles_are_valid_settings(name):
    check_settings(profile(name))


@pytest.mark.parametrize("override, message", [
    ("data.batch_size=True", "data.batch_size=True is not int"),
    ("data.train_per_class=0", "data.train_per_class=0 is out of range: it must be >= 1"),
    ("data.order_seed=-1", "data.order_seed=-1 is out of range: it must be >= 0"),
    ("data.num_classes=2.5", "data.num_classes=2.5 is not int or None"),
    ("data.class_order=random", "data.class_order='random' is not allowed: it must be sorted,"),
    ("data.pipeline=gpu", "data.pipeline='gpu' is not 'auto' | 'pil' | 'device'"),
    ("lora.rank=abc", "lora.rank='abc' is not int"),
    ("lora.scale=nan", "lora.scale='nan' is not float"),
    ("lora.targets=['x']", "lora.targets=('x',) is not a list of 'q' | 'k' | 'v'"),
    ("model.mean=[0.5,0.5]", "model.mean=(0.5, 0.5) is not a list of 3 float"),
    ("model.std=[0,0,0]", "model.std=(0, 0, 0) is out of range: it must be > 0"),
    ("model.num_heads=0", "model.num_heads=0 is out of range: it must be >= 1"),
    ("train.betas=[1.5,0.9]", "train.betas=(1.5, 0.9) is out of range: it must be >= 0 and < 1"),
    ("train.weight_decay=-1", "train.weight_decay=-1 is out of range: it must be >= 0"),
    ("train.optimizer=foo", "train.optimizer='foo' is not 'adam' | 'sgd'"),
    ("train.device=foo", "train.device='foo' is not allowed: it must be auto, cpu, cuda, cuda:N"),
    ("train.device=1", "train.device=1 is not str"),
    ("method.params=5", "method.params=5 is not a mapping"),
    ("method.label=../../x", "method.label='../../x' is not allowed: it must be a folder name"),
])
def test_a_wrong_setting_is_one_error_line_before_anything_loads(override, message, tmp_path,
                                                                 capsys):
    assert main(["run", "--set", override, "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"janus: error: {message}"), err
    assert not any(tmp_path.iterdir())  # no folder, no lock: nothing was started


def test_several_wrong_settings_are_a_line_each(tmp_path, capsys):
    assert main(["run", "--set", "lora.rank=0", "--set", "train.momentum=abc",
                 "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["janus: error: lora.rank=0 is out of range: it must be >= 1",
                   "janus: error: train.momentum='abc' is not float"]


@pytest.mark.parametrize("override, message", [
    ("data=5", "data is a section, not a setting"),
    ("train=None", "train is a section, not a setting"),
    ("profile=paper", "profile is chosen with --profile"),
])
def test_sections_and_the_profile_cannot_be_set(override, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(profile("smoke"), [override])


def test_list_config_prints_every_setting_with_type_default_and_help(capsys):
    assert main(["list", "--config"]) == 0
    out = capsys.readouterr().out
    rows = describe_settings()
    assert [r[0] for r in rows] == [k for k, _ in every_field()]
    assert all(r[3] for r in rows), [r[0] for r in rows if not r[3]]  # every one has help
    assert "  train.betas (a list of 2 float, >= 0 and < 1; default (0.9, 0.999))" in out
    assert "  data.pipeline ('auto' | 'pil' | 'device'; default 'auto')" in out
    assert len(dataclasses.fields(RunConfig)) == 2 + len(SECTIONS)
