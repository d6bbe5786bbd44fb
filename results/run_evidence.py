"""Run (or finish) every record behind the committed evidence of a profile, resumably.

    python results/run_evidence.py --list                  # what is done, what is pending
    python results/run_evidence.py --only lora-gpm-e1      # just these variants, plan order
    OMP_NUM_THREADS=1 python results/run_evidence.py &     # two 1-thread queues side by side
    OMP_NUM_THREADS=1 python results/run_evidence.py &     # on a 2-core CPU
    python results/run_evidence.py --only seqlora-e1 --progress   # batch bars on stderr

The plan is :func:`janus.experiments.evidence_plan`. Finished runs are skipped, interrupted
ones resumed from their last finished task, and a run that another process holds (each run
locks its folder) is left to it, so several copies share the plan without a split. Records go
to ``<out>/<profile>/...`` as with ``janus run``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from janus.errors import JanusError, RunBusyError
from janus.experiments import PlannedRun, evidence_plan, make_config
from janus.results import RECORD_NAME
from janus.trainer import made_with, run, run_dir


def config_of(p: PlannedRun, args: argparse.Namespace):
    v = p.variant
    return make_config(args.profile, v.method, p.seed, data_root=args.data_root,
                       overrides=p.overrides, params=v.params, label=v.label)


def is_complete(p: PlannedRun, args: argparse.Namespace) -> bool:
    """A complete record of this run's config (:func:`janus.trainer.run` reuses it)."""
    cfg = config_of(p, args)
    path = run_dir(cfg, args.out) / RECORD_NAME
    if not path.is_file():
        return False
    old = json.loads(path.read_text())
    return old.get("status") == "complete" and made_with(old, cfg)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="mini")
    ap.add_argument("--out", default="results")
    ap.add_argument("--data-root", help="default: $JANUS_DATA")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--only", nargs="+", metavar="VARIANT",
                    help="run (or list) only these variants of the plan, e.g. lora-gpm-e1")
    ap.add_argument("--list", action="store_true", help="print the plan and its state, run nothing")
    ap.add_argument("--progress", action="store_true",
                    help="show each task's batch progress bar on stderr (default: a line per run)")
    args = ap.parse_args(argv)
    plan = evidence_plan(args.seeds)
    if args.only:
        unknown = sorted(set(args.only) - {p.variant.key for p in plan})
        if unknown:
            print(f"error: {', '.join(unknown)} not in the plan; `--list` shows its variants",
                  file=sys.stderr)
            return 2
        plan = [p for p in plan if p.variant.key in args.only]
    try:
        done = {id(p): is_complete(p, args) for p in plan}
    except JanusError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    pending = [p for p in plan if not done[id(p)]]
    if args.list:
        for p in plan:
            extra = f" {' '.join(p.overrides)}" if p.overrides else ""
            print(f"{'done   ' if done[id(p)] else 'pending'} {p.variant.key} seed {p.seed}{extra}")
        print(f"{len(plan) - len(pending)} of {len(plan)} runs done")
        return 0
    print(f"{len(pending)} pending runs", flush=True)
    for i, p in enumerate(pending, 1):
        start = time.perf_counter()
        try:
            record = run(config_of(p, args), args.out, resume=True, progress=args.progress)
        except RunBusyError:  # another queue has it
            print(f"[{i}/{len(pending)}] {p.variant.key} seed {p.seed}: skipped, running elsewhere",
                  flush=True)
            continue
        except JanusError as e:  # missing data or weights, a changed config: say so, stop
            print(f"error: {p.variant.key} seed {p.seed}: {e}", file=sys.stderr)
            return 2
        m = record["metrics"]
        print(f"[{i}/{len(pending)}] {p.variant.key} seed {p.seed}: ACC {m['acc']:.2f} "
              f"MAA {m['maa']:.2f} BWT {m['bwt']:.2f} ({time.perf_counter() - start:.0f} s)",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
