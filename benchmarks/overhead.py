"""Per-step training overhead of Janus-LoRA and its switches (or of another set of methods),
as ratios to plain LoRA.

Every variant runs the trainer's own step (``Run.make_step``: method loss, backward, gradient
hook, Adam and schedule step, post-step hook; or the method's own step) on the same random
batch and model shape, in the same process; variants are interleaved round by round so
drifts of the machine hit all of them alike, and the ratio of medians to plain LoRA
(``finetune``) is reported. Every variant is measured in its second task, after one step of
the first on synthetic images: a historical basis and old prototypes exist, so Janus-LoRA's
GR projects and DML has its hinge.

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
from typing import Any

import torch

from janus.core.config import (
    DataConfig,
    LoRAConfig,
    MethodConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
)
from janus.core.results import environment
from janus.methods import TaskContext
from janus.train.step import Step
from janus.train.trainer import Run

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


def build(shape: str, method: str, params: dict[str, Any], device: torch.device,
          batch: int) -> tuple[Step, TaskContext]:
    """The training step of one variant in the second task of a run on synthetic images of
    ``CLASSES`` classes a task (its first task trained for one step), and its context."""
    model_cfg, rank, _ = SHAPES[shape]
    cfg = RunConfig(
        data=DataConfig(num_tasks=2, num_classes=2 * CLASSES, train_per_class=2,
                        test_per_class=1, batch_size=batch, num_workers=0),
        model=model_cfg, lora=LoRAConfig(rank=rank),
        train=TrainConfig(epochs=10**6, device=str(device)),  # bf16 autocast on CUDA (auto)
        method=MethodConfig(name=method, params=params),
    )
    run = Run(cfg, Path("unused"), progress=False)  # nothing is written
    run.start()
    run.train_task(0, max_steps=1)
    ctx, _ = run.begin_task(1)
    return run.make_step(ctx), ctx


def step(train: Step, images: torch.Tensor, targets: torch.Tensor, device: torch.device) -> float:
    """Seconds of one training step (between device synchronisations)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    train(images, targets)
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
    labels = torch.randint(0, CLASSES, (batch,), generator=g)
    variants = VARIANT_SETS[args.variants]
    built = {name: build(args.shape, m, prm, device, batch) for name, (m, prm) in variants.items()}
    targets = (labels + next(iter(built.values()))[1].label_offset).to(device)  # task 2's
    times: dict[str, list[float]] = {name: [] for name in variants}
    for train, _ in built.values():
        for _ in range(args.warmup):
            step(train, images, targets, device)
    for _ in range(args.rounds):
        for name, (train, _) in built.items():
            times[name] += [step(train, images, targets, device) for _ in range(args.steps)]
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
