"""Who owns a run of a sweep: a claim file in the run's folder, made with ``O_CREAT | O_EXCL``.

``flock`` (the lock of :func:`janus.train.locking.run_lock`) is often off or node-local on cluster
file systems (Lustre's ``localflock``), so a sweep does not rely on it to keep two nodes off
the same run. Creating a file exclusively is atomic on local file systems, NFSv3+ and Lustre:
of two sweeps claiming a run, exactly one succeeds. A claim names its sweep, the executor, the
submitting process and, once known, the Slurm job; the worker that runs it adds itself.

A claim whose owner is gone (its process on this host is dead, or Slurm no longer knows its
job) is *stale* and is taken over. A takeover is serialised by a second exclusive file, so two
sweeps that find the same stale claim never both take it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

CLAIM_NAME = ".claim"
TAKEOVER_NAME = ".claim.takeover"
TAKEOVER_STALE_S = 60.0
"""A takeover file older than this was left by a process that died during a takeover."""


def claim_info(sweep: str, executor: str, job: str | None = None) -> dict[str, Any]:
    """The content of a new claim made by this process."""
    return {"sweep": sweep, "executor": executor, "host": socket.gethostname(),
            "pid": os.getpid(), "job": job,
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def read_claim(folder: Path) -> dict[str, Any] | None:
    """The claim on ``folder``, or None. A claim being written reads as unknown-owner."""
    path = folder / CLAIM_NAME
    try:
        text = path.read_text()
        since = path.stat().st_mtime
    except FileNotFoundError:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:  # created, content not (yet) written
        return {"sweep": None, "executor": "unknown", "host": None, "pid": None, "job": None,
                "unwritten_since": since}


def _create(path: Path, info: dict[str, Any]) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        json.dump(info, f)
        f.flush()
        os.fsync(f.fileno())
    return True


def _replace(path: Path, info: dict[str, Any]) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, path)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def slurm_job_alive(job: str) -> bool | None:
    """Whether Slurm still knows ``job`` (queued, running, requeued), via ``squeue``; None
    when that cannot be told (no ``squeue`` here, or it failed for another reason)."""
    try:
        out = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True,
                             text=True, timeout=30)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    if out.returncode == 0:
        return bool(out.stdout.strip())
    if "invalid job id" in out.stderr.lower():
        return False
    return None


def owner_alive(info: dict[str, Any]) -> bool:
    """Whether the owner of a claim may still run it. A claim that cannot be checked from
    here (another host's process, no ``squeue``) counts as alive: it is never taken over. An
    empty or half-written claim is alive for :data:`TAKEOVER_STALE_S` (its writer needs
    microseconds), then stale: its writer died between creating and writing it."""
    if "unwritten_since" in info:
        return time.time() - info["unwritten_since"] < TAKEOVER_STALE_S
    if info.get("executor") == "slurm" and info.get("job"):
        alive = slurm_job_alive(str(info["job"]))
        return True if alive is None else alive
    here = socket.gethostname()
    procs = [(info.get("host"), info.get("pid"))]
    if info.get("worker"):
        procs.append((info["worker"].get("host"), info["worker"].get("pid")))
    if any(host != here or pid is None for host, pid in procs):
        return True
    return any(pid_alive(int(pid)) for _, pid in procs)


def claim(folder: Path, info: dict[str, Any]) -> bool:
    """Claim the run in ``folder`` for ``info['sweep']``; False if another owner holds it.
    A stale claim (:func:`owner_alive` false) is taken over."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CLAIM_NAME
    if _create(path, info):
        return True
    held = read_claim(folder)
    if held is None:  # released meanwhile
        return _create(path, info)
    if held.get("sweep") == info["sweep"]:
        return True
    if owner_alive(held):
        return False
    return _take_over(folder, held, info)


def _take_over(folder: Path, stale: dict[str, Any], info: dict[str, Any]) -> bool:
    mutex = folder / TAKEOVER_NAME
    if not _create(mutex, info):
        with contextlib.suppress(FileNotFoundError):
            if time.time() - mutex.stat().st_mtime > TAKEOVER_STALE_S:
                mutex.unlink()
        return False
    try:
        if read_claim(folder) != stale:  # someone else took it over first
            return False
        _replace(folder / CLAIM_NAME, info)
        return True
    finally:
        mutex.unlink(missing_ok=True)


def update(folder: Path, sweep: str, **fields: Any) -> bool:
    """Add ``fields`` to this sweep's claim on ``folder``; False if the claim is not ours."""
    held = read_claim(folder)
    if held is None or held.get("sweep") != sweep:
        return False
    _replace(folder / CLAIM_NAME, {**held, **fields})
    return True


def release(folder: Path, sweep: str) -> None:
    """Remove this sweep's claim on ``folder`` (another owner's claim is left alone)."""
    held = read_claim(folder)
    if held is not None and held.get("sweep") == sweep:
        (folder / CLAIM_NAME).unlink(missing_ok=True)
