"""The ``janus`` command line: list, run, show, summarize."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from janus.config import PROFILES, RunConfig, apply_overrides, profile
from janus.errors import JanusError


def build_config(args: argparse.Namespace) -> RunConfig:
    cfg = profile(args.profile)
    cfg.method.name = args.method
    cfg.method.label = getattr(args, "label", None)
    cfg.seed = args.seed
    if args.data_root is not None:
        cfg.data.root = args.data_root
    if args.tasks is not None:
        cfg.data.num_tasks = args.tasks
    if args.device is not None:
        cfg.train.device = args.device
    return apply_overrides(cfg, args.set or [])


def cmd_list(args: argparse.Namespace) -> int:
    from janus.data import DATASETS
    from janus.methods import METHODS

    print("methods:")
    for name, cls in sorted(METHODS.items()):
        print(f"  {name:<22} {cls.description}")
    print("data sets (and the layout each expects):")
    for name, entry in sorted(DATASETS.items()):
        print(f"  {name:<22} {entry.description}")
        if entry.expected_layout:
            print(textwrap.fill(entry.expected_layout, width=100, initial_indent=" " * 25,
                                subsequent_indent=" " * 25))
    print("profiles:")
    for name, make in PROFILES.items():
        doc = (make.__doc__ or "").strip().splitlines()[0]
        print(f"  {name:<22} {doc}")
    return 0


def print_record(record: dict) -> None:
    from janus.results import (
        machine_of,
        matrix_from_json,
        metrics_of,
        train_cpu_seconds,
        train_seconds,
    )

    acc = matrix_from_json(record["accuracy_matrix"])
    print("accuracy matrix A[t, i] (%), row t = after task t:")
    for t, row in enumerate(acc):
        cells = " ".join(f"{x:6.2f}" for x in row[: t + 1])
        print(f"  t={t + 1:<3d} {cells}")
    if record.get("status") == "complete":
        m = metrics_of(record)
        print(f"ACC {m['acc']:.2f}  MAA {m['maa']:.2f}  BWT {m['bwt']:.2f}")
    cpu = train_cpu_seconds(record)
    cpu_text = "" if cpu is None else f" ({cpu:.1f} s CPU time)"
    print(f"training time {train_seconds(record):.1f} s{cpu_text} on "
          f"{record['environment']['device']} ({machine_of(record)})")


def cmd_run(args: argparse.Namespace) -> int:
    from janus.trainer import run, run_dir

    cfg = build_config(args)
    record = run(cfg, args.out, resume=args.resume, force=args.force, progress=not args.quiet)
    print(f"record: {run_dir(cfg, args.out) / 'record.json'}")
    print_record(record)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from janus.results import read_record

    path = Path(args.record)
    if path.is_dir():
        path = path / "record.json"
    if not path.is_file():
        raise JanusError(f"no record at {str(path)!r}")
    print_record(read_record(path))
    return 0


def cmd_summarize(args: argparse.Namespace) -> int:
    from janus.results import find_records, summarize

    rows = summarize(find_records(args.root))
    if not rows:
        raise JanusError(f"no complete records under {args.root!r}")
    if args.markdown:
        print("| profile | data set | T | method | seeds | ACC | MAA | BWT | train s / seed "
              "| CPU s / seed | measured on |")
        print("|---|---|---:|---|---:|---|---|---|---:|---:|---|")
    else:
        print(f"{'profile':<8} {'dataset':<18} {'T':>3} {'method':<22} {'seeds':>5}  "
              f"{'ACC':>14} {'MAA':>14} {'BWT':>14} {'train s/seed':>13} {'CPU s/seed':>11}")
    for r in rows:
        cpu = r["train_cpu_seconds_per_seed"]
        cpu_text = "-" if cpu is None else f"{cpu:.0f}"
        if args.markdown:
            cells = " | ".join(f"{r[k]:.2f} ± {r[k + '_std']:.2f}" for k in ("acc", "maa", "bwt"))
            print(f"| {r['profile']} | {r['dataset']} | {r['tasks']} | {r['method']} | "
                  f"{len(r['seeds'])} | {cells} | {r['train_seconds_per_seed']:.0f} | "
                  f"{cpu_text} | {'; '.join(r['measured_on'])} |")
            continue
        cells = "".join(f" {r[k]:7.2f} ± {r[k + '_std']:4.2f}" for k in ("acc", "maa", "bwt"))
        times = f" {r['train_seconds_per_seed']:13.0f} {cpu_text:>11}"
        print(f"{r['profile']:<8} {r['dataset']:<18} {r['tasks']:>3} {r['method']:<22} "
              f"{len(r['seeds']):>5} {cells}{times}")
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    from janus.pretrain import PretrainConfig, pretrain

    cfg = PretrainConfig(dataset=args.dataset, data_root=args.data_root, seed=args.seed)
    if args.epochs is not None:
        cfg.epochs = args.epochs
    if args.device is not None:
        cfg.device = args.device
    record = pretrain(cfg, args.out, progress=not args.quiet)
    print(f"test top-1 {record['final_test_top1']:.2f}% after {len(record['epochs'])} epochs; "
          f"weights: {Path(args.out) / 'weights.pth'}")
    return 0


def cmd_reference(args: argparse.Namespace) -> int:
    from janus.reference import nearest_class_mean
    from janus.results import write_json

    args.method, args.seed, args.tasks = "finetune", 0, None
    ref = nearest_class_mean(build_config(args))
    path = Path(args.out) / args.profile / f"{ref['config']['data']['dataset']}-ncm.json"
    write_json(path, ref)
    print(f"NCM top-1 on {ref['num_classes']} classes: {ref['ncm_euclidean_top1']:.2f}% "
          f"(Euclidean), {ref['ncm_cosine_top1']:.2f}% (cosine); written to {path}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="janus", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="registered methods, data sets and profiles").set_defaults(
        func=cmd_list
    )
    r = sub.add_parser("run", help="run one method on one profile with one seed")
    r.add_argument("--profile", default="smoke", choices=sorted(PROFILES))
    r.add_argument("--method", default="finetune")
    r.add_argument("--label", help="run folder / summary name, e.g. for an ablation variant")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--data-root", help="data root (default: $JANUS_DATA)")
    r.add_argument("--tasks", type=int, help="number of tasks T")
    r.add_argument("--device", help="auto, cpu, cuda, cuda:1, ...")
    r.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config field, e.g. train.epochs=3 or method.params.k=25")
    r.add_argument("--out", default="runs", help="output root (default: runs)")
    r.add_argument("--resume", action="store_true", help="continue an interrupted run")
    r.add_argument("--force", action="store_true", help="discard an existing run and start over")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    r.set_defaults(func=cmd_run)
    pt = sub.add_parser("pretrain", help="pre-train the small ViT of the mini profile")
    pt.add_argument("--dataset", default="tiny-imagenet-32")
    pt.add_argument("--data-root", help="data root (default: $JANUS_DATA)")
    pt.add_argument("--out", required=True, help="folder for weights.pth, record.json, state.pt")
    pt.add_argument("--epochs", type=int)
    pt.add_argument("--seed", type=int, default=0)
    pt.add_argument("--device")
    pt.add_argument("--quiet", action="store_true")
    pt.set_defaults(func=cmd_pretrain)
    rf = sub.add_parser("reference", help="frozen-feature nearest-class-mean accuracy")
    rf.add_argument("--profile", default="smoke", choices=sorted(PROFILES))
    rf.add_argument("--data-root", help="data root (default: $JANUS_DATA)")
    rf.add_argument("--device")
    rf.add_argument("--set", action="append", metavar="KEY=VALUE")
    rf.add_argument("--out", default="runs")
    rf.set_defaults(func=cmd_reference)
    s = sub.add_parser("show", help="print a run record")
    s.add_argument("record", help="record.json or its run folder")
    s.set_defaults(func=cmd_show)
    m = sub.add_parser("summarize", help="mean ± std over seeds of all records under a folder")
    m.add_argument("root", nargs="?", default="runs")
    m.add_argument("--markdown", action="store_true",
                   help="a markdown table, with the machine each group was timed on")
    m.set_defaults(func=cmd_summarize)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except JanusError as err:
        print(f"janus: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
