"""The GPU acceptance check: one command that proves the `paper` profile's path on a GPU.

On stand-in photographs (``janus.data.standins``, an ImageNet-R-shaped tree) through the real
loaders, cache and trainer, in bf16 autocast (``train.amp=bf16``):

(a) ``methods``: every registered method at the `paper` shapes (randomly initialised ViT-B/16
    through ``model.source=config``, 224 px, 12 heads, LoRA rank 10 on K and V), 2 tasks x
    ``--steps`` steps; each run writes its record, which must be complete with finite losses;
(b) ``throughput``: training images/s of finetune and Janus-LoRA (task 2, so GR projects and
    DML has prototypes) at ViT-B/16, batch ``--batch``, eager and ``train.compile``, with
    deterministic kernels and, eager, without them; the step-time ratio Janus-LoRA / finetune;
(c) peak GPU memory per method run and per throughput row (CUDA only);
(d) ``determinism``: Janus-LoRA twice with one seed gives identical accuracy matrices and
    losses, and a run stopped after task 1 and resumed (a new ``Run`` on the folder) equals the
    uninterrupted one.

    python benchmarks/gpu_check.py                        # CUDA: at most 8 minutes on one H100
    python benchmarks/gpu_check.py --device cpu --quick   # the same checks, scaled down (CI)

``--quick``: (a) at the paper shapes with batch 2, 2 steps and 2 training images per class;
(b) and (d) on a small ViT (width 64, depth 2) at 224 px. Writes
``benchmarks/results/gpu-check-<device>[-quick].json`` and ``.md`` (the table for
``benchmarks/README.md``); the last line reads ``gpu check: PASS`` or ``gpu check: FAIL (...)``.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from janus.core.config import RunConfig, apply_overrides, profile
from janus.core.results import environment
from janus.data.standins import stand_in_photos
from janus.methods import METHODS
from janus.train.trainer import Observer, Run, run

SMALL_VIT = ("model.embed_dim=64", "model.depth=2", "model.num_heads=2", "lora.rank=4")


class StepClock(Observer):
    """Times every training step (after a device synchronisation)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.times: list[float] = []

    def before_task(self, run: Run, ctx: Any) -> None:
        self.sync()
        self.times = [time.perf_counter()]

    def after_step(self, run: Run, ctx: Any) -> None:
        self.sync()
        self.times.append(time.perf_counter())

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()


def config(args: argparse.Namespace, root: Path, method: str, *extra: str,
           small: bool = False) -> RunConfig:
    """The `paper` profile on the stand-ins, 2 tasks, bf16 (``small``: :data:`SMALL_VIT`)."""
    per_class = ("data.train_per_class=2", "data.test_per_class=1") if args.quick else ()
    return apply_overrides(profile("paper"), [
        f"data.root={str(root)!r}", f"data.cache_dir={str(root / 'cache')!r}",
        "model.source=config", "data.num_tasks=2", f"data.batch_size={args.batch}",
        f"data.eval_batch_size={2 * args.batch}", f"train.max_steps_per_task={args.steps}",
        f"train.device={args.device}", "train.amp=bf16", f"method.name={method}",
        *per_class, *(SMALL_VIT if small else ()), *extra,
    ])


def peak_memory(device: torch.device) -> float | None:
    """GiB allocated at the peak since the last reset (None off CUDA)."""
    return torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def check_methods(args: argparse.Namespace, root: Path, device: torch.device,
                  keep: Callable[[list[dict]], None]) -> list[dict]:
    """(a) + (c): every registered method, 2 tasks, complete records with finite losses;
    ``keep(rows)`` after each method."""
    rows = []
    for method in sorted(METHODS):
        reset_peak(device)
        start = time.perf_counter()
        row: dict[str, Any] = {"method": method}
        try:
            record = run(config(args, root, method), root / "runs", progress=False)
            losses = [t["final_loss"] for t in record["tasks"] if t["final_loss"] is not None]
            row.update(status=record["status"], amp=record["numerics"]["amp"],
                       tasks=len(record["tasks"]), final_losses=losses,
                       finite=all(math.isfinite(x) for x in losses),
                       accuracy=record["accuracy_matrix"][-1][: len(record["tasks"])])
        except Exception as err:  # one method's failure must not hide the others'
            row.update(status="error", error=f"{type(err).__name__}: {err}"[:500], finite=False)
        row.update(seconds=time.perf_counter() - start, peak_memory_gib=peak_memory(device))
        rows.append(row)
        keep(rows)
        print(f"(a) {method:24s} {row['status']:9s} {row['seconds']:6.1f} s", flush=True)
    return rows


def measure(cfg: RunConfig, root: Path, warmup: int, timed: int) -> dict[str, Any]:
    """Images/s of task 2's steps after ``warmup`` steps (task 1: 2 steps first)."""
    clock = StepClock(torch.device(cfg.train.device))
    job = Run(cfg, root / "throughput", progress=False, observers=[clock])
    job.start()
    cfg.train.max_steps_per_task = 2
    job.train_tasks(1, save=False)
    cfg.train.max_steps_per_task = warmup + timed
    reset_peak(job.device)
    job.train_tasks(2, save=False)
    seconds = clock.times[-1] - clock.times[warmup]
    steps = len(clock.times) - 1 - warmup
    return {"images_per_second": steps * cfg.data.batch_size / seconds,
            "step_ms": 1000 * seconds / steps, "timed_steps": steps,
            "warmup_seconds": clock.times[warmup] - clock.times[0],
            "peak_memory_gib": peak_memory(job.device)}


def throughput(args: argparse.Namespace, root: Path) -> list[dict[str, Any]]:
    """(b) + (c): finetune and Janus-LoRA, eager / compiled, deterministic or not."""
    settings = [("eager", False, True), ("compile", True, True), ("eager", False, False)]
    rows = []
    for method in ("finetune", "janus-lora"):
        for mode, compiled, deterministic in settings:
            if compiled and not args.compile:
                continue
            cfg = config(args, root, method, f"train.compile={compiled}",
                         f"train.deterministic={deterministic}", small=args.quick)
            row = {"method": method, "mode": mode, "deterministic": deterministic,
                   "batch": args.batch,
                   **measure(cfg, root, args.warmup + (args.compile_warmup if compiled else 0),
                             args.timed)}
            rows.append(row)
            print(f"(b) {method:10s} {mode:7s} deterministic={deterministic!s:5s} "
                  f"{row['images_per_second']:8.1f} images/s", flush=True)
    for row in rows:
        base = next(r for r in rows if r["method"] == "finetune" and r["mode"] == row["mode"]
                    and r["deterministic"] == row["deterministic"])
        row["step_time_ratio"] = row["step_ms"] / base["step_ms"]
    return rows


def determinism(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """(d): the same seed twice, and a run stopped after task 1 and resumed."""
    steps = args.timed

    def cfg() -> RunConfig:
        c = config(args, root, "janus-lora", small=args.quick)
        c.train.max_steps_per_task = steps
        return c

    first = run(cfg(), root / "det-a", progress=False)
    second = run(cfg(), root / "det-b", progress=False)
    stopped = Run(cfg(), root / "det-c" / "run", progress=False)
    stopped.start()
    stopped.train_tasks(1)  # the checkpoint a killed process leaves after task 1
    del stopped
    resumed = Run(cfg(), root / "det-c" / "run", progress=False).execute(resume=True)

    def same(a: dict, b: dict) -> bool:
        return (a["accuracy_matrix"] == b["accuracy_matrix"]
                and [t["final_loss"] for t in a["tasks"]] == [t["final_loss"] for t in b["tasks"]])

    return {"same_seed_twice_identical": same(first, second),
            "resumed_equals_uninterrupted": same(first, resumed),
            "accuracy_matrix": first["accuracy_matrix"],
            "final_losses": [t["final_loss"] for t in first["tasks"]]}


def verdict(result: dict[str, Any]) -> list[str]:
    """What failed (empty: the check passes)."""
    bad = [f"{r['method']} {r['status']}" for r in result["methods"]
           if r["status"] != "complete" or not r["finite"]]
    det = result["determinism"]
    bad += [k for k in ("same_seed_twice_identical", "resumed_equals_uninterrupted") if not det[k]]
    return bad


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def markdown(result: dict[str, Any]) -> str:
    """The tables for ``benchmarks/README.md``."""
    lines = [f"Device: {result['device_name']}; {result['mode']}.", "",
             "| method | status | tasks | final losses | seconds | peak GiB |",
             "|---|---|---:|---|---:|---:|"]
    for r in result["methods"]:
        losses = ", ".join(f"{x:.3f}" for x in r.get("final_losses", []))
        lines.append(f"| {r['method']} | {r['status']} | {r.get('tasks', '-')} | {losses} | "
                     f"{r['seconds']:.1f} | {fmt(r['peak_memory_gib'], '.2f')} |")
    lines += ["", "| method | mode | deterministic | batch | images/s | step ms | ratio to "
              "finetune | peak GiB |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in result["throughput"]:
        lines.append(f"| {r['method']} | {r['mode']} | {r['deterministic']} | {r['batch']} | "
                     f"{r['images_per_second']:.1f} | {r['step_ms']:.1f} | "
                     f"{r['step_time_ratio']:.3f} | {fmt(r['peak_memory_gib'], '.2f')} |")
    det = result["determinism"]
    lines += ["", f"Determinism (Janus-LoRA, 2 tasks): same seed twice identical: "
              f"{det['same_seed_twice_identical']}; stopped after task 1 and resumed equals "
              f"uninterrupted: {det['resumed_equals_uninterrupted']}.",
              f"Total {result['seconds']:.0f} s."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="scaled down for a CPU (CI)")
    parser.add_argument("--batch", type=int, default=None, help="(a) batch; default 32, quick 2")
    parser.add_argument("--steps", type=int, default=None, help="(a) steps per task; 20 / 2")
    parser.add_argument("--throughput-batch", type=int, default=None, help="(b) 128 / 8")
    parser.add_argument("--warmup", type=int, default=None, help="(b) untimed steps; 5 / 1")
    parser.add_argument("--compile-warmup", type=int, default=None,
                        help="(b) extra untimed steps when compiled (recompilations); 10 / 1")
    parser.add_argument("--timed", type=int, default=None, help="(b) timed steps, (d) steps; "
                        "30 / 3")
    parser.add_argument("--no-compile", dest="compile", action="store_false",
                        help="(b) without the train.compile rows")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    quick = args.quick
    args.batch = args.batch or (2 if quick else 32)
    args.steps = args.steps or (2 if quick else 20)
    args.warmup = args.warmup if args.warmup is not None else (1 if quick else 5)
    args.compile_warmup = (args.compile_warmup if args.compile_warmup is not None
                           else (1 if quick else 10))
    args.timed = args.timed or (3 if quick else 30)
    device = torch.device(args.device)
    begin = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"gpu-check-{device.type}{'-quick' if quick else ''}.json"
    result: dict[str, Any] = {
        "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda"
                        else f"CPU ({torch.get_num_threads()} threads)"),
        "mode": ("quick: (a) paper shapes, batch 2, 2 steps; (b), (d) small ViT" if quick
                 else f"(a) paper shapes, batch {args.batch}, {args.steps} steps"),
        "environment": environment(str(device)), "args": dict(vars(args)), "methods": [],
        "throughput": [], "determinism": None, "verdict": "incomplete",
    }

    def save(section: str, value: Any) -> None:
        """Keep what is finished: the JSON is rewritten after every section."""
        result[section] = value
        result["seconds"] = time.perf_counter() - begin
        path.write_text(json.dumps(result, indent=1))

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        stand_in_photos(root, per_class=4 if quick else 40)
        save("methods", check_methods(args, root, device, lambda rows: save("methods", rows)))
        a_batch = args.batch
        args.batch = args.throughput_batch or (8 if quick else 128)
        save("throughput", throughput(args, root))
        args.batch = a_batch
        save("determinism", determinism(args, root))
    failed = verdict(result)
    save("verdict", "PASS" if not failed else f"FAIL ({'; '.join(failed)})")
    table = markdown(result)
    print(table)
    path.with_suffix(".md").write_text(table + "\n")
    print(f"gpu check: {result['verdict']}")


if __name__ == "__main__":
    main()
