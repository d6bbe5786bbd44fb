"""Frozen timm Vision Transformers: from the hub, a local checkpoint file, or a small config.

Whatever the source, the result is a timm ``VisionTransformer`` with ``num_classes=0`` (its
forward returns the pre-logit feature), every parameter frozen, and LoRA wrappers on the
fused ``qkv`` Linear of every block (:func:`janus.model.lora.inject_lora`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import timm
import torch
from timm.models.vision_transformer import VisionTransformer

from janus.core.config import ModelConfig
from janus.core.errors import ConfigError, WeightsNotFoundError

SOURCES = ("hub", "checkpoint", "config")


def offline_instructions(name: str) -> str:
    return (
        f"To supply the weights offline: on a machine with internet run\n"
        f"  python -c \"import timm, torch; m = timm.create_model('{name}', pretrained=True, "
        f"num_classes=0); torch.save(m.state_dict(), '{name}.pth')\"\n"
        f"copy the file here and run with --set model.source=checkpoint "
        f"--set model.checkpoint=/path/{name}.pth (or fill the Hugging Face cache there and "
        f"set HF_HUB_OFFLINE=1 here)."
    )


def vit_from_config(cfg: ModelConfig) -> VisionTransformer:
    """A randomly initialised ViT of the configured size (no weights needed)."""
    if cfg.img_size % cfg.patch_size:
        raise ConfigError(
            f"model.img_size={cfg.img_size} is not a multiple of model.patch_size={cfg.patch_size}"
        )
    if cfg.embed_dim % cfg.num_heads:
        raise ConfigError(
            f"model.embed_dim={cfg.embed_dim} is not divisible by model.num_heads={cfg.num_heads}"
        )
    return VisionTransformer(
        img_size=cfg.img_size,
        patch_size=cfg.patch_size,
        embed_dim=cfg.embed_dim,
        depth=cfg.depth,
        num_heads=cfg.num_heads,
        num_classes=0,
    )


def vit_from_hub(cfg: ModelConfig) -> VisionTransformer:
    """``timm.create_model(name, pretrained=True)``; any download failure becomes one error."""
    try:
        return timm.create_model(cfg.name, pretrained=True, num_classes=0)
    except RuntimeError as err:
        if "Unknown model" in str(err):
            raise ConfigError(f"timm does not know the model {cfg.name!r}") from err
        raise WeightsNotFoundError(
            f"could not load pretrained weights for {cfg.name!r} from the hub ({err}).\n"
            + offline_instructions(cfg.name)
        ) from err
    except (OSError, ValueError) as err:
        raise WeightsNotFoundError(
            f"could not load pretrained weights for {cfg.name!r} from the hub "
            f"({type(err).__name__}: {err}).\n" + offline_instructions(cfg.name)
        ) from err


PACKAGE_PREFIX = "janus:"


def resolve_checkpoint(path: str) -> Path:
    """A checkpoint path; ``janus:weights/x.pth`` names a file shipped inside the package, so
    that configs (and the run records that store them) are the same on every machine."""
    if path.startswith(PACKAGE_PREFIX):
        return Path(__file__).parents[1] / path[len(PACKAGE_PREFIX) :]
    return Path(path).expanduser()


def checkpoint_sha256(cfg: ModelConfig) -> str | None:
    """SHA-256 of the checkpoint file a ``checkpoint`` source loads (None for other sources),
    so a record names the exact weights behind its numbers."""
    if cfg.source != "checkpoint" or cfg.checkpoint is None:
        return None
    path = resolve_checkpoint(cfg.checkpoint)
    if not path.is_file():
        read_checkpoint(path)  # raises the error that says what to do
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def missing_weights_advice(path: Path) -> str:
    """What to do about a checkpoint file that is missing or unreadable."""
    if Path(__file__).parents[1] / "weights" in path.parents:
        return ("This file ships with the package (janus/weights/): restore it with `git "
                "checkout janus/weights`, or make your own backbone with `janus pretrain --out "
                "DIR` and pass --set model.checkpoint=DIR/weights.pth.")
    return ("Point model.checkpoint at a state dict saved with torch.save (a timm ViT's "
            "state_dict(), or the weights.pth of `janus pretrain`); for a timm hub model see "
            "the offline instructions of the `paper` profile in the README.")


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A state dict, or ``{"vit_kwargs": ..., "state_dict": ...}`` as ``janus pretrain`` saves."""
    if not path.is_file():
        raise WeightsNotFoundError(
            f"checkpoint file {str(path)!r} does not exist (model.checkpoint). "
            + missing_weights_advice(path)
        )
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return {"state_dict": load_file(str(path))}
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, not a checkpoint at all, ...
        raise WeightsNotFoundError(
            f"checkpoint file {str(path)!r} cannot be read ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else 'no detail'}); it may be truncated or "
            f"not a torch checkpoint. " + missing_weights_advice(path)) from None
    if not isinstance(obj, dict):
        raise WeightsNotFoundError(f"{str(path)!r} does not hold a state dict")
    for key in ("state_dict", "model"):
        if key in obj and isinstance(obj[key], dict):
            return {"state_dict": obj[key], "vit_kwargs": obj.get("vit_kwargs")}
    return {"state_dict": obj}


def vit_from_checkpoint(cfg: ModelConfig) -> VisionTransformer:
    """Architecture from the file's ``vit_kwargs`` when present, else ``timm`` ``cfg.name``."""
    if not cfg.checkpoint:
        raise ConfigError("model.source=checkpoint needs model.checkpoint=PATH")
    ckpt = read_checkpoint(resolve_checkpoint(cfg.checkpoint))
    kwargs = ckpt.get("vit_kwargs")
    if kwargs:
        model = VisionTransformer(**{**kwargs, "num_classes": 0})
    else:
        model = timm.create_model(cfg.name, pretrained=False, num_classes=0)
    state = {k: v for k, v in ckpt["state_dict"].items() if not k.startswith("head.")}
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        raise WeightsNotFoundError(
            f"checkpoint {cfg.checkpoint!r} does not fit the architecture "
            f"{'from the file' if kwargs else repr(cfg.name)}: missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}, wrong shape {wrong[:3]}; set model.name to the "
            f"timm model the weights were saved from"
        )
    model.load_state_dict(state)
    return model


def timm_tag(name: str) -> str | None:
    """The exact timm weights ``name`` resolves to, ``architecture.tag`` (a bare architecture
    name means its default tag: ``vit_base_patch16_224`` is ``...augreg2_in21k_ft_in1k``);
    None when timm has no pretrained config of that name (our own backbones)."""
    try:
        pretrained = timm.models.get_pretrained_cfg(name)
    except (RuntimeError, ValueError):
        return None
    return None if pretrained is None else f"{pretrained.architecture}.{pretrained.tag}"


PRETRAINED_FIELDS = ("hf_hub_id", "url", "num_classes", "mean", "std", "input_size",
                     "interpolation", "crop_pct", "license")


def weights_identity(cfg: ModelConfig) -> dict[str, Any]:
    """What a record says about the backbone's weights: their source; for ``hub`` the timm tag
    and its pretrained config (offline: timm's registry); for ``checkpoint`` the file and
    the timm tag ``model.name`` declares for it (the architecture read when the file has no
    ``vit_kwargs``); ``config`` is a random initialisation."""
    identity: dict[str, Any] = {"source": cfg.source}
    if cfg.source == "config":
        return {**identity, "pretrained": False}
    if cfg.source == "checkpoint":
        identity["file"] = cfg.checkpoint
    tag = timm_tag(cfg.name)
    identity["timm_tag"] = tag
    if tag is not None:
        pretrained = timm.models.get_pretrained_cfg(tag).to_dict()
        identity["pretrained_cfg"] = {k: pretrained.get(k) for k in PRETRAINED_FIELDS}
    return identity


def build_vit(cfg: ModelConfig) -> VisionTransformer:
    """The frozen feature extractor named by ``cfg.source``."""
    builders = {"hub": vit_from_hub, "checkpoint": vit_from_checkpoint, "config": vit_from_config}
    if cfg.source not in builders:
        raise ConfigError(f"model.source must be one of {SOURCES}, got {cfg.source!r}")
    model = builders[cfg.source](cfg)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def input_size(model: VisionTransformer) -> int:
    """Side of the square input the model expects."""
    size = model.patch_embed.img_size
    return int(size[0] if isinstance(size, tuple | list) else size)
