"""The ``janus`` command line: list, run, sweep, show, summarize, ledger, pretrain, reference."""

from __future__ import annotations

import argparse
import shlex
import sys
import textwrap
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

from janus.core.config import PROFILES, RunConfig, describe_settings
from janus.core.errors import Interrupted, JanusError


def build_config(args: argparse.Namespace) -> RunConfig:
    """The config of the command line's profile, method, seed, data root, T, device and
    ``--set`` overrides (:func:`janus.experiments.configs.make_config`)."""
    from janus.experiments.configs import make_config

    return make_config(args.profile, args.method, args.seed, tasks=args.tasks,
                       data_root=args.data_root, device=args.device, overrides=args.set or [],
                       label=getattr(args, "label", None))


def print_fields(rows: list[tuple[str, str, Any, str]]) -> None:
    """One entry per typed field: name, type and range, default, then its help."""
    for field, kind, default, help_text in rows:
        print(f"  {field} ({kind}; default {default!r})")
        print(textwrap.fill(help_text, width=100, initial_indent=" " * 6,
                            subsequent_indent=" " * 6))


def print_method_params(name: str) -> None:
    from janus.methods import METHODS

    if name not in METHODS:
        raise JanusError(f"unknown method {name!r}; known: {', '.join(sorted(METHODS))}")
    cls = METHODS[name]
    print(f"{name}: {cls.description}")
    rows = cls.params_type.describe()
    if not rows:
        print("  no parameters")
    print_fields(rows)
    print("set one with --set method.params.<name>=<value>")


def cmd_list(args: argparse.Namespace) -> int:
    from janus.data import DATASETS
    from janus.methods import METHODS

    if args.method:
        print_method_params(args.method)
        return 0
    if args.config:
        print("run settings (the defaults below are the fields' own; each profile sets its own "
              "values, janus list names the profiles):")
        print_fields(describe_settings())
        print("set one with --set <section>.<name>=<value>, e.g. --set train.epochs=3")
        return 0

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
        doc = " ".join((make.__doc__ or "").strip().split("\n\n")[0].split())
        print(textwrap.fill(doc, width=100, initial_indent=f"  {name:<22} ",
                            subsequent_indent=" " * 25))
    return 0


def print_record(record: dict) -> None:
    from janus.core.results import (
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
    else:
        total = record["config"]["data"]["num_tasks"]
        print(f"{record.get('status', 'partial')}, {len(record.get('tasks', []))} of {total} "
              f"tasks" + (f": {record['failure']['reason']}" if "failure" in record else ""))
    cpu = train_cpu_seconds(record)
    cpu_text = "" if cpu is None else f" ({cpu:.1f} s CPU time)"
    print(f"training time {train_seconds(record):.1f} s{cpu_text} on "
          f"{record['environment']['device']} ({machine_of(record)})")


def cmd_run(args: argparse.Namespace) -> int:
    from janus.train.trainer import run, run_dir

    cfg = build_config(args)
    try:
        record = run(cfg, args.out, resume=args.resume, force=args.force,
                     progress=not args.quiet)
    except KeyboardInterrupt:
        from janus.experiments.sweep import recorded_tasks

        folder = run_dir(cfg, args.out)
        again = [a for a in args.argv if a != "--force"]
        again += [] if "--resume" in again else ["--resume"]
        raise Interrupted(
            f"{recorded_tasks(folder)} of {cfg.data.num_tasks} task(s) finished and kept in "
            f"{folder} (record.json, checkpoint.pt; the task under way is lost); continue "
            f"with: janus {shlex.join(again)}") from None
    print(f"record: {run_dir(cfg, args.out) / 'record.json'}")
    print_record(record)
    return 0


def sweep_grid(args: argparse.Namespace):
    """The grid of ``janus sweep``: the sweep file's, with the command line's choices on top."""
    from janus.experiments.sweep import Grid, read_grid

    if args.file is not None and args.methods:
        raise JanusError("give the runs in the sweep file or with --methods, not both")
    if args.file is None and not args.methods:
        raise JanusError("janus sweep needs a sweep file or --methods (methods or variants)")
    grid = read_grid(args.file) if args.file is not None else Grid(runs=list(args.methods))
    for key in ("profile", "seeds", "tasks", "out", "data_root"):
        if getattr(args, key) is not None:
            setattr(grid, key, getattr(args, key))
    grid.overrides = [*grid.overrides, *(args.set or [])]
    return grid


def cmd_sweep(args: argparse.Namespace) -> int:
    from janus.experiments import executors
    from janus.experiments.sweep import named_variants, state_of, validate

    if args.variants:
        for key, v in sorted(named_variants().items()):
            extra = f" {' '.join(v.overrides)}" if v.overrides else ""
            print(f"  {key:<26} {v.method} {v.params or ''}{extra}  ({v.name})")
        return 0
    grid = sweep_grid(args)
    runs = grid.expand()
    if args.only:
        unknown = sorted(set(args.only) - {r.key for r in runs})
        if unknown:
            raise JanusError(f"{', '.join(unknown)} not in the grid; `--status` lists its runs")
        runs = [r for r in runs if r.key in args.only]
    validate(runs)
    states = [state_of(r) for r in runs]
    if args.status or args.dry_run:
        width = max(len(r.name) for r in runs)
        for r, st in zip(runs, states, strict=True):
            print(f"{r.name:<{width}}  {st.describe()}")
        counts = Counter(st.status for st in states)
        print(f"{len(runs)} runs: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
        if args.dry_run:
            todo = sum(st.needs_running for st in states)
            print(f"would run {todo} with --executor {args.executor}")
        return 0
    sweep = executors.new_sweep_id()
    logs = Path(args.log_dir or Path(grid.out) / ".sweep" / "logs")
    failed: list[str] = []

    def report(outcome: dict) -> None:
        print(f"{outcome['run']}: {outcome['status']} ({outcome['detail']})", flush=True)
        if outcome["status"] == "failed":
            failed.append(outcome["run"])

    todo = [r for r, st in zip(runs, states, strict=True) if st.status != "complete"]
    print(f"{len(runs)} runs in the grid, {len(runs) - len(todo)} complete; sweep {sweep}",
          flush=True)
    if args.executor == "inline":
        executors.run_inline(todo, sweep, report, progress=not args.quiet)
    elif args.executor == "local":
        executors.run_local(todo, sweep, report, workers=args.workers, folder=logs,
                            gpus=args.gpus)
    else:
        options = executors.SlurmOptions(
            partition=args.partition, time_min=args.time,
            gpus=1 if args.gpus is None else args.gpus, cpus=args.cpus,
            mem=args.mem, max_parallel=args.max_parallel, account=args.account,
            setup=tuple(args.setup or ()))
        jobs = executors.submit_slurm(todo, sweep, report, folder=logs, options=options)
        if jobs:
            print(f"submitted job array {jobs[0].job_id.split('_')[0]} with {len(jobs)} runs; "
                  f"logs in {logs}; `janus sweep ... --status` shows their progress")
    if failed:
        raise JanusError(f"{len(failed)} run(s) failed ({', '.join(failed)}); each run "
                         f"folder's failures.log holds the error")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from janus.core.results import read_record

    path = Path(args.record)
    if path.is_dir():
        path = path / "record.json"
    if not path.is_file():
        raise JanusError(f"no record at {str(path)!r}")
    print_record(read_record(path))
    return 0


def cmd_ledger(args: argparse.Namespace) -> int:
    from janus.reporting import ledger

    root = Path(args.root)
    if not (root / ledger.README).is_file() or not (root / "results").is_dir():
        raise JanusError(f"{str(root)!r} is not the repository root (no {ledger.README} and "
                         "results/ there): run from the root or pass --root")
    if args.check:
        problems = ledger.stale(root)
        for line in problems:
            print(f"janus ledger: {line}", file=sys.stderr)
        return 1 if problems else 0
    for path in ledger.write(root):
        print(f"wrote {path}")
    return 0


def cmd_summarize(args: argparse.Namespace) -> int:
    from janus.core.results import find_records, summarize

    with warnings.catch_warnings(record=True) as skipped:
        warnings.simplefilter("always")
        records = find_records(args.root, skip_unreadable=True)
    for w in skipped:
        print(f"janus: skipped: {w.message}", file=sys.stderr)
    rows = summarize(records)
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
            method = r["method"] + (f" ({r['settings']})" if r["settings"] else "")
            print(f"| {r['profile']} | {r['dataset']} | {r['tasks']} | {method} | "
                  f"{len(r['seeds'])} | {cells} | {r['train_seconds_per_seed']:.0f} | "
                  f"{cpu_text} | {'; '.join(r['measured_on'])} |")
            continue
        cells = "".join(f" {r[k]:7.2f} ± {r[k + '_std']:4.2f}" for k in ("acc", "maa", "bwt"))
        times = f" {r['train_seconds_per_seed']:13.0f} {cpu_text:>11}"
        print(f"{r['profile']:<8} {r['dataset']:<18} {r['tasks']:>3} {r['method']:<22} "
              f"{len(r['seeds']):>5} {cells}{times}")
        if r["settings"]:
            print(f"{'':<8} ^ not the only row of {r['method']}: {r['settings']}")
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    from janus.train.pretrain import PretrainConfig, pretrain

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
    from janus.analysis.reference import nearest_class_mean
    from janus.core.results import write_json

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
    ls = sub.add_parser("list", help="registered methods, data sets and profiles")
    ls.add_argument("--method", metavar="NAME", help="print one method's parameters: type, "
                    "range, default and help")
    ls.add_argument("--config", action="store_true", help="print every run setting: type, "
                    "range, default and help")
    ls.set_defaults(func=cmd_list)
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
    sw = sub.add_parser(
        "sweep", help="run a grid of runs (inline, local workers or a Slurm job array)",
        description="Expand a grid (a sweep file, or --methods x --seeds x --tasks) and run "
                    "every run that is not complete; finished runs are kept, interrupted ones "
                    "resumed. The sweep file format is in janus/experiments/sweep.py and the "
                    "README.")
    sw.add_argument("file", nargs="?", help="sweep file (YAML), e.g. results/evidence-mini.yaml")
    sw.add_argument("--methods", nargs="+", metavar="NAME", help="methods or named variants")
    sw.add_argument("--profile", choices=sorted(PROFILES))
    sw.add_argument("--seeds", type=int, nargs="+")
    sw.add_argument("--tasks", type=int, nargs="+", help="one or more T (task splits)")
    sw.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="an override for every run of the grid")
    sw.add_argument("--out", help="output root (default: the file's, else runs)")
    sw.add_argument("--data-root", help="data root (default: $JANUS_DATA)")
    sw.add_argument("--only", nargs="+", metavar="KEY", help="only the runs of these labels")
    sw.add_argument("--status", action="store_true",
                    help="print each run's state (complete / running / partial / failed / "
                         "pending) and run nothing")
    sw.add_argument("--dry-run", action="store_true", help="--status, and what would run")
    sw.add_argument("--variants", action="store_true", help="list the named variants")
    sw.add_argument("--executor", choices=["inline", "local", "slurm"], default="inline")
    sw.add_argument("--workers", type=int, default=1, help="local: worker processes at once")
    sw.add_argument("--log-dir", help="submitit's folder (default: <out>/.sweep/logs)")
    sw.add_argument("--partition", help="slurm: partition")
    sw.add_argument("--account", help="slurm: account")
    sw.add_argument("--time", type=int, default=240, help="slurm: minutes per run (requeued "
                    "from its last finished task when it runs out)")
    sw.add_argument("--gpus", type=int, help="slurm: GPUs per run (default 1); local: GPUs "
                    "to spread the workers over, one each (default: every visible GPU)")
    sw.add_argument("--cpus", type=int, default=8, help="slurm: CPU cores per run")
    sw.add_argument("--mem", help="slurm: memory per run, e.g. 32G")
    sw.add_argument("--max-parallel", type=int, default=64,
                    help="slurm: array tasks running at once")
    sw.add_argument("--setup", action="append", metavar="LINE",
                    help="slurm: a shell line before each task, e.g. 'module load cuda'")
    sw.add_argument("--quiet", action="store_true", help="inline: no progress bars")
    sw.set_defaults(func=cmd_sweep)
    s = sub.add_parser("show", help="print a run record")
    s.add_argument("record", help="record.json or its run folder")
    s.set_defaults(func=cmd_show)
    m = sub.add_parser("summarize", help="mean ± std over seeds of all records under a folder")
    m.add_argument("root", nargs="?", default="runs")
    m.add_argument("--markdown", action="store_true",
                   help="a markdown table, with the machine each group was timed on")
    m.set_defaults(func=cmd_summarize)
    lg = sub.add_parser("ledger", help="regenerate REPRODUCIBILITY.md and the README's "
                        "generated block from the code and the committed records")
    lg.add_argument("--root", default=".", help="the repository root (default: .)")
    lg.add_argument("--check", action="store_true",
                    help="write nothing; exit 1 naming what is out of date")
    lg.set_defaults(func=cmd_ledger)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return args.func(args)
    except Interrupted as err:
        print(f"janus: interrupted: {err}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("janus: interrupted", file=sys.stderr)
        return 130
    except JanusError as err:
        for line in str(err).splitlines() or [""]:  # several wrong settings: a line each
            print(f"janus: error: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
