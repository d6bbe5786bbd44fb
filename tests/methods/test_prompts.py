"""Prompt methods: the prompted forward against explicit references (dense prefix attention,
the unprompted model, a hand-built prompt sequence), L2P's per-sample top-N selection and
pull term, DualPrompt's forced/argmax E-prompt and unscrambled K/V, CODA's Gram-Schmidt
components, detached old components and alpha; a short run per method."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from janus.core.config import apply_overrides, profile
from janus.core.errors import ConfigError
from janus.methods.base import TaskContext
from janus.methods.coda_prompt import CODAPrompt, coda_weights, orthonormal_extension
from janus.methods.dualprompt import DualPrompt, dualprompt_layers
from janus.methods.l2p import L2P
from janus.methods.prompting import (
    batch_majority,
    prefix_attention,
    prompted_forward,
    query,
    take,
)
from janus.model.continual import build_model
from janus.train.trainer import Run, run


def smoke(*overrides):
    return apply_overrides(profile("smoke"), ["data.num_tasks=3", "data.num_classes=9",
                                              "train.epochs=1", *overrides])


@pytest.fixture
def model():
    """The smoke ViT (width 48, 2 heads) with a non-zero LoRA component on K and V, so that
    a forward that bypassed ``attn.qkv`` would differ."""
    torch.manual_seed(0)
    m = build_model(smoke().model, smoke().lora).eval()
    for comp in m.add_lora_components():
        for c in comp.values():
            torch.nn.init.normal_(c.B, std=0.5)
    return m


def images(n, seed=1):
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def method_on(cls, model, tmp_path, task=0, **params):
    """``cls`` set up on ``model`` (a Run's stream gives the task contexts)."""
    r = Run(smoke(f"method.name={cls.name}"), tmp_path, progress=False)
    m = cls(r.cfg, **params)
    m.setup(model)
    return m, TaskContext(task=r.task(task), stream=r.stream, device=model.device)


# --------------------------------------------------------------------------- prompting


def dense_prefix_attention(attn, x, pk, pv):
    """softmax(q [pk; k]^T / sqrt(hd)) [pv; v] per sample and head, float64, from the dense
    qkv weight (base + LoRA), then proj."""
    W = (attn.qkv.base.weight + attn.qkv.delta_weight()).double()
    qkv = x.double() @ W.T + attn.qkv.base.bias.double()
    q, k, v = qkv.chunk(3, dim=-1)
    H, hd = attn.num_heads, attn.head_dim
    out = torch.zeros_like(q)
    for b in range(len(x)):
        for h in range(H):
            cols = slice(h * hd, (h + 1) * hd)
            keys = torch.cat([pk[b, :, cols].double(), k[b, :, cols]])
            values = torch.cat([pv[b, :, cols].double(), v[b, :, cols]])
            w = torch.softmax(q[b, :, cols] @ keys.T / math.sqrt(hd), dim=-1)
            out[b, :, cols] = w @ values
    return out @ attn.proj.weight.double().T + attn.proj.bias.double()


@pytest.mark.parametrize("fused", [True, False])
def test_prefix_attention_equals_the_dense_reference(model, fused):
    attn = model.vit.blocks[0].attn
    attn.fused_attn = fused
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 7, 48, generator=g)
    pk, pv = torch.randn(3, 4, 48, generator=g), torch.randn(3, 4, 48, generator=g)
    with torch.no_grad():
        got = prefix_attention(attn, x, (pk, pv))
        want = dense_prefix_attention(attn, x, pk, pv)
        assert got.shape == x.shape  # queries and sequence length unchanged
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5)
        empty = torch.zeros(3, 0, 48)
        torch.testing.assert_close(prefix_attention(attn, x, (empty, empty)), attn(x),
                                   rtol=0, atol=1e-6)


@pytest.mark.parametrize("fused", [True, False])
def test_without_prompts_the_output_is_model_features(model, fused):
    for block in model.vit.blocks:
        block.attn.fused_attn = fused
    x = images(4)
    empty = torch.zeros(4, 0, 48)
    with torch.no_grad():
        want = model.features(x)
        feats, outputs = prompted_forward(model.vit, x)
        assert torch.equal(feats, want) and outputs.shape == (4, 0, 48)
        feats, _ = prompted_forward(model.vit, x, prefixes={0: (empty, empty), 1: (empty, empty)})
        torch.testing.assert_close(feats, want, rtol=0, atol=1e-6)
        torch.testing.assert_close(query(model, x), want, rtol=0, atol=0)


def test_prompt_tokens_follow_cls_with_its_position_embedding(model):
    vit, x = model.vit, images(2)
    tokens = torch.randn(2, 3, 48, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        feats, outputs = prompted_forward(vit, x, tokens=tokens)
        z = vit.patch_embed(x) + vit.pos_embed[:, 1:]
        cls = (vit.cls_token + vit.pos_embed[:, :1]).expand(2, -1, -1)
        seq = vit.norm(vit.blocks(torch.cat([cls, tokens + vit.pos_embed[:, :1], z], dim=1)))
        torch.testing.assert_close(feats, seq[:, 0], rtol=0, atol=1e-6)
        torch.testing.assert_close(outputs, seq[:, 1:4], rtol=0, atol=1e-6)
        # prompts equal to the CLS token are indistinguishable from it
        copies = vit.cls_token.expand(2, 3, -1)
        feats, outputs = prompted_forward(vit, x, tokens=copies)
        torch.testing.assert_close(outputs, feats[:, None].expand(-1, 3, -1), rtol=0, atol=1e-5)


@pytest.mark.parametrize("dim", [0, 2])
def test_take_is_indexing_with_a_repeatable_gradient(dim):
    """``take`` equals advanced indexing, and its gradient, summing rows that many samples
    picked, is the same bit for bit on every call (indexing's backward is not on the CPU)."""
    gen = torch.Generator().manual_seed(0)
    table = torch.randn(3, 4, 10, 64, generator=gen).movedim(2, dim).contiguous()
    table.requires_grad_(True)
    idx = torch.randint(0, 10, (256, 5) if dim == 0 else (256,), generator=gen)
    out = take(table, idx, dim)
    assert torch.equal(out, table.movedim(dim, 0)[idx].movedim(
        tuple(range(idx.dim())), tuple(range(dim, dim + idx.dim()))))
    weight = torch.randn(out.shape, generator=gen)
    grads = []
    for _ in range(10):
        table.grad = None
        (take(table, idx, dim) * weight).sum().backward()
        grads.append(table.grad.clone())
    assert all(torch.equal(g, grads[0]) for g in grads)
    index_dims = tuple(range(dim, dim + idx.dim()))
    picked = weight.movedim(index_dims, tuple(range(idx.dim()))).flatten(0, idx.dim() - 1)
    dense = torch.zeros_like(table).movedim(dim, 0)
    for i, w in zip(idx.flatten(), picked, strict=True):  # each pick adds its row's weight
        dense[i] += w
    torch.testing.assert_close(grads[0], dense.movedim(0, dim), rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- L2P


def test_l2p_selects_top_n_keys_per_sample_and_pulls_only_those(model, tmp_path):
    method, _ = method_on(L2P, model, tmp_path, pool_size=6, top_k=2)
    keys = method.prompts["keys"]
    k = keys.detach()
    q = torch.randn(5, 48, generator=torch.Generator().manual_seed(4))
    _, idx = method.select(q)
    for b in range(5):
        cos = [float(F.cosine_similarity(q[b], k[i], dim=0)) for i in range(6)]
        assert set(idx[b].tolist()) == set(np.argsort(cos)[-2:].tolist())
    x = images(3)
    feats, term = method.forward(model, x, 1, train=True)
    qx = query(model, x)
    _, idx = method.select(qx)
    want = -0.1 * sum(float(F.cosine_similarity(qx[b], k[i], dim=0))
                      for b in range(3) for i in idx[b].tolist()) / 3
    assert term.item() == pytest.approx(want, rel=1e-5)
    term.backward()
    selected = set(idx.flatten().tolist())
    assert set(keys.grad.abs().sum(1).nonzero().flatten().tolist()) == selected
    for b in range(3):  # head input: mean over this sample's own 2 x 5 prompt outputs
        tokens = torch.cat([method.prompts["prompts"][i] for i in idx[b].tolist()])[None]
        _, out = prompted_forward(model.vit, x[b : b + 1], tokens=tokens)
        torch.testing.assert_close(feats[b], out[0].mean(0), rtol=1e-5, atol=1e-5)


def port_batchwise(idx: torch.Tensor, top_k: int, pool_size: int) -> torch.Tensor:
    """The ports' batch-wise selection, written out from JH-LEE-KR/l2p-pytorch@f7bc994
    ``prompt.py`` lines 71-82 (dualprompt-pytorch@7eb457d lines 100-110 are the same): the
    sorted unique ids and their counts, padded to ``pool_size`` with the smallest id at count
    0, the ``top_k`` largest counts, their ids for every sample."""
    prompt_id, id_counts = torch.unique(idx, return_counts=True, sorted=True)
    if prompt_id.shape[0] < pool_size:
        pad = pool_size - prompt_id.shape[0]
        prompt_id = torch.cat([prompt_id, torch.full((pad,), int(idx.min()))])
        id_counts = torch.cat([id_counts, torch.zeros(pad, dtype=id_counts.dtype)])
    _, major = torch.topk(id_counts, k=top_k)
    return prompt_id[major].expand(idx.shape[0], -1)


def test_batch_majority_equals_the_ports_selection():
    gen = torch.Generator().manual_seed(0)
    checked = 0
    for _ in range(200):
        pool, k, b = 10, 3, 7
        idx = torch.stack([torch.randperm(pool, generator=gen)[:k] for _ in range(b)])
        counts = torch.bincount(idx.flatten(), minlength=pool).sort(descending=True).values
        if counts[k - 1] == counts[k]:  # a tie at the cut: the port's order is unspecified
            continue
        ours = batch_majority(idx, k)
        assert ours.shape == (b, k) and (ours == ours[0]).all()
        assert set(ours[0].tolist()) == set(port_batchwise(idx, k, pool)[0].tolist())
        checked += 1
    assert checked > 50
    # ties go to the smaller id, most frequent first
    idx = torch.tensor([[3, 1, 0], [1, 3, 2], [4, 1, 2]])
    assert batch_majority(idx, 3)[0].tolist() == [1, 2, 3]


def test_l2p_batchwise_gives_every_sample_the_batchs_prompts(model, tmp_path):
    per_sample, _ = method_on(L2P, model, tmp_path, pool_size=6, top_k=2)
    batchwise, _ = method_on(L2P, model, tmp_path, pool_size=6, top_k=2, batchwise=True)
    batchwise.prompts["keys"].data.copy_(per_sample.prompts["keys"])
    q = torch.randn(9, 48, generator=torch.Generator().manual_seed(4))
    sim, own = per_sample.select(q)
    sim_b, idx = batchwise.select(q)
    torch.testing.assert_close(sim, sim_b)
    assert torch.equal(idx, batch_majority(own, 2)) and (idx == idx[0]).all()
    x = images(3)  # the pull term and the prompts follow the batch's selection
    feats, term = batchwise.forward(model, x, 1, train=True)
    qx = query(model, x)
    _, chosen = batchwise.select(qx)
    k = batchwise.prompts["keys"].detach()
    want = -0.1 * sum(float(F.cosine_similarity(qx[b], k[i], dim=0))
                      for b in range(3) for i in chosen[b].tolist()) / 3
    assert term.item() == pytest.approx(want, rel=1e-5)


def test_dualprompt_batchwise_tests_with_the_batchs_most_frequent_key(model, tmp_path):
    method, _ = method_on(DualPrompt, model, tmp_path, batchwise=True)
    x = images(6)
    sim = F.cosine_similarity(query(model, x)[:, None], method.prompts["keys"][None, :3].detach(),
                              dim=-1)
    top = sim.argmax(dim=1)
    assert len(set(top.tolist())) > 1  # the samples disagree: the vote decides
    majority = int(torch.bincount(top).argmax())
    feats, _ = method.forward(model, x, 3, train=False)
    want, _ = prompted_forward(model.vit, x, prefixes=method.prefixes(torch.full((6,), majority)))
    torch.testing.assert_close(feats, want, rtol=1e-5, atol=1e-5)
    trained, _ = method.forward(model, x, 3, train=True)  # training forces E-prompt t
    forced, _ = prompted_forward(model.vit, x, prefixes=method.prefixes(torch.full((6,), 2)))
    torch.testing.assert_close(trained, forced, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- DualPrompt


def test_dualprompt_layers_and_shapes_follow_the_model(model, tmp_path):
    assert dualprompt_layers(12) == ([0, 1], [2, 3, 4])
    assert dualprompt_layers(2) == ([0], [1]) and dualprompt_layers(4) == ([0, 1], [2, 3])
    method, _ = method_on(DualPrompt, model, tmp_path)
    assert method.prompts["g"].shape == (1, 2, 5, 2, 24)  # heads 2, head_dim 48 / 2
    assert method.prompts["e"].shape == (1, 2, 3, 5, 2, 24)  # one E-prompt per task
    with pytest.raises(ConfigError):
        method_on(DualPrompt, model, tmp_path, g_layers=[0], e_layers=[0, 1])


def test_dualprompt_copies_trains_prompt_t_and_tests_the_top_key(model, tmp_path):
    method, ctx = method_on(DualPrompt, model, tmp_path, task=1)
    e, keys = method.prompts["e"], method.prompts["keys"]
    method.before_task(model, ctx)
    assert torch.equal(e[:, :, 1], e[:, :, 0]) and not torch.equal(keys[1], keys[0])
    x = images(2)
    q = query(model, x)
    with torch.no_grad():
        e[:, :, 1] += 1.0
        keys[0] = q[0] - q[1]  # sample 0 prefers key 0, sample 1 key 1
        keys[1] = q[1] - q[0]
    k = keys.detach()
    chosen = [int(np.argmax([float(F.cosine_similarity(q[b], k[i], dim=0)) for i in (0, 1)]))
              for b in (0, 1)]
    assert chosen == [0, 1]
    with torch.no_grad():
        feats, _ = method.forward(model, x, 2, train=False)
        for b in (0, 1):  # each sample alone: the batch does not mix K/V halves of samples
            alone, _ = method.forward(model, x[b : b + 1], 2, train=False)
            torch.testing.assert_close(feats[b], alone[0], rtol=1e-5, atol=1e-5)
            ref, _ = prompted_forward(model.vit, x[b : b + 1],
                                      prefixes=method.prefixes(torch.tensor([b])))
            torch.testing.assert_close(feats[b], ref[0], rtol=1e-5, atol=1e-5)
        prefixes = method.prefixes(torch.tensor([0, 1]))
        for b in (0, 1):
            torch.testing.assert_close(prefixes[1][0][b], e[0, 0, b].reshape(5, 48))  # K half
            torch.testing.assert_close(prefixes[1][1][b], e[0, 1, b].reshape(5, 48))  # V half
            torch.testing.assert_close(prefixes[0][1][b], method.prompts["g"][0, 1].reshape(5, 48))
        trained, _ = method.forward(model, x, 2, train=True)  # E-prompt 1 for both
        forced, _ = prompted_forward(model.vit, x, prefixes=method.prefixes(torch.tensor([1, 1])))
        torch.testing.assert_close(trained, forced, rtol=0, atol=1e-6)
        assert not torch.allclose(trained[0], feats[0])
    _, term = method.forward(model, x, 2, train=True)
    term.backward()
    cosines = F.cosine_similarity(q.double(), k[1][None].double(), dim=1)
    # the two cosines are O(1) with opposite signs: their mean is ~1e-4, so compare it to
    # float32 precision on the cosines, not relative to the cancelled mean
    assert term.item() == pytest.approx(-float(cosines.mean()), abs=1e-6)
    assert cosines.abs().min() > 0.1
    assert keys.grad[0].abs().sum() == 0 and keys.grad[1].abs().sum() > 0


# --------------------------------------------------------------------------- CODA-Prompt


def test_orthonormal_extension_is_orthogonal_to_non_orthogonal_old_rows():
    old = torch.randn(5, 12, generator=torch.Generator().manual_seed(5))
    new = orthonormal_extension(old, 4)
    torch.testing.assert_close(new @ new.T, torch.eye(4), rtol=0, atol=1e-6)
    torch.testing.assert_close(new @ old.T, torch.zeros(4, 5), rtol=0, atol=1e-5)
    with pytest.raises(ConfigError):
        orthonormal_extension(old, 8)


def test_coda_components_alpha_and_detached_past(model, tmp_path):
    method, ctx0 = method_on(CODAPrompt, model, tmp_path, mu=0.1)
    assert method.per_task == 16 and method.layers == [0, 1]  # min(100, 48) // 3 tasks
    method.before_task(model, ctx0)
    with torch.no_grad():  # "training": task 0's components no longer orthonormal
        for x in method.prompts.values():
            x[:, :16] += 0.3 * torch.randn_like(x[:, :16])
    _, ctx1 = method_on(CODAPrompt, model, tmp_path, task=1)
    method.before_task(model, ctx1)
    for x in method.prompts.values():
        for layer in x.flatten(2):
            new, old = layer[16:32], layer[:16]
            torch.testing.assert_close(new @ new.T, torch.eye(16), rtol=0, atol=1e-5)
            torch.testing.assert_close(new @ old.T, torch.zeros(16, 16), rtol=0, atol=1e-5)
            assert layer[32:].abs().sum() == 0  # later tasks' components untouched
    P, K, A = (method.prompts[k] for k in ("P", "K", "A"))
    x = images(3)
    q = query(model, x)
    with torch.no_grad():
        alpha = coda_weights(q, A[0, :32], K[0, :32])
        for b in range(3):
            for m in (0, 17, 31):
                want = F.cosine_similarity(q[b] * A[0, m], K[0, m], dim=0)
                assert float(alpha[b, m]) == pytest.approx(float(want), rel=1e-5, abs=1e-6)
        prefixes, _ = method.prefixes(q, 2, train=False)
        p = sum(alpha[:, m, None, None] * P[0, m] for m in range(32))
        torch.testing.assert_close(prefixes[0][0], p[:, :4])
        torch.testing.assert_close(prefixes[0][1], p[:, 4:])
    feats, term = method.forward(model, x, 2, train=True)
    (feats.square().sum() + term).backward()
    assert term.item() > 0
    for t in (P, K, A):
        norms = t.grad.flatten(2).abs().sum(-1)  # (layers, M)
        assert (norms[:, :16] == 0).all() and (norms[:, 16:32] > 0).all()
        assert (norms[:, 32:] == 0).all()


# --------------------------------------------------------------------------- runs


def test_options_lr_group_and_clipping(model, tmp_path):
    method, ctx = method_on(L2P, model, tmp_path, lr=0.015)
    model.add_head(3)
    groups = method.parameter_groups(model, ctx)
    assert groups[0]["lr"] == 0.015 and "lr" not in groups[1]
    feats, term = method.forward(model, images(4), 1, train=True)
    (1e3 * model.heads[0](feats).sum() + term).backward()
    method.after_backward(model, ctx)
    norm = torch.cat([p.grad.flatten() for g in groups for p in g["params"]]).norm()
    assert float(norm) == pytest.approx(1.0, rel=1e-4)
    with pytest.raises(ConfigError):
        L2P(smoke(), top_k=11)


@pytest.mark.parametrize("cls", [L2P, DualPrompt, CODAPrompt])
def test_three_task_smoke_run(tmp_path, cls):
    record = run(smoke(f"method.name={cls.name}"), tmp_path, force=True, progress=False)
    assert np.isfinite(list(record["metrics"].values())).all()
    assert all(np.isfinite(t["final_loss"]) for t in record["tasks"])
