"""Small logs read without DuckDB give exactly what the DuckDB path gives.

:mod:`journeylab.journeys.arrow_events` reads logs of up to ``SMALL_ROWS``
rows with pyarrow; funnels and transitions then count over NumPy arrays. Each
property runs both paths (``SMALL_ROWS = -1`` forces DuckDB) on generated
logs with tied timestamps, missing values, repeated events and tight windows,
from a frame and from a Parquet file, and compares results, settings, counts
of what was left out, and errors.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeylab.core.errors import JourneylabError
from journeylab.core.stages import StageMap
from journeylab.journeys import arrow_events
from journeylab.journeys.arrow_events import read_events, sorted_rows
from journeylab.journeys.flows import transitions
from journeylab.journeys.funnels import funnel

STAGES = StageMap.from_dict(
    {
        "stages": [
            {"name": "aware", "events": ["ad", "visit"]},
            {"name": "intent", "events": ["cart"]},
            {"name": "buy", "events": ["order"]},
        ]
    }
)
EVENTS = ["ad", "visit", "cart", "order", "it's", None]
BASE = pd.Timestamp("2026-03-01", tz="UTC").value // 1000

row = st.tuples(
    st.sampled_from(["u1", "u2", "u3", "ü4", None]),
    # few distinct instants: many ties; microsecond offsets and gaps of days
    st.sampled_from([0, 1, 60_000_000, 3_600_000_000, 86_400_000_000, 5 * 86_400_000_000, None]),
    st.sampled_from(EVENTS),
    st.sampled_from(["email", "social", "o'neil", None]),
)
logs = st.lists(row, min_size=0, max_size=60) | st.lists(row, min_size=20, max_size=80)


def _frame(rows: list[tuple], integer_users: bool = False) -> pd.DataFrame:
    users = [r[0] for r in rows]
    if integer_users:
        users = pd.array([None if u is None else ord(u[-1]) for u in users], dtype="Int64")
    times = [None if r[1] is None else BASE + r[1] + i % 3 for i, r in enumerate(rows)]
    return pd.DataFrame(
        {
            "user_id": pd.Series(users, dtype="Int64" if integer_users else "object"),
            "timestamp": pd.to_datetime(
                pd.Series(times, dtype="Int64").astype("float"), unit="us", utc=True
            ),
            "event": pd.Series([r[2] for r in rows], dtype="object"),
            "channel": pd.Series([r[3] for r in rows], dtype="object"),
        }
    )


def _both(call, source):
    """Run ``call(source)`` read without DuckDB, then through DuckDB; return both outcomes."""
    out = []
    for limit in (arrow_events.SMALL_ROWS, -1):
        saved, arrow_events.SMALL_ROWS = arrow_events.SMALL_ROWS, limit
        try:
            out.append(("ok", *call(source)))
        except JourneylabError as exc:
            out.append(("error", type(exc).__name__, str(exc)))
        finally:
            arrow_events.SMALL_ROWS = saved
    return out


def _same(a, b) -> None:
    assert a[0] == b[0], (a, b)
    if a[0] == "error":
        assert a == b
        return
    pd.testing.assert_frame_equal(a[1], b[1], check_exact=True)
    assert a[2:] == b[2:]


def _sources(rows: list[tuple], as_file: bool, integer_users: bool = False):
    frame = _frame(rows, integer_users)
    if not as_file:
        return frame, None
    folder = tempfile.TemporaryDirectory()
    path = Path(folder.name) / "log.parquet"
    frame.to_parquet(path, index=False)
    return str(path), folder


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=logs,
    steps=st.sampled_from(
        [["ad", "cart", "order"], [["ad", "visit"], "order"], {"first": "cart", "again": "cart"}]
    ),
    window=st.sampled_from(["1s", "1h", "2D", "30D"]),
    order=st.sampled_from(["strict", "any"]),
    bounds=st.sampled_from([(None, None), ("2026-03-01 00:01", None), (None, "2026-03-02")]),
    as_file=st.booleans(),
    integer_users=st.booleans(),
    staged=st.booleans(),
)
def test_funnel_small_log_matches_duckdb(
    rows, steps, window, order, bounds, as_file, integer_users, staged
):
    source, folder = _sources(rows, as_file, integer_users)

    def call(src):
        r = funnel(
            src, steps, window=window, order=order, start=bounds[0], end=bounds[1],
            stage_map=STAGES if staged else None,
        )  # fmt: skip
        return r.to_frame(), r.settings, r.left_out, r.notes

    fast, slow = _both(call, source)
    _same(fast, slow)
    if folder is not None:
        folder.cleanup()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=logs,
    level=st.sampled_from(["event", "channel", "stage"]),
    collapse=st.booleans(),
    censored=st.booleans(),
    options=st.sampled_from(
        [
            {},
            {"lookback": "1h"},
            {"lookback": "2D", "max_touches": 2},
            {"period_end": "2026-03-02"},
            {"start": "2026-03-01 12:00", "period_end": "2026-03-07"},
            {"touch_events": ["ad", "visit"]},
            {"touch_events": "all", "conversion": ["order", "cart"]},
        ]
    ),
    as_file=st.booleans(),
)
def test_transitions_small_log_matches_duckdb(rows, level, collapse, censored, options, as_file):
    source, folder = _sources(rows, as_file)
    options = {"conversion": "order", **options}

    def call(src):
        r = transitions(
            src, level=level, collapse_repeats=collapse, include_censored=censored,
            stage_map=STAGES, **options,
        )  # fmt: skip
        return r.to_frame(), r.settings

    fast, slow = _both(call, source)
    _same(fast, slow)
    if folder is not None:
        folder.cleanup()


def test_small_logs_are_read_without_duckdb(tmp_path):
    frame = _frame([("u1", 0, "ad", "email"), ("u2", 1, "order", None), (None, None, None, None)])
    a = read_events(frame, stage_map=STAGES)
    assert a is not None
    assert a.event_names == ["ad", "order"]  # in stage order
    assert a.channel_names == ["email"]
    assert a.user.tolist() == [0, 1, -1] and a.has_t.tolist() == [True, True, False]
    frame.to_parquet(tmp_path / "log.parquet", index=False)
    assert read_events(str(tmp_path / "log.parquet"), stage_map=STAGES) is not None
    # what DuckDB reads its own way goes to DuckDB
    assert read_events(str(tmp_path / "*.parquet"), stage_map=STAGES) is None
    assert read_events(frame, stage_map=STAGES, max_rows=2) is None
    assert read_events(frame.assign(event=[1, 2, 3]), stage_map=STAGES) is None
    nanos = frame.assign(timestamp=frame["timestamp"] + pd.Timedelta(1, "ns"))
    assert read_events(nanos, stage_map=STAGES) is None
    assert read_events(frame.drop(columns="event"), stage_map=STAGES) is None


@pytest.mark.parametrize("seconds", [False, True])
def test_sorted_rows_orders_by_user_time_and_keys(seconds):
    rng = np.random.default_rng(7)
    n = 500
    user = rng.integers(0, 20, n)
    t = rng.integers(0, 50, n) * (1_000_000 if seconds else 7) + 10**15
    k = rng.integers(0, 4, n)
    rows = sorted_rows(np.arange(n), user, 20, t, keys=[(k, 4)])
    got = list(zip(user[rows], t[rows], k[rows], strict=True))
    assert got == sorted(got)
    # too wide for one integer key: the same order by lexsort
    rows = sorted_rows(np.arange(n), user, 2**40, t, keys=[(k, 4)])
    assert list(zip(user[rows], t[rows], k[rows], strict=True)) == sorted(got)
