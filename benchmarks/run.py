"""Benchmark journeylab against the libraries analysts would otherwise use.

    python benchmarks/run.py --sizes 1e5 1e6 1e7 --repeat 3
    python benchmarks/run.py --only markov heuristics --repeat 3
    python benchmarks/run.py --only out_of_core --sizes 1e8 --repeat 1
    python benchmarks/run.py --only report --sizes 1e7 --repeat 1   # a 10^7-event month

Every case runs in its own process (``cases.py``), ``--repeat`` times, in
the same run as its peers and on the same cached data (``gen.py``); the
table reports medians, events per second, the peak resident set and the
ratio of each row's time to journeylab's in the same comparison (> 1: the
peer is slower). Raw measurements are appended to ``results/runs.jsonl``
and the table is written to ``results/table.md``.

Peers come from ``requirements-peers.txt``. retentioneering brings a large
stack of its own, so it lives in a separate virtual environment (``--peers-python``,
default ``benchmarks/.peers/bin/python``); the rest share the project's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from gen import generate, label  # noqa: E402

RESULTS = HERE / "results"

#: comparison -> (rows: (case, extra arguments), what the sizes mean)
COMPARISONS = {
    "path_table": [
        ("floor", []),
        ("journeylab_path_table", []),
        ("journeylab_path_table_frame", []),
        ("journeylab_path_table_in_memory", []),
        ("pandas_path_table", []),
    ],
    "funnel": [("journeylab_funnel", []), ("retentioneering_funnel", [])],
    "transitions": [("journeylab_transitions", []), ("retentioneering_transitions", [])],
    "markov": [
        (f"{tool}_markov", ["--order", str(k)])
        for k in (1, 2, 3)
        for tool in ("journeylab", "channelattribution")
    ],
    "heuristics": [
        ("journeylab_heuristics", []),
        ("journeylab_heuristics_frame", []),
        ("channelattribution_heuristics", []),
    ],
    "bootstrap": [("journeylab_bootstrap", ["--order", str(k)]) for k in (1, 3)],
    "bgnbd": [("journeylab_bgnbd", []), ("lifetimes_bgnbd", [])],
    "ab_segments": [("journeylab_ab_segments", []), ("statsmodels_ab_segments", [])],
    "report": [("journeylab_report", [])],
    # the same report, its events read from the month and the one before only
    "report_window": [("journeylab_report", ["--window-months", "2"])],
    "init_check": [("floor", []), ("journeylab_init_check", [])],
    "out_of_core": [
        ("floor", []),
        ("journeylab_path_table", ["--memory-limit", "5GB"]),
        ("journeylab_path_table_relation", ["--memory-limit", "5GB"]),
    ],
}
#: comparisons that run on one fixed input rather than on every size
FIXED = {
    "markov": 10**6,
    "heuristics": 10**6,
    "bootstrap": 10**6,
    "bgnbd": 10**6,
    "ab_segments": 10**6,
}
#: event counts of the report month the ``report`` comparison runs on (the 10**6 month
#: unless ``--only report --sizes`` names these)
REPORT_SIZES = (10**6, 10**7)


def _python_for(case: str, peers_python: str) -> str:
    return peers_python if case.startswith("retentioneering") else sys.executable


def run_case(case: str, extra: list[str], data: Path, python: str, timeout: float) -> dict:
    """Run one case in a fresh process; return its measurement (or the error)."""
    cmd = [python, str(HERE / "cases.py"), case, str(data), *extra]
    env = {
        **os.environ,
        "TQDM_DISABLE": "1",
        "PYTHONWARNINGS": "ignore",
        "RETENTIONEERING_NO_TRACK": "1",
    }
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"case": case, "error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"case": case, "error": tail[0][:300]}
    return json.loads(lines[-1])


def _report_month(size: int) -> Path:
    """A Parquet log whose month 2026-10 holds about ``size`` events.

    Up to the 10**7 log's own October (1.6 M events), a share of that log's users
    (all six months of each); above it, copies of the 10**7 log with user and session
    ids prefixed ``c00``, ``c01``, ... (as ``gen.py`` stacks the 10**8 log), the last
    copy cut to a share of its users, so that October holds about ``size`` events.
    """
    path = HERE / "data" / f"month_{label(size)}.parquet"
    if path.exists():
        return path
    import duckdb

    base = generate(10**7)
    con = duckdb.connect()
    oct_events = con.execute(
        f"SELECT count(*) FROM read_parquet('{base}') "
        "WHERE \"timestamp\" >= '2026-10-01' AND \"timestamp\" < '2026-11-01'"
    ).fetchone()[0]
    copies = size / oct_events
    if copies <= 1:
        query = (
            f"SELECT * FROM read_parquet('{base}') "
            f"WHERE hash(user_id) % 1000000 < {int(copies * 1e6)}"
        )
    else:
        parts = []
        for k in range(int(-(-copies // 1))):
            share = min(1.0, copies - k)
            keep = "" if share >= 1 else f" WHERE hash(user_id) % 1000000 < {int(share * 1e6)}"
            parts.append(
                f"SELECT 'c{k:02d}' || user_id AS user_id, "
                "* EXCLUDE (user_id, session_id, transaction_id), "
                f"'c{k:02d}' || session_id AS session_id, transaction_id "
                f"FROM read_parquet('{base}'){keep}"
            )
        query = " UNION ALL ".join(parts)
    tmp = path.with_suffix(".tmp")
    con.execute(f"COPY ({query}) TO '{tmp}' (FORMAT parquet, ROW_GROUP_SIZE 1000000)")
    tmp.rename(path)
    return path


def _format_bytes(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def table(records: list[dict]) -> str:
    """Markdown table of medians per (comparison, size, case), with the ratio to journeylab."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["comparison"], r["size"], r["case"], r.get("variant", "")), []).append(
            r
        )
    rows = []
    medians = {}
    order = list(COMPARISONS)
    for key, runs in sorted(groups.items(), key=lambda kv: (order.index(kv[0][0]), kv[0][1])):
        ok = [r for r in runs if "seconds" in r]
        med = statistics.median(r["seconds"] for r in ok) if ok else None
        medians[key] = med
        rows.append((key, ok, runs, med))
    lines = [
        "| comparison | input | tool | median s | events/s | peak RSS | time ÷ journeylab's | runs | load |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for (comp, size, case, variant), ok, runs, med in rows:
        jl_keys = [
            k
            for k in medians
            if k[0] == comp
            and k[1] == size
            and k[3] == variant
            and k[2].startswith("journeylab")
            and "frame" not in k[2]
            and "relation" not in k[2]
        ]
        ref = medians[jl_keys[0]] if jl_keys else None
        rate = (
            f"{size / med:,.0f}"
            if med and comp in ("path_table", "funnel", "transitions", "out_of_core")
            else ""
        )
        rss = _format_bytes(max(r["peak_rss"] for r in ok)) if ok else ""
        ratio = f"{med / ref:.2f}" if med and ref else ""
        shown = (
            f"{med:.3g}"
            if med is not None
            else "failed: " + runs[0].get("error", "")[:120].replace("|", "/")
        )
        what = (
            f"{label(size)} events"
            if comp not in ("bgnbd", "ab_segments")
            else ("10^6 customers" if comp == "bgnbd" else "1,000 segments")
        )
        if comp in ("markov", "heuristics", "bootstrap"):
            what = f"path table of {label(size)} events"
        if comp in ("report", "report_window"):
            what = f"10^{len(str(size)) - 1}-event month"
            if comp == "report_window":
                what += ", that month and the one before read"
        tool = case + (f" ({variant})" if variant else "")
        load = statistics.median(r["load"] for r in runs)
        lines.append(
            f"| {comp} | {what} | {tool} | {shown} | {rate} | {rss} | {ratio} | {len(ok)}/{len(runs)} | {load:.1f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        nargs="+",
        help="event counts, e.g. 1e5 1e6 1e7 (default); the report runs on the 10^6 month "
        "unless --only names it and --sizes gives 1e6 and/or 1e7",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--only",
        nargs="+",
        choices=sorted(COMPARISONS),
        help="comparisons to run (default: all but out_of_core)",
    )
    parser.add_argument(
        "--skip", nargs="*", default=[], help="cases to leave out, e.g. pandas_path_table@1e7"
    )
    parser.add_argument(
        "--timeout", type=float, default=1800, help="seconds before a case is stopped"
    )
    parser.add_argument("--peers-python", default=str(HERE / ".peers" / "bin" / "python"))
    parser.add_argument(
        "--table", metavar="RUNS_JSONL", help="only rebuild results/table.md from recorded runs"
    )
    parser.add_argument(
        "--runs",
        default=str(RESULTS / "runs.jsonl"),
        help="file the measurements are appended to (default results/runs.jsonl)",
    )
    args = parser.parse_args(argv)
    if args.table:
        records = [
            json.loads(line) for line in Path(args.table).read_text().splitlines() if line.strip()
        ]
        loads = [r["load"] for r in records]
        text = (
            f"Runs {records[0]['started']} to {records[-1]['started']}, {os.cpu_count()} cores, load average "
            f"{min(loads):.1f}–{max(loads):.1f} during the runs.\n\n" + table(records)
        )
        (RESULTS / "table.md").write_text(text + "\n")
        print(text)
        return 0
    sizes = [int(float(s)) for s in args.sizes or ["1e5", "1e6", "1e7"]]
    chosen = args.only or [c for c in COMPARISONS if c != "out_of_core"]
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    records = []
    for comp in chosen:
        comp_sizes = [FIXED[comp]] if comp in FIXED else sizes
        if comp in ("report", "report_window"):
            # the 10^7 month (62 M events) only when asked for by name, with --only report
            # --sizes 1e7: reading all its six months does not fit in memory yet
            asked = args.sizes if args.only else None
            comp_sizes = [s for s in sizes if asked and s in REPORT_SIZES] or [10**6]
        for size in comp_sizes:
            data = _report_month(size) if comp.startswith("report") else generate(size)
            for rep in range(args.repeat):
                for case, extra in COMPARISONS[comp]:
                    if f"{case}@{label(size)}" in args.skip or case in args.skip:
                        continue
                    python = _python_for(case, args.peers_python)
                    if not Path(python).exists():
                        result = {
                            "case": case,
                            "error": f"{python} not found (see requirements-peers.txt)",
                        }
                    else:
                        result = run_case(case, extra, data, python, args.timeout)
                    variant = (
                        " ".join(extra).replace("--", "").replace("memory-limit ", "memory_limit=")
                    )
                    result.update(
                        comparison=comp,
                        size=size,
                        variant=variant,
                        repetition=rep,
                        started=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                        load=os.getloadavg()[0],
                    )
                    records.append(result)
                    with open(args.runs, "a") as fh:
                        fh.write(json.dumps(result) + "\n")
                    shown = f"{result['seconds']:.3f} s" if "seconds" in result else result["error"]
                    print(
                        f"{comp:12} {label(size):4} {case:34} {variant:22} #{rep + 1}: {shown} "
                        f"(load {result['load']:.1f})",
                        flush=True,
                    )
    text = (
        f"Run {stamp}, {os.cpu_count()} cores, load average at the end {os.getloadavg()[0]:.1f}.\n\n"
        + table(records)
    )
    (RESULTS / "table.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
