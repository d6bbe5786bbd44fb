"""The lock of a run folder: one process at a time writes a run's record and checkpoint."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path

from janus.core.errors import RunBusyError
from janus.core.results import write_error

LOCK_NAME = ".lock"


class LockUnavailableWarning(UserWarning):
    """The file system of a run folder cannot lock files (``flock`` is off)."""


@contextlib.contextmanager
def run_lock(out_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``out_dir`` (``.lock``, released when the process ends), so
    that two processes never write the same record and checkpoint. Folders made only for the
    lock are removed again if the run wrote nothing (e.g. its data were missing)."""
    import fcntl  # POSIX

    made = [d for d in (out_dir, *out_dir.parents) if not d.exists()]
    lock = out_dir / LOCK_NAME
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        handle = open(lock, "a+")  # closed by the with below
    except OSError as err:
        raise write_error(out_dir, err) from None
    with handle:
        locked = True
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunBusyError(
                f"another process is running {out_dir}; wait for it to finish, or stop it and "
                f"pass --resume to continue from its last finished task"
            ) from None
        except OSError as err:  # flock off on this file system (ENOSYS, ENOLCK, EOPNOTSUPP)
            locked = False
            warnings.warn(LockUnavailableWarning(
                f"cannot lock {lock} ({err.strerror}): this file system has no flock, so "
                f"nothing stops a second process from running the same folder; `janus sweep` "
                f"keeps runs apart with claim files instead"), stacklevel=3)
        try:
            yield
        finally:
            if made and [p.name for p in out_dir.iterdir()] == [LOCK_NAME]:
                lock.unlink()
                with contextlib.suppress(OSError):  # not empty: another run wrote there
                    for d in made:
                        d.rmdir()
            if locked:
                fcntl.flock(handle, fcntl.LOCK_UN)


def lock_held(out_dir: Path) -> bool:
    """Whether a process holds ``out_dir``'s run lock (:func:`run_lock`) now."""
    import fcntl  # POSIX

    try:
        handle = open(out_dir / LOCK_NAME)
    except FileNotFoundError:
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:  # no flock on this file system: cannot tell
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False
