"""Free memory handed back to the system after large work."""

from __future__ import annotations

import subprocess
import sys

import pytest

from journeylab.core.memory import (
    ARROW_POOL_ENV,
    _malloc_trim,
    arrow_pool_name,
    kernel_arrow_pool,
    release_free_memory,
)

_FREED_HEAP = """
import ctypes
from journeylab.core.memory import release_free_memory

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1])

blocks = [libc.malloc(2048) for _ in range(100_000)]  # about 200 MiB on the heap
for b in blocks:
    ctypes.memset(b, 1, 2048)
for i, b in enumerate(blocks):
    if i % 64:  # a few blocks stay in use, so the freed pages lie between them
        libc.free(b)
held = rss()
release_free_memory()
print(held, rss())
"""


@pytest.mark.skipif(_malloc_trim() is None, reason="no malloc_trim in this C library")
def test_memory_freed_on_the_c_heap_goes_back_to_the_system():
    done = subprocess.run(
        [sys.executable, "-c", _FREED_HEAP], capture_output=True, text=True, check=True
    )
    held, after = map(int, done.stdout.split())
    page_mib = 4096 / 2**20
    assert (held - after) * page_mib > 150  # most of the 197 MiB freed is returned


def test_releasing_free_memory_keeps_what_is_in_use():
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    numbers = pa.array(np.arange(1_000_000))
    kept = pc.add(numbers, 1)  # allocated in Arrow's pool
    dropped = pc.add(numbers, 2)
    del dropped
    release_free_memory()
    assert kept.to_numpy()[-1] == 1_000_000
    assert pa.total_allocated_bytes() >= kept.nbytes


_POOL_IN_A_PROCESS = """
import pyarrow as pa
from journeylab.core.memory import arrow_pool_name, prefer_arrow_pool
prefer_arrow_pool()
print(pa.default_memory_pool().backend_name, arrow_pool_name())
"""


def _run_with_pool(script: str, named: str | None, cwd=None) -> list[str]:
    """Run ``script`` in a fresh Python whose environment names Arrow pool ``named`` (or none)."""
    import os

    env = {k: v for k, v in os.environ.items() if k != ARROW_POOL_ENV}
    if named:
        env[ARROW_POOL_ENV] = named
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env, cwd=cwd
    )
    return done.stdout.split()


@pytest.mark.parametrize("named", [None, "system"])
def test_journeylab_processes_use_its_arrow_pool_unless_the_environment_names_one(named):
    default, ours = _run_with_pool(_POOL_IN_A_PROCESS, named)
    assert default == (named or ours)


_LOADER_POOL = """
import pyarrow as pa
from journeylab.io.loaders import load_events
rows = pa.table({"user_id": ["u1", "u2"] * 50_000, "timestamp": ["2026-01-01T00:00:00Z"] * 100_000,
                 "event": ["a", "b"] * 50_000})
import pyarrow.parquet as pq
pq.write_table(rows, "events.parquet")
load_events("events.parquet")
print(pa.jemalloc_memory_pool().max_memory())
"""


@pytest.mark.skipif(arrow_pool_name() != "jemalloc", reason="this pyarrow has no jemalloc pool")
def test_the_loader_takes_the_pool_the_environment_names(tmp_path):
    # the most jemalloc held: none when the environment names the system pool
    assert int(_run_with_pool(_LOADER_POOL, "system", tmp_path)[-1]) == 0
    assert int(_run_with_pool(_LOADER_POOL, None, tmp_path)[-1]) > 0


def test_the_report_kernel_is_told_the_arrow_pool(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from journeylab.reports.runner import _Run

    run = SimpleNamespace(
        tmp=tmp_path, root=tmp_path, secrets=SimpleNamespace(environment=dict), say=print
    )
    monkeypatch.delenv(ARROW_POOL_ENV, raising=False)
    assert _Run.kernel_environment(run)[ARROW_POOL_ENV] == arrow_pool_name()
    monkeypatch.setenv(ARROW_POOL_ENV, "system")
    assert _Run.kernel_environment(run)[ARROW_POOL_ENV] == "system"


def test_an_unknown_pool_name_is_said_and_replaced(monkeypatch):
    said = []
    monkeypatch.setenv(ARROW_POOL_ENV, "bogus")
    assert kernel_arrow_pool(said.append) == arrow_pool_name()
    assert len(said) == 1 and "'bogus'" in said[0] and "jemalloc, mimalloc, system" in said[0]
    monkeypatch.setenv(ARROW_POOL_ENV, " System ")
    assert kernel_arrow_pool(said.append) == "system" and len(said) == 1
