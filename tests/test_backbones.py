"""Backbones from a small config, a local checkpoint file, and the hub (offline error)."""

import os
import subprocess
import sys

import pytest
import timm
import torch
from timm.models.vision_transformer import VisionTransformer

from janus.core.config import LoRAConfig, ModelConfig
from janus.core.errors import ConfigError, WeightsNotFoundError
from janus.model.backbones import build_vit
from janus.model.continual import build_model
from janus.model.lora import LoRAQKV

SMALL = dict(img_size=16, patch_size=8, embed_dim=24, depth=2, num_heads=2)


def small_cfg(**kw) -> ModelConfig:
    return ModelConfig(**{"source": "config", **SMALL, **kw})


def test_config_backbone_is_frozen_with_adapters_and_features():
    torch.manual_seed(0)
    model = build_model(small_cfg(), LoRAConfig(rank=2))
    assert all(not p.requires_grad for p in model.vit.parameters())
    assert len(model.adapters) == 2 and all(isinstance(a, LoRAQKV) for a in model.adapters)
    assert model.adapters[0] is model.vit.blocks[0].attn.qkv
    x = torch.randn(3, 3, 16, 16)
    assert model.features(x).shape == (3, 24)
    model.add_head(5)
    model.add_head(5)
    assert model(x).shape == (3, 10)
    assert model.logits(model.features(x), num_heads=1).shape == (3, 5)


def test_checkpoint_with_architecture_round_trip(tmp_path):
    """The format `janus pretrain` writes: ViT kwargs + weights (its class head is dropped)."""
    torch.manual_seed(1)
    ref = VisionTransformer(**SMALL, num_classes=7)
    path = tmp_path / "w.pth"
    torch.save({"vit_kwargs": {**SMALL}, "state_dict": ref.state_dict()}, path)
    vit = build_vit(small_cfg(source="checkpoint", checkpoint=str(path)))
    ref.reset_classifier(0)
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(vit.eval()(x), ref.eval()(x))


def test_checkpoint_of_named_timm_architecture(tmp_path):
    """A plain state dict (as saved from a hub model) loads into ``timm`` ``model.name``."""
    torch.manual_seed(2)
    ref = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0)
    path = tmp_path / "tiny.pth"
    torch.save(ref.state_dict(), path)
    cfg = ModelConfig(source="checkpoint", name="vit_tiny_patch16_224", checkpoint=str(path))
    vit = build_vit(cfg)
    x = torch.randn(1, 3, 224, 224)
    torch.testing.assert_close(vit.eval()(x), ref.eval()(x))


def test_checkpoint_that_does_not_fit_is_rejected(tmp_path):
    other = VisionTransformer(**{**SMALL, "embed_dim": 32}, num_classes=0)
    path = tmp_path / "other.pth"
    torch.save({"state_dict": other.state_dict()}, path)
    cfg = ModelConfig(source="checkpoint", name="vit_tiny_patch16_224", checkpoint=str(path))
    with pytest.raises(WeightsNotFoundError, match="does not fit"):
        build_vit(cfg)


def test_missing_checkpoint_and_bad_sizes_are_clear_errors(tmp_path):
    cfg = small_cfg(source="checkpoint", checkpoint=str(tmp_path / "nope.pth"))
    with pytest.raises(WeightsNotFoundError, match="does not exist.*offline"):
        build_vit(cfg)
    with pytest.raises(ConfigError, match="needs model.checkpoint"):
        build_vit(small_cfg(source="checkpoint"))
    with pytest.raises(ConfigError, match="not a multiple"):
        build_vit(small_cfg(img_size=20))
    with pytest.raises(ConfigError, match="lora.rank=25 is impossible"):
        build_model(small_cfg(), LoRAConfig(rank=25))
    with pytest.raises(ConfigError, match="model.source"):
        build_vit(small_cfg(source="ftp"))


def test_unreachable_hub_gives_one_clear_error():
    """Offline (HF_HUB_OFFLINE=1, read at import time, hence a subprocess)."""
    code = (
        "from janus.model.backbones import build_vit\n"
        "from janus.core.config import ModelConfig\n"
        "build_vit(ModelConfig(source='hub', name='vit_tiny_patch16_224.augreg_in21k'))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode != 0
    assert "WeightsNotFoundError" in proc.stderr
    assert "model.source=checkpoint" in proc.stderr
