"""The report folders on disk: one lock per report, crash-safe publishing, recovery.

Private helpers of :mod:`journeylab.reports.runner`. The rules:

1. **One run at a time** per report and month: :func:`hold_lock` takes an
   operating-system lock (``fcntl.flock``) on ``.<notebook>.lock``; the lock
   dies with its process, so a crashed run never blocks the next one, and a
   lock file that exists but holds no pid yet is *held*, not stale (the pid
   is written only once the lock is taken, and is for messages only).
2. **A run writes only into** ``.<notebook>.tmp-<pid>/`` beside the report.
   Every file is written atomically (:func:`write_atomic`: a temporary file,
   fsync, rename), so a crash never leaves half a JSON file.
3. **Publishing swaps folders in one step** (:func:`swap_into_place`): on
   Linux with ``renameat2(RENAME_EXCHANGE)``, so a reader or a crash sees the
   old report or the new one, never none. Where the exchange is not
   available the old folder is renamed aside to ``.<notebook>.previous-<pid>``
   and the new one renamed in; a crash between the two renames leaves the
   old report aside, and step 4 restores it.
4. **Every run starts by recovering** (:func:`recover`, under the lock):
   a missing report is restored from ``.previous-*``; leftovers of runs that
   died (``.tmp-*``, ``.previous-*``, half-written files) are removed, and
   the notebook a killed run left behind is kept as
   ``<notebook>.failed.ipynb`` for diagnosis.

``JOURNEYLAB_TEST_PAUSE_AT=<stage>`` makes a run stop at a named point until
it is killed, and ``JOURNEYLAB_TEST_SWAP=renames`` forces the two-rename
swap; the tests use them to kill real runs at the worst moments.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from journeylab.core.errors import JourneylabError

__all__ = [
    "StoreError",
    "hold_lock",
    "write_atomic",
    "fsync_tree",
    "swap_into_place",
    "recover",
    "Recovery",
    "describe_os_error",
    "pause_point",
    "PAUSE_ENV",
    "SWAP_ENV",
]

PAUSE_ENV = "JOURNEYLAB_TEST_PAUSE_AT"
SWAP_ENV = "JOURNEYLAB_TEST_SWAP"
_PARTIAL = ".partial-"
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class StoreError(JourneylabError, RuntimeError):
    """The report folder cannot be used (locked by another run, unwritable, full)."""


# -- lock -------------------------------------------------------------------------


@contextlib.contextmanager
def hold_lock(path: Path) -> Iterator[None]:
    """Hold the operating-system lock on ``path`` for the duration of the block.

    Raises
    ------
    StoreError
        When another process holds it (naming that process's pid when it has
        written it yet).
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            who = f"pid {holder}" if holder else "a process that is just starting"
            raise StoreError(
                f"another run of this report and month is in progress ({who}, lock {path})."
            ) from None
        # A finishing holder unlinks the file before releasing it: make sure the
        # lock we hold is on the file that the path names now.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)


# -- writing ----------------------------------------------------------------------


def write_atomic(path: Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file, fsync and rename.

    A crash leaves the old file or the new one, never part of one; on any
    error (a full disk) the temporary file is removed and the error raised.
    """
    path = Path(path)
    partial = path.with_name(f".{path.name}{_PARTIAL}{os.getpid()}")
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            view = memoryview(payload)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise
    return path


def fsync_tree(folder: Path) -> None:
    """Flush every file of ``folder`` and the folder itself to disk."""
    for item in Path(folder).rglob("*"):
        if item.is_file():
            fd = os.open(item, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def describe_os_error(exc: OSError, what: str) -> str:
    """Say what an operating-system error means for a report run, and what to do."""
    where = f" ({exc.filename})" if exc.filename else ""
    if exc.errno in _DISK_FULL:
        return (
            f"no space left on the device while {what}{where}: free some space (or pass --out on "
            "another disk) and run again"
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"not allowed to write while {what}{where}: {exc.strerror}; check the folder's permissions"
    return f"{exc.strerror or exc} while {what}{where}"


# -- publishing -------------------------------------------------------------------


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with ``renameat2(RENAME_EXCHANGE)``; False if unsupported."""
    if not sys.platform.startswith("linux") or os.environ.get(SWAP_ENV) == "renames":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(code, os.strerror(code), str(b))


def swap_into_place(tmp: Path, final: Path, say=lambda line: None) -> None:
    """Put the finished run folder ``tmp`` at ``final``; the previous report goes away.

    The folder is flushed to disk first. With an existing report the two
    folders are exchanged in one system call where possible; otherwise the
    old one is renamed aside to ``.<name>.previous-<pid>`` and restored if
    the second rename fails (and by :func:`recover` if the process dies in
    between).
    """
    fsync_tree(tmp)
    if not final.exists():
        pause_point("before-publish", say)
        os.rename(tmp, final)
    elif _exchange(tmp, final):
        # tmp now holds the previous report
        pause_point("after-exchange", say)
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        backup = final.with_name(f".{final.name}.previous-{os.getpid()}")
        os.rename(final, backup)
        pause_point("between-renames", say)
        try:
            os.rename(tmp, final)
        except OSError:
            os.rename(backup, final)
            raise
        shutil.rmtree(backup, ignore_errors=True)
    _fsync_dir(final.parent)


# -- recovery ---------------------------------------------------------------------


def _pid_of(path: Path) -> int | None:
    tail = path.name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None


@dataclass
class Recovery:
    """What :func:`recover` repaired: one note per repair, and whether a killed run's notebook was kept."""

    notes: list[str] = field(default_factory=list)
    kept_failed_notebook: bool = False


def recover(month_dir: Path, name: str, failed_copy: Path) -> Recovery:
    """Repair what crashed runs of this report left behind.

    Call it while holding the report's lock (no other run of this report
    and month is alive then, so every leftover is a dead run's).
    """
    done = Recovery()
    notes = done.notes
    if not month_dir.is_dir():
        return done
    final = month_dir / name
    previous = sorted(month_dir.glob(f".{name}.previous-*"), key=lambda p: p.stat().st_mtime)
    if not final.exists() and previous:
        keep = previous.pop()
        os.rename(keep, final)
        notes.append(
            f"restored the report that a run killed while publishing (pid {_pid_of(keep)}) had set aside"
        )
    for leftover in previous:
        shutil.rmtree(leftover, ignore_errors=True)
        notes.append(f"removed {leftover.name}, the previous report a finished swap had left")
    temps = sorted(month_dir.glob(f".{name}.tmp-*"), key=lambda p: p.stat().st_mtime)
    for tmp in temps:
        executed = tmp / "executed.ipynb"
        if executed.is_file() and tmp is temps[-1] and was_redacted(executed):
            # Saved by the redacting writer during the run: safe to keep for diagnosis.
            os.replace(executed, failed_copy)
            done.kept_failed_notebook = True
            notes.append(
                f"a run (pid {_pid_of(tmp)}) died before finishing: its notebook is kept as "
                f"{failed_copy.name}"
            )
        shutil.rmtree(tmp, ignore_errors=True)
        notes.append(f"removed {tmp.name}, the unfinished folder of a run that died")
    for partial in month_dir.glob(f".*{_PARTIAL}*"):
        with contextlib.suppress(OSError):
            partial.unlink()
    return done


# -- test hook --------------------------------------------------------------------


def pause_point(stage: str, say=lambda line: None) -> None:
    """Stop here until killed when ``$JOURNEYLAB_TEST_PAUSE_AT`` names ``stage`` (tests only)."""
    if os.environ.get(PAUSE_ENV) != stage:
        return
    say(f"paused at {stage} ({PAUSE_ENV})")
    print(f"journeylab: paused at {stage}", file=sys.stderr, flush=True)
    while True:  # pragma: no cover - ends by a signal
        time.sleep(3600)


#: The notebook metadata key the redacting writer marks its files with (see journeylab.reports.redaction).
REDACTION_MARKER = "journeylab"


def was_redacted(path: Path) -> bool:
    """Tell whether a notebook file was saved by the redacting writer (see :class:`RedactedOutput`)."""
    try:
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(nb.get("metadata", {}).get(REDACTION_MARKER, {}).get("redacted"))
