"""Giving memory the process no longer uses back to the operating system.

pandas, NumPy and Arrow free memory into their allocators, which keep much of
it for later: after a large log is loaded (read, sorted, de-duplicated and
copied once in order) the process can hold half as much memory again as its
rows need. :func:`release_free_memory` hands that back, so the peak of the
work that follows starts from the rows, not from the loading's leftovers.

Which allocator Arrow uses matters as much. pyarrow's wheels default to
mimalloc; copying a two-month, 20 M-event log out of DuckDB into it took 5.5 s
of the loading, and 1.8 s into Arrow's jemalloc pool, whose loading also
peaked 0.6 GiB lower (one process each, same file). :func:`arrow_pool` is the
pool the loader allocates from; :func:`prefer_arrow_pool` makes it Arrow's
default in a process journeylab runs (the ``journeylab`` command and the
report's kernel), unless ``ARROW_DEFAULT_MEMORY_POOL`` already chooses one.
"""

from __future__ import annotations

import ctypes
import functools
import sys
from collections.abc import Callable

__all__ = [
    "ARROW_POOLS",
    "ARROW_POOL_ENV",
    "arrow_pool",
    "arrow_pool_name",
    "kernel_arrow_pool",
    "prefer_arrow_pool",
    "release_free_memory",
]

#: Arrow's own environment variable naming its default memory pool.
ARROW_POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """Return the C library's ``malloc_trim`` (glibc), or None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return None


@functools.cache
def arrow_pool_name() -> str:
    """Return the name of the Arrow memory pool journeylab allocates from: jemalloc where pyarrow has it."""
    import pyarrow as pa

    try:
        pa.jemalloc_memory_pool()
    except NotImplementedError:  # a pyarrow built without jemalloc (some platforms)
        return pa.default_memory_pool().backend_name
    return "jemalloc"


def arrow_pool():  # -> pyarrow.MemoryPool
    """Return the Arrow memory pool the loader allocates from (see the module's notes).

    Arrow's default pool when ``ARROW_DEFAULT_MEMORY_POOL`` chooses one, else jemalloc
    where pyarrow has it.
    """
    import os

    import pyarrow as pa

    if not os.environ.get(ARROW_POOL_ENV) and arrow_pool_name() == "jemalloc":
        return pa.jemalloc_memory_pool()
    return pa.default_memory_pool()


#: The pools an Arrow build may have, by the names ``ARROW_DEFAULT_MEMORY_POOL`` takes.
ARROW_POOLS = ("jemalloc", "mimalloc", "system")


def kernel_arrow_pool(say=None) -> str:
    """Return the pool name to give a kernel journeylab starts: the environment's, if Arrow knows it.

    An unknown name (which Arrow would only warn about, into the report) is said
    once through ``say`` and replaced by journeylab's pool.
    """
    import os

    named = os.environ.get(ARROW_POOL_ENV, "").strip()
    if named.lower() in ARROW_POOLS:
        return named.lower()
    if named and say is not None:
        say(
            f"{ARROW_POOL_ENV}={named!r} names no Arrow memory pool ({', '.join(ARROW_POOLS)}); "
            f"the report uses {arrow_pool_name()}."
        )
    return arrow_pool_name()


def prefer_arrow_pool() -> None:
    """Make :func:`arrow_pool` Arrow's default pool in this process, unless the environment names one.

    For processes journeylab runs itself; a library call never changes the default.
    """
    import os

    import pyarrow as pa

    if not os.environ.get(ARROW_POOL_ENV):
        pa.set_memory_pool(arrow_pool())


def release_free_memory() -> None:
    """Return the free memory held by Arrow's pools and by the C allocator to the system.

    Nothing is freed that is in use; the next allocations are fresh pages.
    """
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    arrow_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
