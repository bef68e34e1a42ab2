"""One benchmark case, timed in its own process.

``python benchmarks/cases.py CASE DATA [--option value]`` runs ``CASE`` once
on the event log ``DATA`` and prints one JSON line: ``seconds`` (wall clock
of the measured work, reading the data included), ``peak_rss`` (bytes, the
process's peak resident set, from ``resource.getrusage``; for cases that run
a command, the largest child's) and ``rows`` (size of the answer, a sanity
check). The harness ``run.py`` calls it; peers that need another Python
(retentioneering) run under that interpreter.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import json
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
COLUMNS = ["user_id", "timestamp", "event", "channel", "value"]
CONVERSION = "booking_completed"
FUNNEL_STEPS = ["site_visit", "booking_started", "booking_completed"]
LOOKBACK = pd.Timedelta("30D")
CASES: dict = {}


def case(name):
    def register(func):
        CASES[name] = func
        return func

    return register


def _stages():
    """The stage map of the benchmark data (the sample's: the library has no default)."""
    from journeylab.datasets import sample_stage_map

    return sample_stage_map()


def _rules() -> dict:
    """The journey rules every journeylab case is given."""
    return {"conversion": CONVERSION, "stage_map": _stages()}


def _parquet_files(data: str) -> list[str]:
    path = Path(data)
    return sorted(str(p) for p in path.glob("*.parquet")) if path.is_dir() else [str(path)]


def _read(data: str, columns=COLUMNS) -> pd.DataFrame:
    return pd.read_parquet(data, columns=columns)


# -- floor ----------------------------------------------------------------------------
@case("floor")
def floor(data: str, **_) -> int:
    """Read the path-table columns and group once by user id in DuckDB (the lower bound)."""
    import duckdb

    con = duckdb.connect()
    files = ", ".join(f"'{f}'" for f in _parquet_files(data))
    out = con.execute(
        f"""SELECT user_id, count(event), max("timestamp"), count(channel), sum(value)
            FROM read_parquet([{files}]) GROUP BY user_id"""
    ).to_arrow_table()
    return out.num_rows


# -- events -> path table ---------------------------------------------------------------
def _memory_limit(limit: str | None) -> None:
    if limit:
        # cap journeylab's DuckDB memory (it spills to disk past it)
        from journeylab.core import sql as engine

        engine.configure(memory_limit=limit)


@case("journeylab_path_table")
def jl_path_table(data: str, memory_limit: str | None = None, **_) -> int:
    """journeylab.journeys.build.path_table straight from the Parquet file(s) (out of core)."""
    from journeylab.journeys.build import path_table

    _memory_limit(memory_limit)
    files = _parquet_files(data)
    return len(path_table(files if len(files) > 1 else files[0], **_rules()))


@case("journeylab_path_table_relation")
def jl_path_table_relation(data: str, memory_limit: str | None = None, **_) -> int:
    """path_table on a lazy DuckDB relation from journeylab.io.loaders.events_relation."""
    import duckdb

    from journeylab.io.loaders import events_relation
    from journeylab.journeys.build import path_table

    _memory_limit(memory_limit)
    con = duckdb.connect()
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    # a folder of chunks as one DuckDB glob
    source = str(Path(data) / "*.parquet") if Path(data).is_dir() else data
    rel = events_relation(source, con=con)
    return len(path_table(rel, **_rules()))


@case("journeylab_path_table_frame")
def jl_path_table_frame(data: str, **_) -> int:
    """Read the events into pandas, then path_table on the in-memory frame."""
    from journeylab.journeys.build import path_table

    return len(path_table(_read(data), **_rules()))


@case("journeylab_path_table_in_memory")
def jl_path_table_in_memory(data: str, **_) -> int:
    """path_table on a pandas frame already in memory (the pd.read_parquet before it is not timed)."""
    from journeylab.journeys.build import path_table

    frame = _read(data)
    t0 = time.perf_counter()
    out = path_table(frame, **_rules())
    _clock.start = t0
    return len(out)


def _touch_events() -> list[str]:
    """The sample's default touches: events in a stage before the conversion's."""
    sm = _stages()
    conv_stage = sm.index(sm.stage_of(CONVERSION))
    return [
        e for e in sm.event_names() if e != CONVERSION and sm.index(sm.stage_of(e)) < conv_stage
    ]


@case("pandas_path_table")
def pandas_path_table(data: str, **_) -> int:
    """Idiomatic pandas: sort, number journeys, groupby(...).apply one journey at a time."""
    ev = _read(data)
    period_end = ev["timestamp"].max()
    touches = _touch_events()
    ev = ev[(ev["event"] == CONVERSION) | (ev["event"].isin(touches) & ev["channel"].notna())]
    ev = ev.sort_values(["user_id", "timestamp"], kind="stable")
    ev["is_conv"] = ev["event"] == CONVERSION
    ev["journey"] = ev.groupby("user_id")["is_conv"].cumsum() - ev["is_conv"]

    def journey(g: pd.DataFrame) -> pd.Series:
        conv = g[g["is_conv"]]
        steps = g[~g["is_conv"]]
        converted = len(conv) > 0
        end = conv["timestamp"].iloc[0] if converted else steps["timestamp"].iloc[-1]
        kept = steps.loc[steps["timestamp"] >= end - LOOKBACK, "channel"]
        path = tuple(k for k, _ in itertools.groupby(kept)) or ("(direct)",)
        censored = not converted and end >= period_end - LOOKBACK
        return pd.Series(
            {
                "path": path,
                "converted": converted,
                "value": conv["value"].fillna(0).sum(),
                "censored": censored,
            }
        )

    journeys = ev.groupby(["user_id", "journey"], sort=False).apply(journey)
    journeys = journeys[~journeys["censored"].astype(bool)]
    journeys["converted"] = journeys["converted"].astype(bool)
    table = journeys.groupby("path").agg(
        conversions=("converted", "sum"),
        value=("value", "sum"),
        non_conversions=("converted", lambda s: int((~s).sum())),
    )
    return len(table.reset_index().sort_values(["conversions", "non_conversions"], ascending=False))


# -- funnel and transitions --------------------------------------------------------------
@case("journeylab_funnel")
def jl_funnel(data: str, **_) -> int:
    """journeylab.journeys.funnels.funnel over three steps (strict order, 30-day window)."""
    from journeylab.journeys.funnels import funnel

    return len(
        funnel(_parquet_files(data)[0], FUNNEL_STEPS, window="30D", stage_map=_stages()).to_frame()
    )


@case("journeylab_transitions")
def jl_transitions(data: str, **_) -> int:
    """journeylab.journeys.flows.transitions between events (every non-conversion event a state)."""
    from journeylab.journeys.flows import transitions

    return len(transitions(_parquet_files(data)[0], level="event", **_rules()).to_frame())


def _eventstream(data: str):
    from retentioneering import Eventstream

    ev = pd.read_parquet(data, columns=["user_id", "timestamp", "event"])
    return Eventstream(
        ev, schema={"path_cols": ["user_id"], "event_col": "event", "timestamp_col": "timestamp"}
    )


@case("retentioneering_funnel")
def rete_funnel(data: str, **_) -> int:
    """retentioneering 5: event stream, then ``funnel_data`` over the same steps."""
    stream = _eventstream(data)
    return len(stream.funnel_data(steps=FUNNEL_STEPS))


@case("retentioneering_transitions")
def rete_transitions(data: str, **_) -> int:
    """retentioneering 5: event stream, then ``transition_graph_data`` (transition counts)."""
    stream = _eventstream(data)
    return len(stream.transition_graph_data(edge_weight="count"))


# -- attribution -------------------------------------------------------------------------
def _paths(data: str) -> pd.DataFrame:
    """The path table of ``data``, cached next to it (input to the attribution cases).

    Also imports pandas' Arrow string layer (``pyarrow.pandas_compat``), which pandas
    loads on the first Arrow-backed string column: the ChannelAttribution cases load it
    before their clock starts, while joining their string paths, and imports are
    excluded from every timing. ``pyarrow.vendored.version`` is the module pandas
    imports on the first Arrow-backed string index (the channel index of the answers).
    """
    import pyarrow.pandas_compat  # noqa: F401
    import pyarrow.vendored.version  # noqa: F401

    cache = Path(data).with_suffix(".paths.pkl")
    if cache.exists():
        return pd.read_pickle(cache)
    from journeylab.journeys.build import path_table

    table = path_table(data, **_rules())
    table.to_pickle(cache)
    return table


@case("journeylab_markov")
def jl_markov(data: str, order: int = 1, **_) -> int:
    """journeylab exact Markov removal effects (absorbing chain, order k)."""
    from journeylab.attribution import attribute

    paths = _paths(data)
    t0, _clock.cpu_start = time.perf_counter(), time.process_time()
    out = attribute(paths, models=["markov"], order=int(order)).to_frame()
    _clock.start = t0
    return len(out)


def _ca_frame(paths: pd.DataFrame) -> pd.DataFrame:
    frame = paths.copy()
    frame["path"] = [" > ".join(p) for p in frame["path"]]
    return frame


@case("channelattribution_markov")
def ca_markov(data: str, order: int = 1, **_) -> int:
    """ChannelAttribution.markov_model (order k, default simulation settings)."""
    import ChannelAttribution as ca

    frame = _ca_frame(_paths(data))
    t0, _clock.cpu_start = time.perf_counter(), time.process_time()
    out = ca.markov_model(
        frame,
        "path",
        "conversions",
        var_value="value",
        var_null="non_conversions",
        order=int(order),
        verbose=False,
        flg_pro=False,
    )
    _clock.start = t0
    return len(out)


def _coded_paths(data: str):
    """The coded path table of ``data`` (``path_table(..., coded=True)``), cached next to it.

    Like :func:`_paths` (whose frame is read back with its text column names), it
    leaves the process with pandas' Arrow string layer in use before any clock
    starts: the first Arrow-backed string array of a process costs about 1 ms
    once, which the ChannelAttribution cases pay while making their string paths,
    before their clock.
    """
    import pickle

    import pyarrow.pandas_compat  # noqa: F401
    import pyarrow.vendored.version  # noqa: F401

    cache = Path(data).with_suffix(".coded_paths.pkl")
    if cache.exists():
        table = pickle.loads(cache.read_bytes())
    else:
        from journeylab.journeys.build import path_table

        table = path_table(data, coded=True, **_rules())
        cache.write_bytes(pickle.dumps(table))
    pd.Index(list(table.channels))
    return table


def _time_heuristics(paths) -> int:
    from journeylab.attribution import attribute

    t0, _clock.cpu_start = time.perf_counter(), time.process_time()
    out = attribute(paths, models=["first_touch", "last_touch", "linear"]).to_frame()
    _clock.start = t0
    return len(out)


@case("journeylab_heuristics")
def jl_heuristics(data: str, **_) -> int:
    """journeylab first touch, last touch and linear credit on the coded path table.

    The table ``path_table(..., coded=True)`` returns: paths as integer codes, as
    journeylab's own pipeline hands them to attribution (ChannelAttribution gets
    its own input, paths as ``"a > b"`` text).
    """
    return _time_heuristics(_coded_paths(data))


@case("journeylab_heuristics_frame")
def jl_heuristics_frame(data: str, **_) -> int:
    """The same on the path table as a frame (paths as tuples of names, read and checked)."""
    return _time_heuristics(_paths(data))


@case("channelattribution_heuristics")
def ca_heuristics(data: str, **_) -> int:
    """ChannelAttribution.heuristic_models (first, last, linear)."""
    import ChannelAttribution as ca

    frame = _ca_frame(_paths(data))
    t0, _clock.cpu_start = time.perf_counter(), time.process_time()
    out = ca.heuristic_models(frame, "path", "conversions", var_value="value", flg_pro=False)
    _clock.start = t0
    return len(out)


@case("journeylab_bootstrap")
def jl_bootstrap(data: str, order: int = 1, **_) -> int:
    """journeylab default models (rule-based, Markov order k, Shapley), 200 journey bootstraps."""
    from journeylab.attribution import attribute

    paths = _paths(data)
    t0, _clock.cpu_start = time.perf_counter(), time.process_time()
    out = attribute(paths, n_boot=200, order=int(order), progress=False).to_frame()
    _clock.start = t0
    return len(out)


# -- CLV ---------------------------------------------------------------------------------
def _histories(n: int, seed: int = 1) -> pd.DataFrame:
    """Simulate ``n`` BG/NBD customer histories (CDNOW-like parameters), cached."""
    cache = HERE / "data" / f"bgnbd_{n}.parquet"
    if cache.exists():
        return pd.read_parquet(cache)
    rng = np.random.default_rng(seed)
    r, alpha, a, b = 0.24, 4.41, 0.79, 2.43
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    T = rng.uniform(27, 39, n).round()  # weeks observed
    t = np.zeros(n)
    x = np.zeros(n, dtype=np.int64)
    last = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    while alive.any():
        t[alive] += rng.exponential(1 / lam[alive])
        alive &= t < T
        x[alive] += 1
        last[alive] = t[alive]
        alive &= rng.random(n) >= p  # drops out after a purchase with probability p
    frame = pd.DataFrame({"frequency": x, "recency": np.round(last, 2), "T": T})
    frame.to_parquet(cache)
    return frame


@case("journeylab_bgnbd")
def jl_bgnbd(data: str, customers: int = 1_000_000, **_) -> int:
    """journeylab.clv.models.BetaGeo().fit on simulated customer histories."""
    from journeylab.clv.models import BetaGeo

    summary = _histories(int(customers))
    t0 = time.perf_counter()
    model = BetaGeo().fit(summary)
    _clock.start = t0
    _clock.extra = {k: float(v) for k, v in model.params_.items()}
    return len(summary)


@case("lifetimes_bgnbd")
def lifetimes_bgnbd(data: str, customers: int = 1_000_000, **_) -> int:
    """lifetimes.BetaGeoFitter().fit on the same histories."""
    from lifetimes import BetaGeoFitter

    summary = _histories(int(customers))
    t0 = time.perf_counter()
    model = BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["T"])
    _clock.start = t0
    _clock.extra = {k: float(v) for k, v in model.params_.items()}
    return len(summary)


# -- experiments -------------------------------------------------------------------------
def _segment_counts(segments: int, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = rng.integers(2_000, 20_000, size=(segments, 2))
    base = rng.uniform(0.02, 0.2, segments)
    x = rng.binomial(n, np.c_[base, base * rng.uniform(0.9, 1.2, segments)])
    return pd.DataFrame({"x_c": x[:, 0], "n_c": n[:, 0], "x_t": x[:, 1], "n_t": n[:, 1]})


@case("journeylab_ab_segments")
def jl_ab_segments(data: str, segments: int = 1000, **_) -> int:
    """journeylab.experiments.compare_proportions per segment (z-test, Newcombe CI, relative lift)."""
    from journeylab.experiments.frequentist import compare_proportions

    counts = _segment_counts(int(segments))
    t0 = time.perf_counter()
    out = [
        compare_proportions(xc, nc, xt, nt).p_value
        for xc, nc, xt, nt in counts.itertuples(index=False)
    ]
    _clock.start = t0
    return len(out)


@case("statsmodels_ab_segments")
def sm_ab_segments(data: str, segments: int = 1000, **_) -> int:
    """statsmodels per segment: proportions_ztest, Newcombe CI of the difference, ratio CI."""
    from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

    counts = _segment_counts(int(segments))
    t0 = time.perf_counter()
    out = []
    for xc, nc, xt, nt in counts.itertuples(index=False):
        _, p = proportions_ztest([xt, xc], [nt, nc])
        confint_proportions_2indep(xt, nt, xc, nc, method="newcomb", compare="diff")
        confint_proportions_2indep(xt, nt, xc, nc, method="log", compare="ratio")
        out.append(p)
    _clock.start = t0
    return len(out)


# -- report end to end -------------------------------------------------------------------
@case("journeylab_report")
def jl_report(data: str, window_months: int = 0, **_) -> int:
    """``journeylab report monthly_report`` on ``data`` (a month of events), as a command.

    ``window_months`` > 0: the bundled sample's project file with its events read from
    ``data`` by a query that keeps that many months up to the report month (so the
    trend, retention and quality counts cover those months only).
    The runner's per-section times (its log on standard error) go into ``extra``.
    """
    out = HERE / "results" / "report"
    source = ["--data", data]
    if window_months:
        source = ["--config", str(_window_project(data, window_months, out))]
    cmd = [
        str(Path(sys.executable).with_name("journeylab")),
        "report",
        "monthly_report",
        "--month",
        REPORT_MONTH,
        *source,
        "--out",
        str(out),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr[-2000:])
    _clock.extra = {"sections": _section_times(done.stderr)}
    return 1


REPORT_MONTH = "2026-10"


def _window_project(data: str, months: int, folder: Path) -> Path:
    """The bundled project file, its events the last ``months`` months of ``data`` (a query)."""
    import yaml

    import journeylab.datasets

    start = pd.Period(REPORT_MONTH, freq="M") - (months - 1)
    project = yaml.safe_load(
        Path(journeylab.datasets.__file__).with_name("home_services.yaml").read_text()
    )
    file = str(Path(data).resolve()).replace("'", "''")
    project["data"] = {
        "events": {
            "query": f"SELECT * FROM read_parquet('{file}') "
            f"WHERE \"timestamp\" >= TIMESTAMPTZ '{start.start_time:%Y-%m-%d} 00:00:00+00'"
        }
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"journeylab_last_{months}_months.yaml"
    path.write_text(yaml.safe_dump(project, sort_keys=False, allow_unicode=True))
    return path


def _section_times(log: str) -> dict[str, float]:
    """Seconds per section (and per other timed stage) from the runner's log lines."""
    times = {}
    for line in log.splitlines():
        match = re.search(r"\]\s+(.+?):? (?:in )?(\d+(?:\.\d+)?)s\)?$", line)
        if match and "slowest" not in line:
            times[match.group(1).strip(" (")] = float(match.group(2))
    return times


# -- init + check -----------------------------------------------------------------------
@case("journeylab_init_check")
def jl_init_check(data: str, **_) -> int:
    """``journeylab init --data DATA`` then ``journeylab check`` on the file it wrote, as commands."""
    import tempfile

    exe = str(Path(sys.executable).with_name("journeylab"))
    with tempfile.TemporaryDirectory() as folder:
        project = str(Path(folder) / "journeylab.yaml")
        for cmd in (
            [exe, "init", "--data", str(Path(data).resolve()), "--out", project],
            [exe, "check", project],
        ):
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(done.stderr[-2000:] or done.stdout[-2000:])
    return 1


PRELOAD = {
    "journeylab": [
        "duckdb",
        "journeylab.datasets",
        "journeylab.journeys.build",
        "journeylab.io.loaders",
        "journeylab.journeys.funnels",
        "journeylab.journeys.flows",
        "journeylab.attribution",
        "journeylab.clv.models",
        "journeylab.experiments.frequentist",
    ],
    "floor": ["duckdb"],
    "channelattribution": ["ChannelAttribution"],
    "lifetimes": ["lifetimes"],
    "statsmodels": ["statsmodels.stats.proportion"],
    "retentioneering": ["retentioneering"],
}


class _clock:
    start: float | None = None
    #: process CPU time at the start of the measured work (cases that record it)
    cpu_start: float | None = None
    extra: dict = {}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("data")
    parser.add_argument("--order", type=int, default=1)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--segments", type=int, default=1000)
    parser.add_argument("--memory-limit", default=None)
    parser.add_argument("--window-months", type=int, default=0)
    args = parser.parse_args(argv)
    # imports are not part of the measured work (they cost seconds on a loaded machine)
    for module in PRELOAD.get(args.case.split("_")[0], []):
        importlib.import_module(module)
    t0 = time.perf_counter()
    rows = CASES[args.case](
        args.data,
        order=args.order,
        customers=args.customers,
        segments=args.segments,
        memory_limit=args.memory_limit,
        window_months=args.window_months,
    )
    seconds = time.perf_counter() - (_clock.start or t0)
    cpu = None if _clock.cpu_start is None else time.process_time() - _clock.cpu_start
    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    print(
        json.dumps(
            {
                "case": args.case,
                "seconds": seconds,
                "peak_rss": max(self_rss, child_rss),
                "rows": rows,
                **({"cpu_seconds": cpu} if cpu is not None else {}),
                **({"extra": _clock.extra} if _clock.extra else {}),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
