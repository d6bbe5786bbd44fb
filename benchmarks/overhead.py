"""Per-step training overhead of Janus-LoRA and its switches (or of another set of methods),
as ratios to plain LoRA.

Every variant runs the trainer's step (method loss, backward, gradient hook, Adam step,
post-step hook) on the same random batch and model shape, in the same process; variants are
interleaved round by round so drifts of the machine hit all of them alike, and the ratio of
medians to plain LoRA (``finetune``) is reported. The Janus variants are measured as in a
later task: a historical basis and old prototypes exist, so GR projects and DML has its hinge.

    python benchmarks/overhead.py --shape small            # our mini ViT, batch 128
    python benchmarks/overhead.py --shape vit-b16 --batch 16
    python benchmarks/overhead.py --shape vit-b16 --batch 128 --device cuda
    python benchmarks/overhead.py --variants seqlora --rounds 3 --steps 1 --warmup 1

Methods that own their step (SeqLoRA's bilevel iterations) run their ``train_step``.
Writes ``benchmarks/results/<shape>-<device>-b<batch>[-<set>].json`` and prints a markdown table.
Random weights are used (speed does not depend on them).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn.functional as F

from janus.core import geometry as geo
from janus.core.config import LoRAConfig, ModelConfig, RunConfig
from janus.core.precision import autocast, resolve_amp
from janus.core.results import environment
from janus.methods import build_method
from janus.model.continual import build_model

SHAPES = {
    "small": (ModelConfig(source="config", img_size=32, patch_size=8, embed_dim=192, depth=6,
                          num_heads=3), 3, 128),
    "vit-b16": (ModelConfig(source="config", img_size=224, patch_size=16, embed_dim=768,
                            depth=12, num_heads=12), 10, 128),
}
"""shape -> (model, LoRA rank, default batch)."""

BASELINE = "LoRA (finetune)"
JANUS_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    BASELINE: ("finetune", {}),
    "Janus OE+GR+DML": ("janus-lora", {}),
    "OE only": ("janus-lora", {"gr": False, "dml": False}),
    "GR only": ("janus-lora", {"oe": False, "dml": False}),
    "OE+GR": ("janus-lora", {"dml": False}),
    "DML only": ("janus-lora", {"oe": False, "gr": False}),
    "OE+GR exact-safe": ("janus-lora", {"dml": False, "exact_safe": True}),
}
SEQLORA_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    BASELINE: ("finetune", {}),
    "SeqLoRA (K=3, 2+2 inner steps)": ("seqlora", {}),
    "Continual Alternating": ("continual-alternating", {}),
}
VARIANT_SETS = {"janus": JANUS_VARIANTS, "seqlora": SEQLORA_VARIANTS}
CLASSES = 10


def build(shape: str, method: str, params: dict[str, Any], device: torch.device):
    model_cfg, rank, _ = SHAPES[shape]
    cfg = RunConfig(model=model_cfg, lora=LoRAConfig(rank=rank))
    cfg.method.name, cfg.method.params = method, params
    torch.manual_seed(0)
    model = build_model(model_cfg, cfg.lora).to(device)
    m = build_method(cfg)
    m.setup(model)
    model.add_head(CLASSES)
    if hasattr(m, "history"):  # a later task: a protected basis and old prototypes exist
        m.history = [geo.qr_retraction(torch.randn_like(v)) for v in m.online]
        m.old_prototypes = F.normalize(torch.randn(50, model.feature_dim, device=device), dim=-1)
    amp = resolve_amp(cfg.train.amp, device)  # bf16 on CUDA, as the trainer
    ctx = SimpleNamespace(index=0, label_offset=0, step=0, total_steps=0,
                          task=SimpleNamespace(labels=range(CLASSES)),
                          autocast=lambda: autocast(amp, device))
    m.before_task(model, ctx)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    return model, m, opt, ctx


def step(model, method, opt, ctx, images, targets, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    if method.owns_step:
        method.train_step(model, images, targets, ctx)
    else:
        with ctx.autocast():
            loss = method.loss(model, images, targets, ctx)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        method.after_backward(model, ctx)
        opt.step()
        method.after_step(model, ctx)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", choices=sorted(SHAPES), default="small")
    p.add_argument("--batch", type=int, help="batch size (default: 128)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--variants", choices=sorted(VARIANT_SETS), default="janus",
                   help="janus: Janus-LoRA's switches; seqlora: SeqLoRA and Continual Alternating")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=5, help="timed steps per variant and round")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = p.parse_args(argv)
    device = torch.device(args.device)
    model_cfg, rank, default_batch = SHAPES[args.shape]
    batch = args.batch or default_batch
    g = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, model_cfg.img_size, model_cfg.img_size, generator=g).to(device)
    targets = torch.randint(0, CLASSES, (batch,), generator=g).to(device)
    variants = VARIANT_SETS[args.variants]
    built = {name: build(args.shape, m, prm, device) for name, (m, prm) in variants.items()}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for b in built.values():
        for _ in range(args.warmup):
            step(*b, images, targets, device)
    for _ in range(args.rounds):
        for name, b in built.items():
            times[name] += [step(*b, images, targets, device) for _ in range(args.steps)]
    base = statistics.median(times[BASELINE])
    rows = [
        {"variant": name, "method": variants[name][0], "params": variants[name][1],
         "median_s": statistics.median(t), "min_s": min(t), "ratio": statistics.median(t) / base,
         "images_per_s": batch / statistics.median(t)}
        for name, t in times.items()
    ]
    record = {
        "shape": args.shape, "model": model_cfg.__dict__, "rank": rank, "batch": batch,
        "device": str(device), "variants": args.variants, "rounds": args.rounds,
        "steps": args.steps,
        "environment": environment(str(device)), "rows": rows,
    }
    suffix = "" if args.variants == "janus" else f"-{args.variants}"
    out = Path(args.out) / f"{args.shape}-{device.type}-b{batch}{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1, default=str) + "\n")
    print(f"{args.shape}, batch {batch}, {device}, {args.rounds}x{args.steps} timed steps each")
    print("| variant | median step (ms) | images/s | ratio to LoRA |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['variant']} | {1e3 * r['median_s']:.1f} | {r['images_per_s']:.0f} | "
              f"{r['ratio']:.3f} |")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
