"""Where path_table spends its time: each SQL statement it runs, timed, plus cProfile.

python benchmarks/profile_path_table.py benchmarks/data/events_1e6.parquet
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import time

from journeylab.core import sql as engine
from journeylab.journeys import build as journeys


class _TimedCursor:
    """Forward everything to a DuckDB cursor; time each execute()."""

    log: list = []

    def __init__(self, cursor):
        self._cursor = cursor

    def execute(self, sql, *args, **kwargs):
        t0 = time.perf_counter()
        out = self._cursor.execute(sql, *args, **kwargs)
        head = " ".join(str(sql).split())[:100]
        _TimedCursor.log.append((time.perf_counter() - t0, head))
        return out

    def sql(self, sql, *args, **kwargs):
        # a lazy relation: its time shows under the caller (cProfile), not here
        head = " ".join(str(sql).split())[:100]
        _TimedCursor.log.append((0.0, "(lazy) " + head))
        return self._cursor.sql(sql, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._cursor, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._cursor.close()


def main(path: str) -> None:
    plain = engine.cursor
    engine.cursor = lambda: _TimedCursor(plain())  # every cursor journeys.build opens
    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    profiler.enable()
    from journeylab.datasets import sample_stage_map

    table = journeys.path_table(path, conversion="booking_completed", stage_map=sample_stage_map())
    profiler.disable()
    total = time.perf_counter() - t0
    print(f"path_table: {len(table)} paths in {total:.2f} s")
    for seconds, head in sorted(_TimedCursor.log, reverse=True)[:8]:
        print(f"{seconds:7.2f} s  {seconds / total:5.1%}  {head}")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(14)


if __name__ == "__main__":
    main(sys.argv[1])
