"""The kernel of a report run: started with the run's environment, stopped on SIGTERM.

A SIGTERM while the kernel runs kills the kernel (the run then fails like one
whose kernel died); outside kernel execution it raises :class:`_Interrupted`;
during the final swap it is only noted, since the swap is one step. ``run`` is the
runner's run: its ``kernel_environment()``, ``stopped_by``, ``publishing`` and ``kill_kernel()``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from typing import Any


def _kernel_manager_class(run: Any) -> type:
    """Return a kernel manager class that starts kernels with the run's environment.

    The manager registers itself on the run, so a SIGTERM can kill the kernel. The
    kernel talks over IPC sockets in a private temporary folder (mode 0700), not over
    localhost TCP: no other user of the machine can connect to it or read its traffic.
    """
    from jupyter_client.manager import AsyncKernelManager

    class ReportKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw: Any) -> None:
            kw["env"] = run.kernel_environment()
            run.kernel_manager = self
            self._socket_dir = tempfile.mkdtemp(prefix="journeylab-kernel-")
            self.transport = "ipc"
            self.ip = os.path.join(self._socket_dir, "kernel")
            await super().start_kernel(**kw)

        async def _async_cleanup_resources(self, restart: bool = False) -> None:
            await super()._async_cleanup_resources(restart=restart)
            if not restart and getattr(self, "_socket_dir", None):
                shutil.rmtree(self._socket_dir, ignore_errors=True)

        cleanup_resources = _async_cleanup_resources

    return ReportKernelManager


class _Interrupted(Exception):
    """Raised by the SIGTERM handler outside kernel execution."""


@contextlib.contextmanager
def _stop_on_signal(run: Any) -> Iterator[None]:
    """Turn SIGTERM into a failed run that keeps its notebook (main thread only).

    While the kernel runs, the handler kills the kernel (the run then fails
    like one whose kernel died); otherwise it raises :class:`_Interrupted`.
    During the final swap it only takes note: the swap is one step and the
    report it publishes is complete.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if run.stopped_by:
            return
        run.stopped_by = signal.Signals(signum).name
        if run.publishing:
            return
        if run.kill_kernel():
            return
        raise _Interrupted(run.stopped_by)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
