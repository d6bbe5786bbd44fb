"""End-to-end training throughput of the `paper` profile's input side: the old PIL path
against the device pipeline, in one process, on stand-in photographs.

The stand-ins are JPEGs of ImageNet-R's typical size (500x400, about 40 KB at quality 90)
in an ImageNet-R-shaped folder tree, so the real loaders, caches and trainer run. Rows:

- ``input only``: batches of the training loader as float tensors on the device, no model;
  ``per core`` runs it in one process with 0 workers and 1 torch thread for both paths;
- ``training``: the trainer's own loop (loader + method loss, backward, hooks, optimizer) on
  the second task (so Janus-LoRA's GR and DML have a basis and prototypes), images/s over
  its steps; the old path with 0 workers (the former default), the new one with
  ``num_workers=auto``.

    python benchmarks/throughput.py --device cpu --quick       # a small ViT: the input side
    python benchmarks/throughput.py --device cuda              # ViT-B/16, bf16, batch 128

Writes ``benchmarks/results/throughput-<device>[-quick].json``; the last line reads
``pipeline speedup: <X>x (new <N> img/s vs old <M> img/s, <device>)``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from janus.core.config import RunConfig, apply_overrides, profile
from janus.core.results import environment
from janus.data.pipeline import resolve_workers
from janus.data.standins import PHOTO, stand_in_photos
from janus.data.stream import build_stream
from janus.train.trainer import Run


def config(args: argparse.Namespace, root: Path, pipeline: str, workers: int | str,
           method: str) -> RunConfig:
    shape = (["model.source=config", "model.embed_dim=64", "model.depth=2", "model.num_heads=2",
              "lora.rank=4"] if args.quick else ["model.source=config"])
    return apply_overrides(profile("paper"), [
        f"data.root={str(root)!r}", "data.num_tasks=2", f"data.batch_size={args.batch}",
        f"data.pipeline={pipeline}", f"data.num_workers={workers!r}",
        f"data.cache_dir={str(root / 'cache')!r}", f"train.device={args.device}",
        "train.epochs=1000", f"method.name={method}", *shape,
    ])


def input_only(cfg: RunConfig, batches: int, device: torch.device) -> float:
    """Images/s of the training loader alone (first batch excluded: worker start)."""
    stream = build_stream(cfg, cfg.seed)
    loader = stream.train_loader(stream.task(1), torch.Generator().manual_seed(0))
    seen, start = 0, None
    while seen < batches:
        for _ in loader:
            if start is None:
                start = time.perf_counter()
            else:
                seen += 1
            if device.type == "cuda":
                torch.cuda.synchronize()
            if seen >= batches:
                break
    return batches * cfg.data.batch_size / (time.perf_counter() - start)


def training(cfg: RunConfig, steps: int, out: Path) -> dict[str, Any]:
    """The trainer on task 2 (task 1 trained for 2 steps first); images/s over its steps."""
    start = time.perf_counter()
    run = Run(cfg, out, progress=False)
    setup_seconds = time.perf_counter() - start
    run.start()
    run.train_task(0, max_steps=2)
    if run.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    entry = run.train_task(1, max_steps=steps)
    row = {"images_per_second": entry["train_images_per_second"], "steps": entry["steps"],
           "step_seconds": entry["step_seconds"], "setup_seconds": setup_seconds}
    if run.device.type == "cuda":
        row["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="small ViT (CPU): the input side")
    parser.add_argument("--batch", type=int, default=None, help="default 32 quick, else 128")
    parser.add_argument("--steps", type=int, default=None, help="timed training steps")
    parser.add_argument("--per-class", type=int, default=None, help="stand-in images per class")
    parser.add_argument("--rounds", type=int, default=2, help="old/new alternations (median)")
    parser.add_argument("--methods", nargs="+", default=None,
                        help="default finetune (quick) or finetune janus-lora")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--data", default=None,
                        help="write the stand-in photographs here and keep them (a data root "
                             "for `janus run --profile paper`); default: a temporary folder")
    args = parser.parse_args()
    args.batch = args.batch or (32 if args.quick else 128)
    args.steps = args.steps or (8 if args.quick else 40)
    args.methods = args.methods or (["finetune"] if args.quick else ["finetune", "janus-lora"])
    per_class = args.per_class or max(2 * args.batch // 5 + 10, 40)
    device = torch.device(args.device)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.data) if args.data else Path(tmp)
        begin = time.perf_counter()
        stand_in_photos(root, per_class)
        sizes = [p.stat().st_size for p in (root / "imagenet-r").rglob("*.jpg")]
        print(f"{len(sizes)} stand-in JPEGs {PHOTO[0]}x{PHOTO[1]}, mean "
              f"{statistics.mean(sizes) / 1024:.0f} KB ({time.perf_counter() - begin:.0f} s)")
        threads = torch.get_num_threads()
        start = time.perf_counter()  # the one-time decode into the disk cache
        build_stream(config(args, root, "device", "auto", "finetune"), 0)
        cache_seconds = time.perf_counter() - start
        print(f"decode-once cache of {len(sizes)} images: {cache_seconds:.1f} s "
              f"({resolve_workers('auto', 'device')} workers)")
        torch.set_num_threads(1)
        for _ in range(args.rounds):
            for path in ("pil", "device"):
                ips = input_only(config(args, root, path, 0, "finetune"), 6, device)
                rows.append({"row": "input only, per core", "path": path, "workers": 0,
                             "images_per_second": ips})
        torch.set_num_threads(threads)
        for method in args.methods:
            for r in range(args.rounds):
                for path, workers in (("pil", 0), ("device", "auto")):
                    cfg = config(args, root, path, workers, method)
                    row = training(cfg, args.steps, root / f"run-{method}-{path}-{r}")
                    rows.append({"row": "training", "method": method, "path": path,
                                 "workers": resolve_workers(workers, path), **row})
    table = summarize(rows)
    print(markdown(table))
    record = {"environment": environment(str(device)), "args": vars(args), "threads": threads,
              "cache_seconds": cache_seconds, "images": len(sizes),
              "mean_jpeg_kb": statistics.mean(sizes) / 1024, "rows": rows, "table": table}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"throughput-{device.type}{'-quick' if args.quick else ''}.json"
    (out / name).write_text(json.dumps(record, indent=1))
    per_core = {r["path"]: r["median"] for r in table if r["row"] == "input only, per core"}
    print(f"input side per core: {per_core['device'] / per_core['pil']:.1f}x")
    first = args.methods[0]
    print(f"training rows of the speedup: {first}")
    old, new = (next(r["median"] for r in table if r["row"] == "training"
                     and r["method"] == first and r["path"] == p) for p in ("pil", "device"))
    print(f"pipeline speedup: {new / old:.1f}x (new {new:.0f} img/s vs old {old:.0f} img/s, "
          f"{device.type})")


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Median images/s per (row, method, path)."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["row"], r.get("method", "-"), r["path"], r["workers"]), []).append(r)
    table = []
    for (row, method, path, workers), rs in groups.items():
        entry = {"row": row, "method": method, "path": path, "workers": workers,
                 "median": statistics.median(r["images_per_second"] for r in rs)}
        if "peak_memory_gib" in rs[0]:
            entry["peak_memory_gib"] = max(r["peak_memory_gib"] for r in rs)
        table.append(entry)
    return table


def markdown(table: list[dict[str, Any]]) -> str:
    lines = ["| measurement | method | path | workers | images/s |", "|---|---|---|---:|---:|"]
    for r in table:
        memory = f" (peak {r['peak_memory_gib']:.1f} GiB)" if "peak_memory_gib" in r else ""
        lines.append(f"| {r['row']} | {r['method']} | {r['path']} | {r['workers']} | "
                     f"{r['median']:.0f}{memory} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
