"""Generate and cache the benchmark event logs as Parquet under benchmarks/data/.

``python benchmarks/gen.py 1e5 1e6 1e7`` writes ``events_<n>.parquet`` made by
:func:`journeylab.datasets.sample.make_sample` (about 24 events per user) and, for
sizes above ``10**7``, stacks copies of the ``10**7`` log with relabelled user
ids (one file per copy, so the large log is written chunk by chunk).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

DATA = Path(__file__).resolve().parent / "data"
EVENTS_PER_USER = 24.1


def label(n: int) -> str:
    """Return the short name of a size, e.g. ``1e7``."""
    exp = len(str(n)) - 1
    return f"{n // 10**exp}e{exp}"


def events_path(n: int) -> Path:
    """Return the cached Parquet file (or folder, above 10**7) for ``n`` events."""
    return DATA / (f"events_{label(n)}" + (".parquet" if n <= 10**7 else ""))


def generate(n: int) -> Path:
    """Make (or reuse) the event log of about ``n`` events and return its path."""
    from journeylab.datasets.sample import make_sample

    DATA.mkdir(exist_ok=True)
    path = events_path(n)
    if path.exists():
        return path
    if n > 10**7:
        base = generate(10**7)
        path.mkdir()
        for k in range(n // 10**7):
            duckdb.sql(
                f"COPY (SELECT 'c{k:02d}' || user_id AS user_id, * EXCLUDE (user_id, session_id, transaction_id), "
                f"'c{k:02d}' || session_id AS session_id, transaction_id FROM read_parquet('{base}')) "
                f"TO '{path / f'part_{k:02d}.parquet'}' (FORMAT parquet, ROW_GROUP_SIZE 1000000)"
            )
        return path
    t0 = time.perf_counter()
    sample = make_sample(seed=2026, n_users=max(100, round(n / EVENTS_PER_USER)))
    events = sample.events.copy()
    # order numbers for the peers that need a transaction id (booking rows only)
    events["transaction_id"] = range(len(events))
    table = pa.Table.from_pandas(events, preserve_index=False)
    tmp = path.with_suffix(".tmp")
    # microsecond timestamps, as warehouses and Spark write them
    pq.write_table(
        table,
        tmp,
        row_group_size=1_000_000,
        coerce_timestamps="us",
        allow_truncated_timestamps=True,
    )
    tmp.rename(path)
    print(f"{path.name}: {len(events):,} events in {time.perf_counter() - t0:.0f} s", flush=True)
    return path


if __name__ == "__main__":
    for size in sys.argv[1:]:
        generate(int(float(size)))
