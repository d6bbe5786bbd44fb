"""Profiles, dotted overrides and round trips of the run config."""

import json

import pytest

from janus.core.config import RunConfig, apply_overrides, profile
from janus.core.errors import ConfigError


def test_overrides_set_nested_fields_and_method_params():
    cfg = apply_overrides(
        profile("smoke"),
        ["train.epochs=3", "lora.targets=['q','v']", "method.params.k=25", "data.root=none"],
    )
    assert cfg.train.epochs == 3
    assert cfg.lora.targets == ("q", "v")
    assert cfg.method.params == {"k": 25}
    assert cfg.data.root is None


def test_unknown_fields_and_profiles_are_clear_errors():
    with pytest.raises(ConfigError, match="unknown config field 'train.epoch'"):
        apply_overrides(profile("smoke"), ["train.epoch=3"])
    with pytest.raises(ConfigError, match="section.field=value"):
        apply_overrides(profile("smoke"), ["epochs"])
    with pytest.raises(ConfigError, match="unknown profile 'nope'"):
        profile("nope")


def test_json_round_trip():
    cfg = profile("paper")
    again = RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
