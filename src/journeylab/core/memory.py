"""Giving memory the process no longer uses back to the operating system.

pandas, NumPy and Arrow free memory into their allocators, which keep much of
it for later: after a large log is loaded (read, sorted, de-duplicated and
copied once in order) the process can hold half as much memory again as its
rows need. :func:`release_free_memory` hands that back, so the peak of the
work that follows starts from the rows, not from the loading's leftovers.
"""

from __future__ import annotations

import ctypes
import functools
import sys
from collections.abc import Callable

__all__ = ["release_free_memory"]


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """Return the C library's ``malloc_trim`` (glibc), or None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return None


def release_free_memory() -> None:
    """Return the free memory held by Arrow's pool and by the C allocator to the system.

    Nothing is freed that is in use; the next allocations are fresh pages.
    """
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
