"""Loader worker processes that end with the process that started them.

A worker forked by a ``DataLoader`` inherits its parent's open files, the run folder's lock
(:func:`janus.train.locking.run_lock`) among them. Torch's workers notice a dead parent only
between tasks, so after ``kill -9`` a worker busy decoding images could hold that lock, and
keep every later run of the folder out, for many minutes. On Linux the kernel kills them
instead (``prctl(PR_SET_PDEATHSIG, SIGKILL)``).
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

PR_SET_PDEATHSIG = 1
"""``prctl`` option of Linux: the signal a process gets when its parent ends."""


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine; a zombie (ended, not yet reaped) does
    not. Where it cannot be told (another user's process without ``/proc``), True."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:  # ended just now, or no /proc on this system
        return not Path("/proc/self/stat").exists()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def die_with_parent(parent: int, worker_id: int) -> None:
    """``worker_init_fn``: on Linux, have the kernel kill this worker (SIGKILL) when the
    process that started it ends, even by SIGKILL; end at once if ``parent`` already has.
    Elsewhere nothing changes (torch's own check of the parent remains)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # no prctl here: keep torch's behaviour
        return
    if not process_alive(parent):  # it ended before prctl took effect
        os._exit(1)


def worker_init() -> Callable[[int], None]:
    """The ``worker_init_fn`` for a loader made in this process (picklable)."""
    return functools.partial(die_with_parent, os.getpid())
