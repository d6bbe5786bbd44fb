"""`janus pretrain`: augmentation, schedule, resume, and a checkpoint the backbone loads."""

import json

import pytest
import torch

from janus.core.config import ModelConfig
from janus.core.errors import ConfigError
from janus.model.backbones import build_vit
from janus.train.pretrain import PretrainConfig, augment, lr_factor, pretrain, to_input

TINY = {"img_size": 32, "patch_size": 8, "embed_dim": 24, "depth": 1, "num_heads": 2}


def test_augment_is_a_padded_crop_or_its_mirror():
    gen = torch.Generator().manual_seed(0)
    batch = torch.randint(0, 256, (6, 32, 32, 3), dtype=torch.uint8)
    out = augment(batch, pad=4, gen=gen)
    assert out.shape == (6, 3, 32, 32)
    padded = torch.nn.functional.pad(to_input(batch), (4, 4, 4, 4), mode="reflect")
    for i in range(6):
        crops = [padded[i, :, y : y + 32, x : x + 32] for y in range(9) for x in range(9)]
        assert any(torch.equal(out[i], c) or torch.equal(out[i], c.flip(-1)) for c in crops)


def test_lr_warmup_then_cosine():
    assert lr_factor(0, 10, 110) == pytest.approx(0.1)
    assert lr_factor(9, 10, 110) == pytest.approx(1.0)
    assert lr_factor(60, 10, 110) == pytest.approx(0.5)
    assert lr_factor(110, 10, 110) == pytest.approx(0.0)


def test_resumed_pretraining_equals_uninterrupted_and_loads_as_backbone(tmp_path, monkeypatch):
    cfg = PretrainConfig(dataset="synthetic", vit_kwargs=TINY, batch_size=32, epochs=3,
                         warmup_epochs=1, max_batches_per_epoch=3)
    full = pretrain(cfg, tmp_path / "a", progress=False)

    import janus.train.pretrain as module

    calls = {"n": 0}
    real_top1 = module.top1

    def killed_in_epoch_2(*args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("simulated kill")
        return real_top1(*args)

    monkeypatch.setattr(module, "top1", killed_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        pretrain(cfg, tmp_path / "b", progress=False)
    assert len(json.loads((tmp_path / "b" / "record.json").read_text())["epochs"]) == 1
    monkeypatch.setattr(module, "top1", real_top1)
    other = PretrainConfig(**{**cfg.__dict__, "data_root": str(tmp_path), "device": "cpu"})
    with pytest.raises(ConfigError, match="another config"):
        pretrain(PretrainConfig(**{**cfg.__dict__, "lr": 0.5}), tmp_path / "b", progress=False)
    resumed = pretrain(other, tmp_path / "b", progress=False)  # a new machine may differ here

    for key in ("train_loss", "test_top1", "lr_end"):
        assert [e[key] for e in resumed["epochs"]] == [e[key] for e in full["epochs"]]
    a = torch.load(tmp_path / "a" / "weights.pth", weights_only=True)
    b = torch.load(tmp_path / "b" / "weights.pth", weights_only=True)
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert "head.weight" not in a["state_dict"]

    vit = build_vit(ModelConfig(source="checkpoint", img_size=32,
                                checkpoint=str(tmp_path / "a" / "weights.pth")))
    assert vit.num_features == 24
    x = torch.randn(2, 3, 32, 32)
    assert vit.eval()(x).shape == (2, 24)
