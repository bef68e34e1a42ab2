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
- ``duplicates``: the loader's de-duplication in SQL, with ``memory_limit='3GB'``: exact
  duplicates (rows equal in every column, or in ``--columns`` within the window) compared
  only within the groups of repeated user, time and event, then near duplicates among
  the rest (the time since the previous event of the same user, event, channel and
  value, by time then file row, at most one second).

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
    parser.add_argument(
        "--columns", nargs="+", help="window, duplicates: only these columns, in the window"
    )
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
        names = args.columns or [
            c[0] for c in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()
        ]
        every = ", ".join(f'"{c}"' for c in names)
        window = f"\"timestamp\" >= '{args.start}' AND \"timestamp\" < '{args.end}'"
        rows = (
            f"SELECT {every}, file_row_number FROM read_parquet('{args.file}', "
            f"file_row_number=true)" + (f" WHERE {window}" if args.columns else "")
        )
        con.execute(f"CREATE TEMP VIEW source AS {rows}")
        # exact duplicates can only be among rows repeating user, time and event
        con.execute(
            'CREATE TEMP TABLE repeated AS SELECT user_id, "timestamp", event FROM source '
            "GROUP BY ALL HAVING count(*) > 1"
        )
        con.execute(
            "CREATE TEMP TABLE exact AS SELECT file_row_number FROM ("
            f"  SELECT file_row_number, row_number() OVER (PARTITION BY {every} "
            "  ORDER BY file_row_number) AS nth FROM source SEMI JOIN repeated "
            '  USING (user_id, "timestamp", event)) WHERE nth > 1'
        )
        exact = con.execute("SELECT count(*) FROM exact").fetchone()[0]
        repeated = con.execute("SELECT count(*) FROM repeated").fetchone()[0]
        near = con.execute(
            "SELECT count(*) FILTER (gap <= INTERVAL 1 SECOND) FROM ("
            '  SELECT "timestamp" - lag("timestamp") OVER ('
            '    PARTITION BY user_id, event, channel, value ORDER BY "timestamp", file_row_number'
            "  ) AS gap FROM source ANTI JOIN exact USING (file_row_number))"
        ).fetchone()[0]
        print(
            f"groups of repeated user, time and event: {repeated:,}; "
            f"exact duplicates: {exact:,}; near duplicates: {near:,}"
        )
    seconds = time.perf_counter() - started
    if loaded is not None:
        steps = loaded.quality.to_frame()
        print(f"{len(loaded.frame):,} rows kept")
        print(steps[["step", "rows"]].to_string(index=False))
    print(f"{args.what}: {seconds:.1f} s, peak RSS {_peak()}, load {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
