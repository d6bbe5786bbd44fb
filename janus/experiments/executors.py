"""Executors of a sweep (:mod:`janus.experiments.sweep`): where its runs train.

- ``inline``: one after another in this process (debugging; progress bars).
- ``local``: up to N worker processes on this machine through submitit's ``LocalExecutor``,
  one job per run, each claimed just before it starts, so that two sweeps on the same grid
  share the work.
- ``slurm``: one Slurm job array through submitit, one array task per run. The array index
  decides which run a task owns (the run is pickled into the task's submission); every run is
  claimed before the array is submitted.

A job stopped by its time limit or by preemption gets submitit's signal (``USR2``), is requeued
by :meth:`RunJob.checkpoint` and continues with ``resume`` from its last finished task, so no
finished task is lost and the record equals an uninterrupted run's. Every failure is appended
to ``failures.log`` in the run's folder (:data:`janus.experiments.sweep.FAILURES_NAME`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from janus.core.errors import ConfigError, Interrupted, JanusError, RunBusyError
from janus.core.results import now
from janus.experiments import claims
from janus.experiments.sweep import FAILURES_NAME, SweepRun, recorded_tasks, state_of
from janus.train.loggers import SWEEP_ENV

POLL_S = 1.0
"""Seconds between two looks at the local jobs."""


def new_sweep_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def log_failure(folder: Path, error: str, job: str | None) -> None:
    """Append one failure to the run's failure log (never overwritten)."""
    folder.mkdir(parents=True, exist_ok=True)
    entry = {"time": now(), "host": socket.gethostname(), "job": job, "error": error}
    with open(folder / FAILURES_NAME, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def job_id() -> str | None:
    """This process's submitit job id (``<array>_<index>`` for an array task), or None."""
    try:
        import submitit

        return str(submitit.JobEnvironment().job_id)
    except (ImportError, RuntimeError):
        return None


class RunJob:
    """Train one run of a sweep (what a submitit job calls); returns its outcome."""

    def __init__(self, sweep: str, progress: bool = False) -> None:
        self.sweep, self.progress = sweep, progress

    def __call__(self, run: SweepRun) -> dict[str, Any]:
        from janus.train.trainer import run as train

        folder, job = run.folder(), job_id()
        worker = {"host": socket.gethostname(), "pid": os.getpid(), "started": now()}
        if not claims.update(folder, self.sweep, worker=worker, **({"job": job} if job else {})):
            return {"run": run.name, "status": "skipped", "detail": "claimed by another sweep"}
        print(f"{run.name}: start in {folder}; its record holds {recorded_tasks(folder)} "
              f"finished task(s)", flush=True)
        os.environ[SWEEP_ENV] = self.sweep  # W&B groups the runs of a sweep by it
        try:
            record = train(run.config(), run.out, resume=True, progress=self.progress)
        except KeyboardInterrupt:  # the finished tasks are kept; the next sweep resumes it
            claims.release(folder, self.sweep)
            raise
        except RunBusyError:
            claims.release(folder, self.sweep)
            return {"run": run.name, "status": "skipped", "detail": "running elsewhere"}
        except Exception as err:  # kept in the run folder; requeue (SystemExit) keeps the claim
            detail = str(err) if isinstance(err, JanusError) else traceback.format_exc()
            log_failure(folder, detail, job)
            claims.release(folder, self.sweep)
            last = (detail.strip().splitlines() or [type(err).__name__])[-1]
            return {"run": run.name, "status": "failed", "detail": last}
        claims.release(folder, self.sweep)
        m = record["metrics"]
        return {"run": run.name, "status": "complete",
                "detail": f"ACC {m['acc']:.2f}  MAA {m['maa']:.2f}  BWT {m['bwt']:.2f}"}

    def checkpoint(self, run: SweepRun) -> Any:
        """submitit's hook on time-out or preemption: run the same run again (it resumes)."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, run)


@dataclass
class SlurmOptions:
    """What a Slurm array task asks for; None leaves it to the cluster's default."""

    partition: str | None = None
    time_min: int = 240
    gpus: int = 1
    cpus: int = 8
    mem: str | None = None
    """e.g. ``32G``."""
    max_parallel: int = 64
    """Array tasks running at once (``--array=0-N%max_parallel``)."""
    account: str | None = None
    job_name: str = "janus-sweep"
    setup: tuple[str, ...] = ()
    """Shell lines run before each task, e.g. ``module load cuda``."""

    def parameters(self) -> dict[str, Any]:
        """submitit ``SlurmExecutor.update_parameters`` keywords."""
        p: dict[str, Any] = {"time": self.time_min, "gpus_per_node": self.gpus,
                             "cpus_per_task": self.cpus, "ntasks_per_node": 1, "nodes": 1,
                             "array_parallelism": self.max_parallel, "job_name": self.job_name,
                             "signal_delay_s": 120, "stderr_to_stdout": True}
        for key, value in (("partition", self.partition), ("mem", self.mem),
                           ("account", self.account), ("setup", list(self.setup) or None)):
            if value is not None:
                p[key] = value
        return p


def _submitit():
    try:
        import submitit
    except ImportError:
        raise ConfigError("the local and slurm executors need submitit: pip install -e "
                          "'.[cluster]' (or use --executor inline)") from None
    return submitit


Report = Callable[[dict[str, Any]], None]


def claimable(runs: Sequence[SweepRun], sweep: str, executor: str,
              report: Report) -> list[SweepRun]:
    """Claim every run that needs running; report the others (complete, or owned elsewhere)."""
    mine = []
    for r in runs:
        state = state_of(r)
        if state.needs_running and claims.claim(r.folder(), claims.claim_info(sweep, executor)):
            if state_of(r).status == "complete":  # finished just before the claim
                claims.release(r.folder(), sweep)
                continue
            mine.append(r)
        elif state.status != "complete":
            report({"run": r.name, "status": "skipped", "detail": state.describe()})
    return mine


def run_inline(runs: Sequence[SweepRun], sweep: str, report: Report,
               progress: bool = True) -> None:
    """Every run in this process, one after another, each claimed just before it starts."""
    job = RunJob(sweep, progress=progress)
    for r in runs:
        if claimable([r], sweep, "inline", report):
            report(job(r))


def run_local(runs: Sequence[SweepRun], sweep: str, report: Report, *, workers: int,
              folder: Path, gpus: int | None = None, timeout_min: float = 24 * 60,
              watch: Callable[[list[tuple[Any, SweepRun]]], None] | None = None) -> None:
    """Up to ``workers`` submitit local jobs at once, one per run, claimed as they start.
    Worker slot ``i`` sees GPU ``i % gpus`` alone (``gpus``: default every CUDA device
    visible here; 0 = none) and, unless
    ``OMP_NUM_THREADS`` is set, ``cpu_count // workers`` threads. ``watch`` sees the running
    ``(job, run)`` pairs at every poll (tests use it)."""
    if gpus is None:
        import torch

        gpus = torch.cuda.device_count()
    if workers < 1 or gpus < 0:
        raise ConfigError(f"--workers {workers} / --gpus {gpus} is impossible: workers must "
                          f"be >= 1 and gpus >= 0")
    submitit = _submitit()
    executor = submitit.LocalExecutor(folder=str(folder))
    threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // workers))
    queue, active = list(runs), []  # active: (job, run, slot)
    bar = tqdm(total=len(runs), desc="sweep", unit="run", disable=None)
    try:
        _poll_local(queue, active, executor, sweep, report, bar, workers=workers, gpus=gpus,
                    threads=threads, timeout_min=timeout_min, watch=watch)
    except KeyboardInterrupt:
        bar.close()
        raise stop_local(active, queue, sweep) from None
    bar.close()


def stop_local(active: list[tuple[Any, SweepRun, int]], queue: list[SweepRun],
               sweep: str) -> Interrupted:
    """Ctrl-C in a local sweep: stop the running workers, release their claims, and the
    message that says what happened and how to continue."""
    for job, r, _ in active:
        with contextlib.suppress(Exception):
            job.cancel(check=False)
        claims.release(r.folder(), sweep)
    names = ", ".join(r.name for _, r, _ in active) or "none"
    return Interrupted(
        f"{len(active)} running run(s) stopped ({names}): each keeps its finished tasks and "
        f"its claim is released; {len(queue)} run(s) not started. Run the same janus sweep "
        f"command again to continue: complete runs are skipped, stopped ones resume")


def _poll_local(queue: list[SweepRun], active: list[tuple[Any, SweepRun, int]], executor: Any,
                sweep: str, report: Report, bar: Any, *, workers: int, gpus: int,
                threads: str, timeout_min: float,
                watch: Callable[[list[tuple[Any, SweepRun]]], None] | None) -> None:
    """:func:`run_local`'s loop: start runs in free slots, collect the finished ones."""
    while queue or active:
        free = sorted(set(range(workers)) - {slot for _, _, slot in active})
        while queue and free:
            r = queue.pop(0)
            if not claimable([r], sweep, "local", report):
                bar.update()
                continue
            slot = free.pop(0)
            executor.update_parameters(
                timeout_min=timeout_min, setup=[f"export OMP_NUM_THREADS={threads}"],
                gpus_per_node=1 if gpus else 0, visible_gpus=[slot % gpus] if gpus else [])
            active.append((executor.submit(RunJob(sweep), r), r, slot))
        if watch is not None:
            watch([(job, r) for job, r, _ in active])
        time.sleep(POLL_S)
        for entry in [e for e in active if e[0].done()]:
            active.remove(entry)
            job, r, _ = entry
            try:
                report(job.result())
            except Exception as err:  # the worker process itself died
                log_failure(r.folder(), f"worker process died: {err}", job.job_id)
                claims.release(r.folder(), sweep)
                report({"run": r.name, "status": "failed", "detail": f"worker died: {err}"})
            bar.update()


def submit_slurm(runs: Sequence[SweepRun], sweep: str, report: Report, *, folder: Path,
                 options: SlurmOptions) -> Any:
    """Claim the runs and submit them as one job array; return submitit's jobs (not awaited).
    A failed submission releases every claim and says why."""
    submitit = _submitit()
    if shutil.which("sbatch") is None or shutil.which("srun") is None:
        raise ConfigError("--executor slurm needs Slurm's sbatch and srun on PATH: run the "
                          "sweep on a login node of the cluster")
    mine = claimable(runs, sweep, "slurm", report)
    if not mine:
        return []
    executor = submitit.SlurmExecutor(folder=str(folder), max_num_timeout=10)
    executor.update_parameters(**options.parameters())
    try:
        jobs = executor.map_array(RunJob(sweep), mine)
    except Exception as err:
        for r in mine:
            claims.release(r.folder(), sweep)
        raise JanusError(f"sbatch failed, nothing was submitted and no run is claimed: "
                         f"{err}") from None
    for job, r in zip(jobs, mine, strict=True):
        claims.update(r.folder(), sweep, job=str(job.job_id))
    return jobs
