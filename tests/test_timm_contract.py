"""The timm internals janus relies on, checked on the project's tiny ViT (no downloads).

``pyproject.toml`` pins timm to the range these tests passed on; raise the pin only after they
pass on the new version. Each failure names the internal, the janus function that relies on it,
and what to do.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import timm
import torch
import torch.nn.functional as F
from timm.layers import Attention
from timm.models.vision_transformer import Block, VisionTransformer
from torch import nn

from janus.core.config import profile
from janus.methods.prompting import (
    attention_shape,
    block_forward,
    check_vit,
    prefix_attention,
    prompted_forward,
)
from janus.methods.seqlora import unfused_attention
from janus.model.backbones import input_size, timm_tag, vit_from_config
from janus.model.continual import build_model

PIN = re.search(r'"(timm[^"]*)"', (Path(__file__).parents[1] / "pyproject.toml").read_text())[1]
PROMPTING = "janus/methods/prompting.py"


@contextmanager
def relied_on(internal: str, where: str) -> Iterator[None]:
    """Turn any failure inside (assertion, AttributeError, TypeError, ...) into one message
    that names the timm ``internal`` and the janus function ``where`` (``file:function``)."""
    try:
        yield
    except Exception as err:
        function = where.rsplit(":", 1)[-1]
        raise AssertionError(
            f"timm {timm.__version__} changed {internal}; janus relies on it in {where}; pin "
            f"timm to the tested range ({PIN}) or update {function} ({type(err).__name__}: "
            f"{err})"
        ) from err


@pytest.fixture
def vit() -> VisionTransformer:
    """The smoke profile's ViT (32 px, patch 8, width 48, 2 heads, depth 2), random weights."""
    torch.manual_seed(0)
    return vit_from_config(profile("smoke").model).eval()


def images(n: int = 2) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def tokens(vit: VisionTransformer, n: int = 2) -> torch.Tensor:
    """(n, 17, 48) token sequences as the blocks see them."""
    with torch.no_grad():
        return vit._pos_embed(vit.patch_embed(images(n)))


def attentions(vit: VisionTransformer) -> dict[str, Attention]:
    """The ViT's own attention and one with q/k norms and an output norm, non-trivial."""
    torch.manual_seed(2)
    normed = Attention(48, num_heads=2, qkv_bias=True, qk_norm=True, scale_norm=True,
                       norm_layer=nn.LayerNorm).eval()
    for m in normed.modules():
        if isinstance(m, nn.LayerNorm):
            nn.init.normal_(m.weight, 1.0, 0.3), nn.init.normal_(m.bias, 0.0, 0.3)
    return {"plain": vit.blocks[0].attn, "normed": normed}


# attribute path on the ViT -> (where janus reads it, what it must be)
ATTRIBUTES = {
    "cls_token": (f"{PROMPTING}:check_vit", lambda v: v.shape == (1, 1, 48)),
    "reg_token": (f"{PROMPTING}:prompted_forward", lambda v: v is None or v.shape[-1] == 48),
    "pos_embed": (f"{PROMPTING}:prompted_forward", lambda v: v.shape == (1, 17, 48)),
    "no_embed_class": (f"{PROMPTING}:check_vit", lambda v: v is False),
    "dynamic_img_size": (f"{PROMPTING}:check_vit", lambda v: v is False),
    "attn_pool": (f"{PROMPTING}:check_vit", lambda v: v is None),
    "num_prefix_tokens": (f"{PROMPTING}:prompted_forward", lambda v: v == 1),
    "global_pool": (f"{PROMPTING}:query", lambda v: v == "token"),
    "num_features": ("janus/model/continual.py:ContinualViT.feature_dim", lambda v: v == 48),
    "patch_embed.img_size": ("janus/model/backbones.py:input_size", lambda v: v == (32, 32)),
    "patch_drop": (f"{PROMPTING}:prompted_forward", callable),
    "pos_drop": (f"{PROMPTING}:prompted_forward", callable),
    "norm_pre": (f"{PROMPTING}:prompted_forward", callable),
    "norm": (f"{PROMPTING}:prompted_forward", callable),
    "blocks.0.attn.num_heads": (f"{PROMPTING}:attention_shape", lambda v: v == 2),
    "blocks.0.attn.head_dim": (f"{PROMPTING}:attention_shape", lambda v: v == 24),
    "blocks.0.attn.attn_dim": (f"{PROMPTING}:prefix_attention", lambda v: v == 48),
    "blocks.0.attn.scale": (f"{PROMPTING}:prefix_attention", lambda v: v == 24**-0.5),
    "blocks.0.attn.attn_drop": (f"{PROMPTING}:prefix_attention",
                                lambda v: isinstance(v, nn.Dropout)),
    **{f"blocks.0.attn.{name}": (f"{PROMPTING}:prefix_attention", callable)
       for name in ("q_norm", "k_norm", "norm", "proj", "proj_drop")},
    **{f"blocks.0.{name}": (f"{PROMPTING}:block_forward", callable)
       for name in ("norm1", "ls1", "drop_path1", "norm2", "ls2", "drop_path2", "mlp")},
}


@pytest.mark.parametrize("path", ATTRIBUTES)
def test_attribute(vit: VisionTransformer, path: str) -> None:
    where, ok = ATTRIBUTES[path]
    with relied_on(f"VisionTransformer.{path}", where):
        value = vit
        for name in path.split("."):
            value = value[int(name)] if name.isdigit() else getattr(value, name)
        assert ok(value), f"unexpected value {value!r}"


def test_module_classes(vit: VisionTransformer) -> None:
    with relied_on("the Block / timm.layers.Attention classes of VisionTransformer.blocks",
                   f"{PROMPTING}:check_vit"):
        check_vit(vit)
        assert all(type(b) is Block and type(b.attn) is Attention for b in vit.blocks)
        assert attention_shape(vit) == (2, 24)


def test_pretrained_cfg_names_architecture_and_tag() -> None:
    with relied_on("timm.models.get_pretrained_cfg", "janus/model/backbones.py:timm_tag"):
        assert timm_tag("vit_base_patch16_224").startswith("vit_base_patch16_224.")
        assert timm_tag("no-such-model") is None


def test_qkv_is_one_fused_linear_with_q_k_v_rows(vit: VisionTransformer) -> None:
    """Attention.forward calls ``qkv`` once on its input, whose rows [0, d) are q, [d, 2d) k
    and [2d, 3d) v: zeroing the q rows, or the k rows, makes every query weigh every token
    equally, so the output is ``proj`` of the tokens' mean value."""
    attn, x = vit.blocks[0].attn, tokens(vit)
    with relied_on("Attention.qkv", "janus/model/lora.py:LoRAQKV.rows"), torch.no_grad():
        assert type(attn.qkv) is nn.Linear and attn.qkv.weight.shape == (144, 48)
        seen = []
        handle = attn.qkv.register_forward_hook(lambda m, i, o: seen.append(i[0]))
        attn(x)
        handle.remove()
        assert len(seen) == 1 and torch.equal(seen[0], x), "qkv is not called once on x"
        v = attn.qkv(x)[..., 96:]
        want = attn.proj(v.mean(1, keepdim=True).expand_as(v))
        weight, bias = attn.qkv.weight.clone(), attn.qkv.bias.clone()
        for rows in (slice(0, 48), slice(48, 96)):
            attn.qkv.weight.copy_(weight), attn.qkv.bias.copy_(bias)
            attn.qkv.weight[rows], attn.qkv.bias[rows] = 0, 0
            torch.testing.assert_close(attn(x), want, rtol=0, atol=1e-5)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("kind", ["plain", "normed"])
def test_prefix_attention_equals_attention_forward(
    vit: VisionTransformer, kind: str, fused: bool
) -> None:
    attn, x = attentions(vit)[kind], tokens(vit)
    attn.fused_attn = fused
    empty = torch.zeros(2, 0, 48)
    with relied_on(f"Attention.forward ({kind}, fused_attn={fused})",
                   f"{PROMPTING}:prefix_attention"), torch.no_grad():
        torch.testing.assert_close(prefix_attention(attn, x, None), attn(x), rtol=0, atol=1e-6)
        torch.testing.assert_close(prefix_attention(attn, x, (empty, empty)), attn(x),
                                   rtol=0, atol=1e-6)


def test_fused_attn_can_be_toggled_on_the_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    """The flag (``Final`` in timm) is read per call, and the unfused path has a second
    derivative on the CPU (SeqLoRA's cross-Hessian)."""
    calls = []
    sdpa = F.scaled_dot_product_attention
    monkeypatch.setattr(F, "scaled_dot_product_attention",
                        lambda *a, **k: calls.append(1) or sdpa(*a, **k))
    model = build_model(profile("smoke").model, profile("smoke").lora)
    depth = len(model.vit.blocks)
    with relied_on("Attention.fused_attn", "janus/methods/seqlora.py:unfused_attention"):
        for block in model.vit.blocks:
            block.attn.fused_attn = True
        model.features(images())
        assert len(calls) == depth, "fused_attn = True does not call scaled_dot_product_attention"
        with unfused_attention(model):
            x = images().requires_grad_(True)
            (g,) = torch.autograd.grad(model.features(x).pow(2).sum(), x, create_graph=True)
            assert len(calls) == depth, "fused_attn = False still calls the fused kernel"
            torch.autograd.grad(g.pow(2).sum(), x)
        assert all(b.attn.fused_attn for b in model.vit.blocks)


def test_pos_embed_returns_cls_then_patches_with_positions(vit: VisionTransformer) -> None:
    x = images()
    with relied_on("VisionTransformer._pos_embed", f"{PROMPTING}:prompted_forward"):
        vit.pos_drop = nn.Dropout(1.0).train()  # _pos_embed must apply pos_drop itself
        assert not vit._pos_embed(vit.patch_embed(x)).any()
        vit.pos_drop = nn.Identity()
        with torch.no_grad():
            patches = vit.patch_embed(x)
            got = vit._pos_embed(patches)
        assert patches.shape == (2, 16, 48) and got.shape == (2, 17, 48)
        torch.testing.assert_close(got[:, :1], (vit.cls_token + vit.pos_embed[:, :1]).expand(
            2, -1, -1), rtol=0, atol=0)
        torch.testing.assert_close(got[:, 1:], patches + vit.pos_embed[:, 1:], rtol=0, atol=0)


def test_forward_features_and_head_are_the_sequence_prompted_forward_replays(
    vit: VisionTransformer,
) -> None:
    x = images()
    with relied_on("VisionTransformer.forward_features / forward_head",
                   f"{PROMPTING}:prompted_forward"), torch.no_grad():
        seq = vit.norm_pre(vit.patch_drop(vit._pos_embed(vit.patch_embed(x))))
        for block in vit.blocks:
            torch.testing.assert_close(block_forward(block, seq, (seq[:, :0], seq[:, :0])),
                                       block(seq), rtol=0, atol=1e-6)
            seq = block(seq)
        torch.testing.assert_close(vit.forward_features(x), vit.norm(seq), rtol=0, atol=0)
        pooled = vit.forward_head(vit.norm(seq), pre_logits=True)
        torch.testing.assert_close(pooled, vit.fc_norm(vit.norm(seq)[:, 0]), rtol=0, atol=0)
        torch.testing.assert_close(vit(x), pooled, rtol=0, atol=0)  # num_classes=0
        torch.testing.assert_close(prompted_forward(vit, x)[0], pooled, rtol=0, atol=1e-6)
        assert input_size(vit) == 32
