"""What loading less of a report month would cost: one measurement per call, in this process.

    python benchmarks/profile_report_month.py window benchmarks/data/month_1e7.parquet \
        --start 2026-09-01 --end 2026-11-01
    python benchmarks/profile_report_month.py part benchmarks/data/month_1e7.parquet --parts 8
    python benchmarks/profile_report_month.py aggregate benchmarks/data/month_1e7.parquet
    python benchmarks/profile_report_month.py duplicates benchmarks/data/month_1e7.parquet

- ``window``: ``load_events`` with ``start``/``end`` pushed down to DuckDB (``--columns``
  reads only those columns; de-duplication then sees narrower rows).
- ``part``: ``load_events`` on one of ``--parts`` user parts (``hash(user_id)``).
- ``aggregate``: count, distinct users and value sum per month and event over the file.
- ``duplicates``: the loader's near-duplicate rule in SQL (the time since the previous
  event of the same user, event, channel and value, by time then file row, at most one
  second) and the groups of repeated user, time and event (where exact duplicates can
  be), with ``memory_limit='3GB'``.

Prints the rows, the wall time, the quality steps (for loads), the peak RSS
(``resource``) and the load average.
"""

from __future__ import annotations

import argparse
import os
import resource
import time


def _peak() -> str:
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["window", "part", "aggregate", "duplicates"])
    parser.add_argument("file")
    parser.add_argument("--start", default="2026-09-01")
    parser.add_argument("--end", default="2026-11-01")
    parser.add_argument("--columns", nargs="+", help="window: read only these columns")
    parser.add_argument("--parts", type=int, default=8)
    args = parser.parse_args(argv)
    import duckdb

    from journeylab.datasets.sample import sample_project
    from journeylab.io import loaders

    scan = f"read_parquet('{args.file}')"
    started = time.perf_counter()
    loaded = None
    if args.what == "window" and args.columns:
        names = ", ".join(f'"{c}"' for c in args.columns)
        loaded = loaders.load_events(
            None,
            query=f"SELECT {names} FROM {scan} WHERE \"timestamp\" >= '{args.start}' "
            f"AND \"timestamp\" < '{args.end}'",
            stage_map=sample_project().stage_map,
        )
    elif args.what == "window":
        loaded = loaders.load_events(
            args.file, start=args.start, end=args.end, stage_map=sample_project().stage_map
        )
    elif args.what == "part":
        loaded = loaders.load_events(
            None,
            query=f"SELECT * FROM {scan} WHERE hash(user_id) % {args.parts} = 0",
            stage_map=sample_project().stage_map,
        )
    elif args.what == "aggregate":
        rows = duckdb.sql(
            "SELECT date_trunc('month', timezone('UTC', \"timestamp\")) AS month, event, "
            f"count(*), count(DISTINCT user_id), sum(value) FROM {scan} GROUP BY ALL"
        ).fetchall()
        print(f"{len(rows)} month and event groups")
    else:
        con = duckdb.connect()
        con.execute("SET memory_limit = '3GB'; SET preserve_insertion_order = false")
        repeated = con.execute(
            f'SELECT count(*) FROM (SELECT user_id, "timestamp", event FROM {scan} '
            "GROUP BY ALL HAVING count(*) > 1)"
        ).fetchone()[0]
        near = con.execute(
            "SELECT count(*) FILTER (gap <= INTERVAL 1 SECOND) FROM ("
            '  SELECT "timestamp" - lag("timestamp") OVER ('
            '    PARTITION BY user_id, event, channel, value ORDER BY "timestamp", file_row_number'
            f"  ) AS gap FROM read_parquet('{args.file}', file_row_number=true))"
        ).fetchone()[0]
        print(f"groups of repeated user, time and event: {repeated:,}; near duplicates: {near:,}")
    seconds = time.perf_counter() - started
    if loaded is not None:
        steps = loaded.quality.to_frame()
        print(f"{len(loaded.frame):,} rows kept")
        print(steps[["step", "rows"]].to_string(index=False))
    print(f"{args.what}: {seconds:.1f} s, peak RSS {_peak()}, load {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
