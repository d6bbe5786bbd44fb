"""Prompt tuning and prefix tuning on the model's frozen timm ViT, shared by the prompt
methods (:mod:`janus.methods.l2p`, :mod:`janus.methods.dualprompt`,
:mod:`janus.methods.coda_prompt`; facts in ``shared/papers/baselines-method-notes.md``, Sec. 2,
"Common to all three"), and their common base :class:`PromptMethod`.

- **Prompt tuning** (L2P): per-sample prompt tokens are inserted at the input right after the
  CLS token, ``[CLS, prompts, patches]``; their positional embedding is a frozen copy of the
  CLS token's.
- **Prefix tuning** (DualPrompt, CODA-Prompt): per-sample key and value prefixes are
  concatenated in front of K and V of chosen blocks' attention; the queries and the sequence
  length do not change.
- **Query** q(x): the final CLS feature of the same frozen ViT with prompts off, no gradient.

:func:`prompted_forward` re-implements timm 1.0's ``VisionTransformer.forward_features`` and
``forward_head(pre_logits=True)``, and :func:`prefix_attention` its ``Attention.forward``
(q/k norms, scale, fused SDPA or the explicit softmax, dropout, output norm and gate, proj),
calling the blocks' own modules: the qkv call still goes through ``block.attn.qkv`` (the
LoRA wrapper). Without prompts the result is ``model.features(images)`` (tested).

All three: the backbone frozen, query q(x) from the prompt-free backbone, CE over the current
task's head (= logits of the other classes masked), the prompt tensors owned by the method
(their state is checkpointed). Choices: ``docs/methods/prompts.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from timm.layers import Attention
from timm.models.vision_transformer import Block, VisionTransformer
from torch import nn

from janus.core.errors import ConfigError
from janus.core.fields import param
from janus.core.precision import in_full_precision
from janus.methods.base import Method, TaskContext
from janus.model.continual import ContinualViT

Prefix = tuple[torch.Tensor, torch.Tensor]
"""Key and value prefixes of one block, each (B, L, heads * head_dim), one row per sample."""


def check_vit(vit: torch.nn.Module) -> None:
    """Raise unless ``vit`` is the timm layout the prompted forward re-implements: a
    ``VisionTransformer`` with a CLS token, a learned positional embedding that covers it,
    fixed image size, no attention pooling, and plain ``Block``/``Attention`` modules."""
    ok = (
        isinstance(vit, VisionTransformer)
        and vit.cls_token is not None
        and vit.pos_embed is not None
        and not vit.no_embed_class
        and not vit.dynamic_img_size
        and vit.attn_pool is None
        and all(isinstance(b, Block) and isinstance(b.attn, Attention) for b in vit.blocks)
    )
    if not ok:
        raise ConfigError(
            "prompt methods need a timm VisionTransformer with a CLS token and a learned "
            "positional embedding over it, fixed image size, no attention pooling and plain "
            "Block/Attention modules"
        )


def attention_shape(vit: VisionTransformer) -> tuple[int, int]:
    """(heads, head_dim) of the ViT's attention, the shape prefixes are split into."""
    attn = vit.blocks[0].attn
    return int(attn.num_heads), int(attn.head_dim)


def prefix_attention(attn: Attention, x: torch.Tensor, prefix: Prefix | None) -> torch.Tensor:
    """timm's ``Attention.forward`` (no mask) with ``prefix`` = (keys, values), each
    (B, L, heads * head_dim), concatenated in front of K and V after the q/k norms (the
    prefixes are keys and values, as in the DualPrompt/CODA code, where timm 0.6 had no
    norms). Output (B, N, dim), the queries' length."""
    B, N, _ = x.shape
    gate = attn.gate(x).sigmoid() if getattr(attn, "gate", None) is not None else None
    qkv = attn.qkv(x).reshape(B, N, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    q, k = attn.q_norm(q), attn.k_norm(k)
    if prefix is not None:
        pk, pv = (
            p.reshape(B, -1, attn.num_heads, attn.head_dim).transpose(1, 2).to(k.dtype)
            for p in prefix
        )
        k, v = torch.cat([pk, k], dim=2), torch.cat([pv, v], dim=2)
    if attn.fused_attn:
        x = F.scaled_dot_product_attention(
            q, k, v, dropout_p=attn.attn_drop.p if attn.training else 0.0
        )
    else:
        q = q * attn.scale
        weights = (q @ k.transpose(-2, -1)).softmax(dim=-1)
        x = attn.attn_drop(weights) @ v
    x = x.transpose(1, 2).reshape(B, N, attn.attn_dim)
    x = attn.norm(x)
    if gate is not None:
        x = x * gate
    return attn.proj_drop(attn.proj(x))


def block_forward(block: Block, x: torch.Tensor, prefix: Prefix | None) -> torch.Tensor:
    """timm's ``Block.forward`` with :func:`prefix_attention`; the block itself without one."""
    if prefix is None:
        return block(x)
    x = x + block.drop_path1(block.ls1(prefix_attention(block.attn, block.norm1(x), prefix)))
    return x + block.drop_path2(block.ls2(block.mlp(block.norm2(x))))


def prompted_forward(
    vit: VisionTransformer,
    images: torch.Tensor,
    tokens: torch.Tensor | None = None,
    prefixes: Mapping[int, Prefix] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``vit`` with prompt ``tokens`` (B, L, dim) inserted after the CLS (and register)
    tokens at the input and key/value ``prefixes`` on the blocks they name.

    Returns the pooled pre-logit feature (``forward_head(pre_logits=True)`` over the tokens
    without the prompt positions: the CLS feature for token pooling) and the final-normed
    outputs at the L prompt positions (B, L, dim; L = 0 without tokens)."""
    prefixes = prefixes or {}
    x = vit.patch_embed(images)
    x = vit._pos_embed(x)
    x = vit.patch_drop(x)
    start, n = vit.num_prefix_tokens, 0 if tokens is None else tokens.shape[1]
    if tokens is not None:
        prompts = vit.pos_drop(tokens.to(x.dtype) + vit.pos_embed[:, :1].detach())
        x = torch.cat([x[:, :start], prompts, x[:, start:]], dim=1)
    x = vit.norm_pre(x)
    for i, block in enumerate(vit.blocks):
        x = block_forward(block, x, prefixes.get(i))
    x = vit.norm(x)
    outputs = x[:, start : start + n]
    if n:
        x = torch.cat([x[:, :start], x[:, start + n :]], dim=1)
    return vit.forward_head(x, pre_logits=True), outputs


@torch.no_grad()
def query(model: ContinualViT, images: torch.Tensor) -> torch.Tensor:
    """q(x): the frozen, prompt-free ViT's final CLS feature (float32, no gradient)."""
    return model.features(images).float()


def take(table: torch.Tensor, idx: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """``table`` indexed by ``idx`` along ``dim``: ``table.movedim(dim, 0)[idx]`` with the
    index dimensions put back at ``dim``, as a one-hot contraction. The backward pass of
    plain advanced indexing (``index_put_`` with accumulation) adds repeated rows in an
    order that depends on thread scheduling on the CPU, so a run that picks the same prompt
    for several samples would not repeat bit for bit; a matrix product does."""
    rows = table.movedim(dim, 0)
    one_hot = F.one_hot(idx, rows.shape[0]).to(rows.dtype)
    out = torch.tensordot(one_hot, rows, dims=1)  # idx.shape + rows.shape[1:]
    return out.movedim(tuple(range(idx.dim())), tuple(range(dim, dim + idx.dim())))


def batch_majority(idx: torch.Tensor, k: int) -> torch.Tensor:
    """Batch-wise prompt selection (the ``batchwise_prompt`` of the L2P and DualPrompt PyTorch
    ports, JH-LEE-KR/l2p-pytorch@f7bc994 ``prompt.py`` lines 71-82, dualprompt-pytorch@7eb457d
    ``prompt.py`` lines 100-110): the ``k`` prompt ids that the per-sample selections ``idx``
    (B, N) pick most often in the batch, most frequent first, given to every sample (B, k).
    Ties go to the smaller id (the ports' ``torch.topk`` leaves their order unspecified); the
    ports' padding of the id list never matters, since each sample picks N >= k distinct
    ids."""
    counts = torch.bincount(idx.flatten())
    order = torch.sort(counts, descending=True, stable=True).indices[:k]
    return order.expand(idx.shape[0], k)


@in_full_precision
def cosine(q: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """(B, M) cosine similarities between queries (B, d) and keys (M, d), float32 under any
    autocast (prompt selection ranks them)."""
    return F.normalize(q.float(), dim=-1) @ F.normalize(keys.float(), dim=-1).T


def clip_grad_param(default: float | None, note: str = "") -> Any:
    """The ``clip_grad`` parameter: the codes' gradient-norm clip over everything trained."""
    return param(default, f"gradient-norm clip; None: no clipping{note}", low=0, low_open=True)


def lr_param(trained: str) -> Any:
    """The ``lr`` parameter: the learning rate of the ``trained`` tensors' group."""
    return param(None, f"{trained} lr; None = train.lr", low=0, low_open=True)


def batchwise_param(selection: str, configs: str) -> Any:
    """The ``batchwise`` parameter, the ports' ``batchwise_prompt``: ``selection`` says what
    every sample gets, ``configs`` in which of the port's configs it is on."""
    return param(False, f"{selection} (the port's batchwise_prompt{configs}); a prediction "
                 "then depends on its batch")


def uniform(*shape: int, device: torch.device) -> nn.Parameter:
    """A parameter drawn from Uniform(-1, 1), the codes' prompt and key initialisation."""
    return nn.Parameter(torch.empty(shape, device=device).uniform_(-1, 1))


def shared_prefix(p: torch.Tensor, batch: int) -> Prefix:
    """(2, L, heads, head_dim) -> the same (keys, values) prefix for every sample."""
    return p[0].flatten(1).expand(batch, -1, -1), p[1].flatten(1).expand(batch, -1, -1)


class PromptMethod(Method):
    """Shared by the three: method-owned prompt tensors (``self.prompts``), their optimizer
    group (own ``lr`` when set), gradient clipping, checkpointed state.

    Subclasses build the tensors and implement :meth:`forward`, which returns the head's
    input and the method's extra loss term."""

    def init_state(self) -> None:
        self.prompts: dict[str, nn.Parameter] = {}

    def setup(self, model: ContinualViT) -> None:
        check_vit(model.vit)
        self.prompts = self.build(model)

    def build(self, model: ContinualViT) -> dict[str, nn.Parameter]:
        raise NotImplementedError

    def forward(
        self, model: ContinualViT, images: torch.Tensor, num_tasks: int, train: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(head input (B, d), extra loss term) for tasks ``0 .. num_tasks - 1``; ``train``:
        as while training task ``num_tasks - 1``."""
        raise NotImplementedError

    def features(self, model: ContinualViT, images: torch.Tensor) -> torch.Tensor:
        return self.forward(model, images, len(model.heads), train=False)[0]

    def loss(
        self, model: ContinualViT, images: torch.Tensor, targets: torch.Tensor, ctx: TaskContext
    ) -> torch.Tensor:
        """CE over the current task's head plus the method's term."""
        feats, extra = self.forward(model, images, ctx.index + 1, train=True)
        return self.head_loss(model, feats, targets, ctx) + extra

    @torch.no_grad()
    def predict(self, model: ContinualViT, images: torch.Tensor, num_tasks: int) -> torch.Tensor:
        feats, _ = self.forward(model, images, num_tasks, train=False)
        return model.logits(feats, num_tasks)

    def parameter_groups(self, model: ContinualViT, ctx: TaskContext) -> list[dict[str, Any]]:
        """The prompt tensors (with ``lr`` when set) and the current head."""
        prompts: dict[str, Any] = {"params": list(self.prompts.values())}
        if self.params.lr is not None:
            prompts["lr"] = self.params.lr
        return [prompts, {"params": list(model.heads[ctx.index].parameters())}]

    def after_backward(self, model: ContinualViT, ctx: TaskContext) -> None:
        """The codes' ``clip_grad_norm_`` over everything trained (prompts and head)."""
        if self.params.clip_grad is not None:
            trained = [p for g in self.parameter_groups(model, ctx) for p in g["params"]]
            nn.utils.clip_grad_norm_(trained, self.params.clip_grad)

    def state_dict(self) -> dict[str, Any]:
        return {"prompts": {k: p.detach().clone() for k, p in self.prompts.items()}}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, p in self.prompts.items():
            p.copy_(state["prompts"][k])

