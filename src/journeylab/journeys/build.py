"""Sessions, journeys and the path table, with explicit, documented rules.

A *journey* is one user's ordered run of marketing touches that ends either
in a conversion or, when none comes, with the user's last touch. The rules,
applied in this order, are:

1. **Which rows take part.** Conversions are the events named by
   ``conversion`` (required: the project file's ``journey.conversion``). Touches are, by
   default, the events that carry a channel, are not conversions, and belong
   to a stage of the stage map *before* the conversion's stage (events no
   stage lists count too): ad impressions, site visits, phone calls and
   call-backs in the sample, but not on-site jobs or repeat bookings, which
   follow a conversion. Pass ``touch_events=[...]`` to choose them, or
   ``"all"`` for every event that is not a conversion.
   Rows after ``period_end`` (default: the last timestamp in the log) are left
   out and counted; rows without a user id or a timestamp are left out and
   counted. With ``start``, only journeys that *end* (conversion, or last
   touch) on or after ``start`` are kept, the others counted; their earlier
   touches still count under the lookback. ``month="2026-06"`` is shorthand
   for the calendar month in UTC (``start`` = its first instant,
   ``period_end`` = its last): the journeys of a month are those whose end
   falls in it, and those still open at the month's end are censored (rule 6).
2. **Order.** Within a user, rows are ordered by the stable tie-breaker
   ``(timestamp, position of the event in the stage map, event name,
   channel, value)``; events no stage lists come after all listed ones, and a
   missing channel or value sorts last (as :func:`journeylab.io.loaders.sort_events`). Shuffled input with identical timestamps
   therefore always gives one order (DT-2).
3. **Conversions end journeys.** A conversion closes the journey it ends;
   the next touch starts a new journey. Two conversions in a row make the
   second a journey with no touches.
4. **Lookback.** A journey keeps only the touches in the ``lookback`` before
   its end (the conversion, or its last touch when it did not convert).
   Older touches are left out and counted (``outside_lookback``).
5. **Cap.** With ``max_touches=N`` a journey keeps its last ``N`` touches;
   the rest are counted per journey (``truncated_touches``) and in total
   (DT-7: a user with 10,000 events).
6. **Censoring.** A journey with no conversion whose last touch lies within
   ``lookback`` of ``period_end`` is *censored*: it is still open, so it is
   neither a conversion nor a failure, and the path table leaves it out
   unless ``include_censored=True`` (then it counts as not yet converted).
   Either way ``path_table(...).attrs["censoring"]`` records how many
   journeys were open and how many were left out; when leaving them out
   leaves fewer than 30 non-converting journeys, or fewer than 1 % of the
   journeys, it says that data-driven attribution (Markov, Shapley) is not
   identifiable on the table (:func:`censoring_summary`).
7. **Direct conversions.** A conversion with no touch left (none at all, or
   all outside the lookback) counts under the explicit path ``("(direct)",)``.
   A touch without a channel counts as channel ``"(none)"``.

The heavy work runs as SQL in an embedded DuckDB over the pandas frame, a
DuckDB relation or Parquet file(s), so a month that does not fit in pandas
still yields its (small) path table. Every count of what was left out
travels with the result (``Journeys.left_out`` and ``path_table(...).attrs``).
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import pandas as pd

from journeylab.core import sql as engine
from journeylab.core.errors import (
    ParameterError,
    SchemaError,
    check_in,
    did_you_mean,
    require_columns,
)
from journeylab.core.results import Result, fmt_money, fmt_num, fmt_pct
from journeylab.core.sql import quote_ident, quote_list, quote_literal
from journeylab.core.stages import StageMap
from journeylab.core.timeparse import format_time, parse_duration
from journeylab.core.viz import PALETTE, new_axes
from journeylab.io.loaders import event_rank, sort_events
from journeylab.journeys.rules import (
    DIRECT,
    JOURNEY_DEFAULTS,
    NO_CHANNEL,
    NO_STAGE,
    JourneyRules,
    censoring_summary,
    check_journey_options,
)

__all__ = [
    "PATH_COLUMNS",
    "Journeys",
    "build_journeys",
    "censoring_summary",
    "path_table",
    "sessionize",
]

#: The columns of a path table, in order (the interchange format with attribution).
PATH_COLUMNS = ("path", "conversions", "value", "non_conversions")

EventSource = "pd.DataFrame | duckdb.DuckDBPyRelation | str | Path"


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------
def fetch_df(cursor: Any) -> pd.DataFrame:
    """``cursor.df()`` without DuckDB's pandas-3 deprecation warning (it is DuckDB's, not ours)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*inplace keyword.*")
        return cursor.df()


def _micros(delta: pd.Timedelta) -> int:
    return int(delta.value // 1000)


# ---------------------------------------------------------------------------
# opening an event source in DuckDB
# ---------------------------------------------------------------------------
class _Events:
    """An event log opened in a private DuckDB cursor as view ``src``; use it as a context manager.

    ``src`` has the canonical columns typed (``user_id`` VARCHAR,
    ``timestamp`` TIMESTAMPTZ in UTC, ``event`` VARCHAR, ``channel`` VARCHAR,
    ``value`` DOUBLE, and ``session_id`` and any ``keep`` columns when
    present), ``event_rank``, and the integer sort keys ``event_key`` and
    ``channel_key`` of the tie-breaker. ``with _Events(...) as ev:`` closes the
    cursor (and its temporary tables) on the way out; a constructor that fails
    closes it before raising.
    """

    def __init__(
        self,
        source: Any,
        *,
        stage_map: Any = None,
        keep: Sequence[str] = (),
        what: str = "events",
    ) -> None:
        self.con = engine.cursor()
        self.tag = uuid.uuid4().hex[:8]
        try:
            self._open(source, stage_map=stage_map, keep=keep, what=what)
        except BaseException:
            self.con.close()  # nobody gets the half-built object to close it
            raise

    def close(self) -> None:
        """Close the cursor; its temporary tables and registered frames go with it."""
        self.con.close()

    def __enter__(self) -> _Events:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _open(self, source: Any, *, stage_map: Any, keep: Sequence[str], what: str) -> None:
        raw = f"jl_raw_{self.tag}"
        if isinstance(source, pd.DataFrame):
            self.con.register(raw, source)
            self.source_name = "DataFrame"
        elif isinstance(source, duckdb.DuckDBPyRelation):
            # A relation lives in its own connection: stream it (as Arrow
            # batches) into this one, keeping only the columns needed.
            wanted = [
                c
                for c in ("user_id", "timestamp", "event", "channel", "value", "session_id", *keep)
                if c in source.columns
            ]
            require_columns(
                pd.DataFrame(columns=source.columns),
                ("user_id", "timestamp", "event"),
                source="DuckDB relation",
                what=what,
            )
            reader = source.project(
                ", ".join(quote_ident(c) for c in dict.fromkeys(wanted))
            ).to_arrow_reader()
            self.con.register(f"{raw}_reader", reader)
            self.con.execute(f"CREATE TEMP TABLE {raw} AS SELECT * FROM {raw}_reader")
            self.source_name = "DuckDB relation"
        elif isinstance(source, (str, Path)) or (
            isinstance(source, (list, tuple))
            and source
            and all(isinstance(s, (str, Path)) for s in source)
        ):
            paths = [str(p) for p in (source if isinstance(source, (list, tuple)) else [source])]
            self.con.execute(
                f"CREATE TEMP VIEW {raw} AS SELECT * FROM read_parquet({quote_list(paths)})"
            )
            self.source_name = ", ".join(paths)
        else:
            raise ParameterError(
                f"events must be a pandas DataFrame, a DuckDB relation or a Parquet path, "
                f"not {type(source).__name__}."
            )
        columns = [r[0] for r in self.con.execute(f"DESCRIBE {raw}").fetchall()]
        require_columns(
            pd.DataFrame(columns=columns),
            ("user_id", "timestamp", "event"),
            source=self.source_name,
            what=what,
        )
        self.columns = columns
        for col in keep:
            if col not in columns:
                raise SchemaError(
                    f"The events table has no column {col!r}{did_you_mean(col, columns)}.",
                    source=self.source_name,
                    column=col,
                )
        events = [
            r[0]
            for r in self.con.execute(
                f'SELECT DISTINCT CAST("event" AS VARCHAR) FROM {raw}'
            ).fetchall()
        ]
        names = pd.Series([e for e in events if e is not None], dtype="object")
        sm = StageMap.coerce(stage_map)
        self.stage_map = sm
        stages = sm.event_to_stage(names)
        rank_frame = pd.DataFrame(
            {
                "event": names,
                "event_rank": event_rank(names, sm).to_numpy(dtype="int64"),
                "stage_index": pd.array(
                    [sm.index(stages[e]) if stages.get(e) else None for e in names], dtype="Int64"
                ),
            }
        )
        # Integer sort keys equivalent to (stage-map rank, event name) and to the
        # channel name: sorting on them is much cheaper than on the strings.
        rank_frame = rank_frame.sort_values(["event_rank", "event"], kind="stable")
        rank_frame["event_key"] = np.arange(len(rank_frame), dtype="int64")
        self.con.register(f"jl_rank_{self.tag}", rank_frame)
        channel_join, channel_key = "", "CAST(NULL AS BIGINT) AS channel_key"
        if "channel" in columns:
            channels = sorted(
                r[0]
                for r in self.con.execute(
                    f'SELECT DISTINCT CAST("channel" AS VARCHAR) FROM {raw}'
                ).fetchall()
                if r[0] is not None
            )
            self.con.register(
                f"jl_chan_{self.tag}",
                pd.DataFrame(
                    {
                        "channel": pd.Series(channels, dtype="object"),
                        "channel_key": np.arange(len(channels), dtype="int64"),
                    }
                ),
            )
            channel_join = (
                f'LEFT JOIN jl_chan_{self.tag} ch ON CAST(r."channel" AS VARCHAR) = ch.channel'
            )
            channel_key = "ch.channel_key AS channel_key"
        self.other_rank = len(sm.event_names())
        extra = [
            c
            for c in dict.fromkeys(keep)
            if c not in ("user_id", "timestamp", "event", "channel", "value", "session_id")
        ]
        select = [
            'CAST(r."user_id" AS VARCHAR) AS user_id',
            'CAST(r."timestamp" AS TIMESTAMPTZ) AS "timestamp"',
            'CAST(r."event" AS VARCHAR) AS event',
            'CAST(r."channel" AS VARCHAR) AS channel'
            if "channel" in columns
            else "CAST(NULL AS VARCHAR) AS channel",
            'CAST(r."value" AS DOUBLE) AS value'
            if "value" in columns
            else "CAST(NULL AS DOUBLE) AS value",
            'CAST(r."session_id" AS VARCHAR) AS session_id'
            if "session_id" in columns
            else "CAST(NULL AS VARCHAR) AS session_id",
            f"coalesce(k.event_rank, {self.other_rank}) AS event_rank",
            "k.event_key AS event_key",
            channel_key,
            "k.stage_index AS stage_index",
            *[f"r.{quote_ident(c)} AS {quote_ident(c)}" for c in extra],
        ]
        self.con.execute(
            f"CREATE TEMP VIEW src AS SELECT {', '.join(select)} FROM {raw} r "
            f'LEFT JOIN jl_rank_{self.tag} k ON CAST(r."event" AS VARCHAR) = k.event {channel_join}'
        )
        self.has_channel = "channel" in columns

    #: The stable tie-breaker, as an ORDER BY list.
    #: ``event_key`` orders as (stage-map rank, event name); ``channel_key`` as the channel name.
    ORDER = '"timestamp", event_key, channel_key NULLS LAST, value NULLS LAST'

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.con.execute(sql, list(params)).fetchone()[0]

    def df(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        return fetch_df(self.con.execute(sql, list(params)))


# ---------------------------------------------------------------------------
# sessions
# ---------------------------------------------------------------------------
def sessionize(
    events: pd.DataFrame,
    gap: str | pd.Timedelta = "30min",
    *,
    column: str = "session_id",
    overwrite: bool = False,
    stage_map: Any = None,
) -> pd.DataFrame:
    """Give every event a session id by the inactivity-gap rule.

    Within a user, events are ordered by the stable tie-breaker; a new
    session starts at the user's first event and after any silence longer
    than ``gap`` (strictly longer: an event exactly ``gap`` after the
    previous one stays in the session). Session ids are
    ``"<user_id>#<n>"`` with ``n`` counting from 1 per user.

    Parameters
    ----------
    events : pandas.DataFrame
        Event log with ``user_id``, ``timestamp``, ``event``.
    gap : str or Timedelta
        Longest silence inside a session.
    column : str
        Name of the session column to write.
    overwrite : bool
        Replace an existing ``column``; without it an existing one is an error
        (logs that carry their own sessions should keep them).
    stage_map : StageMap, optional
        For the tie-breaker (default: the sample's map).

    Returns
    -------
    pandas.DataFrame
        A copy of ``events`` (same row order) with ``column`` added.

    Examples
    --------
    >>> ev = pd.DataFrame({"user_id": ["a", "a", "a"],
    ...     "timestamp": pd.to_datetime(["2026-01-01 10:00", "2026-01-01 10:20",
    ...                                  "2026-01-01 11:00"], utc=True),
    ...     "event": ["visit"] * 3})
    >>> sessionize(ev)["session_id"].tolist()
    ['a#1', 'a#1', 'a#2']
    """
    require_columns(events, ("user_id", "timestamp", "event"), what="events")
    delta = parse_duration(gap, "gap")
    if column in events.columns and not overwrite:
        raise ParameterError(
            f"The events already have a {column!r} column; pass overwrite=True to replace it "
            "with gap-based sessions, or keep the log's own sessions."
        )
    out = events.copy()
    if out.empty:
        out[column] = pd.Series([], dtype="string", index=out.index)
        return out
    # Same order as journeylab.io.loaders.sort_events; __row maps back to the input rows.
    keyed = pd.DataFrame(
        {
            "user_id": out["user_id"].astype("string"),
            "timestamp": pd.to_datetime(out["timestamp"], utc=True),
            "event": out["event"],
            **{c: out[c] for c in ("channel", "value") if c in out},
            "__row": np.arange(len(out)),
        }
    )
    ordered = sort_events(keyed, stage_map)
    users = ordered["user_id"].to_numpy(dtype=object, na_value=None)
    new_user = np.ones(len(users), dtype=bool)
    new_user[1:] = users[1:] != users[:-1]
    gaps = ordered["timestamp"].diff().gt(delta).to_numpy(dtype=bool, na_value=False)
    number = (
        pd.Series((new_user | gaps).astype("int64"))
        .groupby(ordered["user_id"], sort=False, dropna=False)
        .cumsum()
    )
    ids = np.empty(len(out), dtype=object)
    ids[ordered["__row"].to_numpy()] = (
        ordered["user_id"] + "#" + number.astype("string")
    ).to_numpy(dtype=object, na_value=None)
    out[column] = pd.array(ids, dtype="string")
    return out


# ---------------------------------------------------------------------------
# journeys
# ---------------------------------------------------------------------------
@dataclass(repr=False, eq=False)
class Journeys(Result):
    """Journeys built from an event log.

    Attributes
    ----------
    touches : pandas.DataFrame
        One row per kept touch: ``journey_id``, ``user_id``, ``position``
        (1-based), ``timestamp``, ``channel``, ``event``.
    journeys : pandas.DataFrame
        One row per journey: ``journey_id``, ``user_id``, ``start``, ``end``,
        ``n_touches``, ``converted``, ``value``, ``conversion_time``,
        ``censored``, ``truncated_touches``.
    left_out : dict
        Counts of what the rules left out or set aside (see the module doc).
    settings : dict
        The rules used (conversion, touch events, lookback, period end, cap).
    """

    touches: pd.DataFrame
    journeys: pd.DataFrame
    left_out: dict[str, int] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    title: str = "Journeys"

    def to_frame(self) -> pd.DataFrame:
        """Return the journeys table."""
        return self.journeys

    def path_table(self, **options: Any) -> pd.DataFrame:
        """Return the path table of these journeys (see :func:`path_table`)."""
        return path_table(self, **options)

    def summary(self) -> str:
        """Describe journeys, conversions, censored journeys and everything left out."""
        j = self.journeys
        n = len(j)
        if n == 0:
            return "No journeys: the period holds no touches or conversions."
        conv = int(j["converted"].sum())
        cens = int(j["censored"].sum())
        closed = n - cens
        lines = [
            f"{fmt_count(n)} journeys of {fmt_count(j['user_id'].nunique())} users: "
            f"{fmt_count(conv)} converted ({fmt_pct(conv / closed if closed else float('nan'))} of the "
            f"{fmt_count(closed)} closed journeys, value {fmt_money(float(j['value'].sum()))}), "
            f"{fmt_count(closed - conv)} ended without conversion, {fmt_count(cens)} still open at "
            f"the period end {format_time(self.settings.get('period_end'))} (censored, not counted as failures).",
            f"Touches per journey: median {fmt_num(float(j['n_touches'].median())).removesuffix('.00').removesuffix('.0')}, "
            f"max {fmt_count(j['n_touches'].max())}; "
            f"{fmt_count(self.left_out.get('direct_conversions', 0))} conversions had no touch "
            f"(path '{DIRECT}').",
        ]
        if self.settings.get("month"):
            lines.insert(0, f"Journeys ending in {self.settings['month']} (UTC).")
        elif self.settings.get("start") is not None:
            lines.insert(0, f"Journeys ending from {format_time(self.settings['start'])} on.")
        lines.append("Left out: " + _left_out_text(self.left_out) + ".")
        return "\n".join(lines)

    def display_frame(self) -> pd.DataFrame:
        """Return the first journeys, for the notebook view."""
        return self.journeys.head(20)

    def plot(self, ax=None):
        """Histogram of touches per journey, converted vs not (closed journeys)."""
        ax = new_axes(ax, figsize=(8, 4.5))
        j = self.journeys[~self.journeys["censored"]]
        if j.empty:
            ax.set_title("No closed journeys")
            return ax
        top = int(max(1, np.nanpercentile(j["n_touches"], 99)))
        bins = np.arange(0, top + 2) - 0.5
        conv = j.loc[j["converted"], "n_touches"].clip(upper=top)
        lost = j.loc[~j["converted"], "n_touches"].clip(upper=top)
        ax.hist(
            [conv, lost],
            bins=bins,
            stacked=True,
            color=[PALETTE[2], "#b9b9b9"],
            label=[
                f"converted ({fmt_count(len(conv))})",
                f"not converted ({fmt_count(len(lost))})",
            ],
        )
        ax.set_xlabel(f"touches per journey (last bar: {top} or more)")
        ax.set_ylabel("journeys")
        ax.set_title("Touches per journey")
        ax.legend()
        return ax


def fmt_count(n: float) -> str:
    """Format a count as a whole number with thousands separators (``12,345``)."""
    return f"{int(n):,}"


def _left_out_text(left: dict[str, int]) -> str:
    labels = {
        "outside_lookback": "touches older than the lookback before the journey's end",
        "truncated_touches": "touches beyond max_touches (earliest dropped)",
        "after_period_end": "events after the period end",
        "ended_before_start": "journeys that ended before the period start",
        "incomplete_rows": "rows without user id or timestamp",
        "censored_journeys": "censored journeys (left out of the path table)",
        "no_channel_touches": f"touches without a channel (counted as '{NO_CHANNEL}')",
    }
    parts = [f"{fmt_count(left[k])} {text}" for k, text in labels.items() if left.get(k)]
    return "; ".join(parts) if parts else "nothing"


def _touch_predicate(
    touch_events: Sequence[str] | str | None, conv_sql: str, conv_stage: int | None
) -> str:
    if touch_events is None:
        # Events of the conversion's stage or later (on-site jobs, repeat bookings,
        # reviews) are what follows a conversion, not touches leading to one.
        before = (
            f" AND (stage_index IS NULL OR stage_index < {conv_stage})"
            if conv_stage is not None
            else ""
        )
        return f"(channel IS NOT NULL AND NOT {conv_sql}{before})"
    if isinstance(touch_events, str):
        if touch_events == "all":
            return f"(NOT {conv_sql})"
        touch_events = [touch_events]
    return f"(list_contains({quote_list(list(touch_events))}, event) AND NOT {conv_sql})"


def _build_tables(
    ev: _Events,
    rules: JourneyRules,
    *,
    want_touches: bool = True,
    path_level: str | None = None,
) -> tuple[str | None, str, dict[str, int], dict[str, Any]]:
    """Create temp tables of touches and journeys in ``ev.con``; return their names, counts, settings.

    With ``want_touches=False`` no touches table is made (``start`` is then
    missing); with ``path_level`` the journeys table carries each journey's
    path (kept touches after the cap, repeats not collapsed) as a list.
    """
    conversions = list(rules.conversions)
    first, end = rules.start, rules.period_end
    counted: dict[str, int] | None = None
    if end is None and not want_touches:
        # One scan finds the period end and counts the incomplete rows; no row
        # lies after a period end that is the log's last timestamp.
        micros, incomplete = ev.con.execute(
            'SELECT epoch_us(max("timestamp")), count(*) FILTER (WHERE user_id IS NULL OR "timestamp" IS NULL) FROM src'
        ).fetchone()
        end = pd.Timestamp(int(micros), unit="us", tz="UTC") if micros is not None else None
        counted = {"incomplete_rows": int(incomplete), "after_period_end": 0}
    elif end is None:
        # epoch microseconds: fetching a TIMESTAMPTZ scalar would need pytz
        micros = ev.scalar('SELECT epoch_us(max("timestamp")) FROM src')
        end = pd.Timestamp(int(micros), unit="us", tz="UTC") if micros is not None else None
    conv_sql = f"list_contains({quote_list(conversions)}, event)"
    conv_stages = [ev.stage_map.stage_of(c) for c in conversions]
    conv_stage = min((ev.stage_map.index(st) for st in conv_stages if st), default=None)
    touch_sql = _touch_predicate(rules.touch_events, conv_sql, conv_stage)
    t = ev.tag
    base, rows, agg, touches, journeys = (
        f"jl_{n}_{t}" for n in ("base", "rows", "agg", "touches", "journeys")
    )
    end_param = end if end is not None else pd.Timestamp("2262-01-01", tz="UTC")
    look_us = _micros(rules.lookback)
    cap = rules.max_touches
    con = ev.con
    if not want_touches:
        left_out = _path_journeys(
            ev,
            journeys=journeys,
            conv_sql=conv_sql,
            touch_sql=touch_sql,
            end_param=end_param,
            look_us=look_us,
            cap=cap,
            path_level=path_level,
            counted=counted,
        )
    else:
        left_out = _full_tables(
            ev,
            base=base,
            rows=rows,
            agg=agg,
            touches=touches,
            journeys=journeys,
            conv_sql=conv_sql,
            touch_sql=touch_sql,
            end_param=end_param,
            look_us=look_us,
            cap=cap,
            path_level=path_level,
        )
    before_start = 0
    if first is not None:
        # A journey belongs to the period its end (conversion or last touch) falls
        # in; those that ended earlier go, with their touches.
        before_start = int(
            con.execute(
                f'SELECT count(*) FROM {journeys} WHERE "end" < ?::TIMESTAMPTZ', [first]
            ).fetchone()[0]
        )
        con.execute(f'DELETE FROM {journeys} WHERE "end" < ?::TIMESTAMPTZ', [first])
        if want_touches:
            con.execute(
                f"DELETE FROM {touches} WHERE journey_id NOT IN (SELECT journey_id FROM {journeys})"
            )
    totals = con.execute(
        f"""
        SELECT coalesce(sum(outside_lookback), 0), coalesce(sum(truncated_touches), 0),
               count(*) FILTER (WHERE truncated_touches > 0),
               count(*) FILTER (WHERE converted AND n_touches = 0),
               count(*) FILTER (WHERE censored),
               coalesce(sum(no_channel), 0)
        FROM {journeys}
        """
    ).fetchone()
    left_out.update(
        {
            "outside_lookback": int(totals[0]),
            "truncated_touches": int(totals[1]),
            "truncated_journeys": int(totals[2]),
            "direct_conversions": int(totals[3]),
            "censored_journeys": int(totals[4]),
            "no_channel_touches": int(totals[5]),
            "ended_before_start": before_start,
        }
    )
    settings = rules.settings(end)
    return (touches if want_touches else None), journeys, left_out, settings


def _full_tables(
    ev: _Events,
    *,
    base: str,
    rows: str,
    agg: str,
    touches: str,
    journeys: str,
    conv_sql: str,
    touch_sql: str,
    end_param: pd.Timestamp,
    look_us: int,
    cap: int | None,
    path_level: str | None,
) -> dict[str, int]:
    """Create the touches and journeys tables (with journey ids); return the counts of rows left out."""
    con = ev.con
    want_touches = True
    # One scan of the source: the rows that take part, plus the incomplete ones (to count them).
    con.execute(
        f"""
        CREATE TEMP TABLE {base} AS
        SELECT user_id, "timestamp", event, channel, value, event_key, channel_key, {conv_sql} AS is_conv
        FROM src
        WHERE ({conv_sql} OR {touch_sql}) OR user_id IS NULL OR "timestamp" IS NULL
        """
    )
    counts = con.execute(
        f"""
        SELECT count(*) FILTER (WHERE user_id IS NULL OR "timestamp" IS NULL),
               count(*) FILTER (WHERE user_id IS NOT NULL AND "timestamp" > ?::TIMESTAMPTZ)
        FROM {base}
        """,
        [end_param],
    ).fetchone()
    left_out = {"incomplete_rows": int(counts[0]), "after_period_end": int(counts[1])}
    # Order within a user by the tie-breaker (one sort serves every window
    # below). The journey index is the number of conversions strictly before
    # the row, so a conversion belongs to the journey it closes and the next
    # touch starts a new one. A row's journey ends at the next conversion at or
    # after it ("closing"), or, with none, at the user's last touch; touches
    # more than the lookback before that end are "outside".
    elem_sql, elem_join = _row_element_sql(
        con, ev.stage_map, path_level, f"SELECT DISTINCT event FROM {base}"
    )
    con.execute(
        f"""
        CREATE TEMP TABLE {rows} AS
        WITH w1 AS (
          SELECT user_id, "timestamp", event, channel, value, is_conv, {elem_sql} AS elem,
                 row_number() OVER w AS seq,
                 coalesce(sum(is_conv::INTEGER) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS jidx,
                 min(CASE WHEN is_conv THEN "timestamp" END)
                     OVER (w ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING) AS closing,
                 max(CASE WHEN NOT is_conv THEN "timestamp" END)
                     OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS user_last
          FROM {base} b {elem_join}
          WHERE user_id IS NOT NULL AND "timestamp" IS NOT NULL AND "timestamp" <= ?::TIMESTAMPTZ
          WINDOW w AS (PARTITION BY user_id ORDER BY {ev.ORDER})
        )
        SELECT * EXCLUDE (closing, user_last),
               (NOT is_conv AND "timestamp" < coalesce(closing, user_last) - to_microseconds({look_us}::BIGINT)) AS outside
        FROM w1
        """,
        [end_param],
    )
    kept = "NOT is_conv AND NOT outside"
    path_sql = f", list(elem ORDER BY seq) FILTER (WHERE {kept}) AS path" if path_level else ""
    n_touches = f"least(n_kept, {cap})" if cap is not None else "n_kept"
    con.execute(
        f"""
        CREATE TEMP TABLE {agg} AS
        SELECT row_number() OVER (ORDER BY user_id, jidx) AS journey_id, *,
               {n_touches} AS n_touches
        FROM (
          SELECT user_id, jidx,
                 bool_or(is_conv) AS converted,
                 max("timestamp") FILTER (WHERE is_conv) AS conversion_time,
                 coalesce(sum(coalesce(value, 0)) FILTER (WHERE is_conv), 0)::DOUBLE AS value,
                 max("timestamp") FILTER (WHERE NOT is_conv) AS last_touch,
                 count(*) FILTER (WHERE outside) AS outside_lookback,
                 count(*) FILTER (WHERE {kept}) AS n_kept,
                 count(*) FILTER (WHERE {kept} AND channel IS NULL) AS no_channel
                 {path_sql}
          FROM {rows} GROUP BY user_id, jidx
        )
        """
    )
    if want_touches:
        # The cap keeps the last n_touches of the kept touches.
        con.execute(
            f"""
            CREATE TEMP TABLE {touches} AS
            SELECT * FROM (
              SELECT a.journey_id, r.user_id,
                     (row_number() OVER (PARTITION BY a.journey_id ORDER BY r.seq) - (a.n_kept - a.n_touches))::BIGINT AS position,
                     r."timestamp", coalesce(r.channel, {quote_literal(NO_CHANNEL)}) AS channel, r.event
              FROM {rows} r JOIN {agg} a USING (user_id, jidx)
              WHERE NOT r.is_conv AND NOT r.outside
            ) WHERE position >= 1
            """
        )
        first_join = f'LEFT JOIN (SELECT journey_id, min("timestamp") AS first_touch FROM {touches} GROUP BY journey_id) f USING (journey_id)'
        first_touch = "f.first_touch"
    else:
        first_join, first_touch = "", "NULL::TIMESTAMPTZ"
    path_col = ", a.path[greatest(len(a.path) - a.n_touches, 0) + 1:] AS path" if path_level else ""
    con.execute(
        f"""
        CREATE TEMP TABLE {journeys} AS
        SELECT a.journey_id, a.user_id, a.jidx,
               coalesce({first_touch}, a.conversion_time) AS start,
               coalesce(a.conversion_time, a.last_touch) AS "end",
               a.n_touches, a.converted, a.value, a.conversion_time,
               (NOT a.converted AND a.last_touch >= ?::TIMESTAMPTZ - to_microseconds({look_us}::BIGINT)) AS censored,
               a.n_kept - a.n_touches AS truncated_touches,
               a.outside_lookback, a.no_channel {path_col}
        FROM {agg} a {first_join}
        """,
        [end_param],
    )
    return left_out


def _left_out_counts(
    con: duckdb.DuckDBPyConnection, conv_sql: str, touch_sql: str, end_param: pd.Timestamp
) -> dict[str, int]:
    """Count the rows without user id or timestamp, and the rows after the period end."""
    counts = con.execute(
        f"""
        SELECT count(*) FILTER (WHERE user_id IS NULL OR "timestamp" IS NULL),
               count(*) FILTER (WHERE user_id IS NOT NULL AND "timestamp" > ?::TIMESTAMPTZ)
        FROM src
        WHERE ({conv_sql} OR {touch_sql}) OR user_id IS NULL OR "timestamp" IS NULL
        """,
        [end_param],
    ).fetchone()
    left_out = {"incomplete_rows": int(counts[0]), "after_period_end": int(counts[1])}
    return left_out


def _path_journeys(
    ev: _Events,
    *,
    journeys: str,
    conv_sql: str,
    touch_sql: str,
    end_param: pd.Timestamp,
    look_us: int,
    cap: int | None,
    path_level: str | None,
    counted: dict[str, int] | None = None,
) -> dict[str, int]:
    """Create the journeys table with each journey's path, in one statement; return the counts left out.

    The same rules as :func:`_full_tables`, for the path table only: no touches
    table and no journey ids (numbering journeys would take a global sort), and
    no intermediate tables. A journey's end is its conversion or, without
    one, its last touch, which is the user's last touch: the journey is the
    user's last (rows are ordered by time first).
    """
    con = ev.con
    if counted is not None:
        left_out = dict(counted)
    else:
        left_out = _left_out_counts(con, conv_sql, touch_sql, end_param)
    elem_sql, elem_join = _row_element_sql(
        con,
        ev.stage_map,
        path_level,
        f"SELECT DISTINCT event FROM src WHERE {conv_sql} OR {touch_sql}",
    )
    # One ordered window pass numbers the rows (seq) and the journeys (jidx);
    # the aggregation then gathers each journey's touches as a list and sorts
    # that short list by seq, instead of sorting every row again.
    n_touches = f"least(n_kept, {cap})" if cap is not None else "n_kept"
    touch_list = (
        "list_sort(coalesce(tl, []), 'ASC', 'NULLS LAST')" if path_level else "coalesce(tl, [])"
    )
    path_col = (
        ", list_transform(kl, lambda x: x.e)[greatest(n_kept - n_touches, 0) + 1:] AS path"
        if path_level
        else ""
    )
    con.execute(
        f"""
        CREATE TEMP TABLE {journeys} AS
        WITH w1 AS (
          SELECT user_id, "timestamp", channel, value, is_conv, elem,
                 row_number() OVER w AS seq,
                 coalesce(sum(is_conv::INTEGER) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS jidx
          FROM (
            SELECT b.*, {conv_sql} AS is_conv, {elem_sql} AS elem
            FROM src b {elem_join}
            WHERE ({conv_sql} OR {touch_sql})
              AND user_id IS NOT NULL AND "timestamp" IS NOT NULL AND "timestamp" <= ?::TIMESTAMPTZ
          )
          WINDOW w AS (PARTITION BY user_id ORDER BY {ev.ORDER})
        ), a AS (
          SELECT user_id, jidx,
                 bool_or(is_conv) AS converted,
                 max("timestamp") FILTER (WHERE is_conv) AS conversion_time,
                 coalesce(sum(coalesce(value, 0)) FILTER (WHERE is_conv), 0)::DOUBLE AS value,
                 max("timestamp") FILTER (WHERE NOT is_conv) AS last_touch,
                 list({{'s': seq, 't': "timestamp", 'e': elem, 'n': channel IS NULL}}) FILTER (WHERE NOT is_conv) AS tl
          FROM w1 GROUP BY user_id, jidx
        ), b AS (
          -- A touch is outside the lookback when it is older than the lookback
          -- before its journey's end: the journey's conversion, or without one
          -- its last touch (the journey is then the user's last).
          SELECT * EXCLUDE (tl), len(coalesce(tl, [])) AS n_all,
                 list_filter({touch_list},
                   lambda x: NOT (x.t < coalesce(conversion_time, last_touch) - to_microseconds({look_us}::BIGINT))) AS kl
          FROM a
        ), c AS (
          SELECT *, len(kl) AS n_kept FROM b
        ), d AS (
          SELECT *, {n_touches} AS n_touches FROM c
        )
        SELECT user_id, jidx,
               conversion_time AS start,
               coalesce(conversion_time, last_touch) AS "end",
               n_touches, converted, value, conversion_time,
               (NOT converted AND last_touch >= ?::TIMESTAMPTZ - to_microseconds({look_us}::BIGINT)) AS censored,
               n_kept - n_touches AS truncated_touches,
               n_all - n_kept AS outside_lookback,
               len(list_filter(kl, lambda x: x.n)) AS no_channel {path_col}
        FROM d
        """,
        [end_param, end_param],
    )
    return left_out


def _register_stages(con: duckdb.DuckDBPyConnection, stage_map: StageMap, events_sql: str) -> str:
    """Register a small (event, stage) table for the distinct events ``events_sql`` returns."""
    events = [r[0] for r in con.execute(events_sql).fetchall() if r[0] is not None]
    mapping = stage_map.event_to_stage(events)
    frame = pd.DataFrame(
        {
            "event": list(mapping),
            "stage": [s if s is not None else NO_STAGE for s in mapping.values()],
        },
        dtype="object",
    )
    name = f"jl_stage_{uuid.uuid4().hex[:8]}"
    con.register(name, frame)
    return name


_JOURNEY_COLUMNS = [
    "journey_id",
    "user_id",
    "start",
    "end",
    "n_touches",
    "converted",
    "value",
    "conversion_time",
    "censored",
    "truncated_touches",
]
_TOUCH_COLUMNS = ["journey_id", "user_id", "position", "timestamp", "channel", "event"]


def build_journeys(
    events: Any,
    *,
    conversion: str | Sequence[str] | None = None,
    touch_events: Sequence[str] | Literal["all"] | None = None,
    lookback: str | pd.Timedelta = "30D",
    period_end: Any = None,
    start: Any = None,
    month: str | None = None,
    max_touches: int | None = None,
    stage_map: Any = None,
) -> Journeys:
    """Cut each user's events into journeys by the rules of this module.

    Parameters
    ----------
    events : DataFrame, DuckDB relation or Parquet path(s)
        Event log with ``user_id``, ``timestamp``, ``event`` and usually
        ``channel`` and ``value``.
    conversion : str or list of str
        The event(s) that count as a conversion; the conversion's ``value`` is
        the journey's value (missing values count as 0).
    touch_events : list of str, "all" or None
        Events that count as touches. None: events with a channel, not
        conversions, in a stage before the conversion's (see the module doc).
        "all": every event that is not a conversion.
    lookback : str or Timedelta
        Touches older than this before the journey's end are left out
        (counted); also the horizon for censoring at ``period_end``.
    period_end : date-like, optional
        End of the observed period (default: the log's last timestamp).
        Later events are left out (counted).
    start : date-like, optional
        Keep only journeys that end (conversion, or last touch) on or after
        ``start``; earlier ones are left out (counted as
        ``ended_before_start``). Their touches before ``start`` still count,
        within the lookback. Naive times are UTC.
    month : str, optional
        ``"YYYY-MM"``: the journeys of one calendar month (UTC), i.e. ``start``
        and ``period_end`` at its first and last instant; journeys still open
        at the month's end are censored. Not together with ``start`` or
        ``period_end``.
    max_touches : int, optional
        Keep only the last ``max_touches`` touches of a journey (counted).
    stage_map : StageMap, optional
        For the tie-breaker order of identical timestamps (default: sample map).

    Returns
    -------
    Journeys
        ``.touches``, ``.journeys``, ``.left_out`` and ``.settings``.

    Examples
    --------
    >>> from journeylab.core.stages import StageMap
    >>> stages = StageMap.from_dict({"stages": [{"name": "consideration", "events": ["ad_seen", "visit"]},
    ...                                          {"name": "purchase", "events": ["purchase"]}]})
    >>> ev = pd.DataFrame({"user_id": ["a", "a", "a"],
    ...     "timestamp": pd.to_datetime(["2026-05-01", "2026-05-02", "2026-05-03"], utc=True),
    ...     "event": ["ad_seen", "visit", "purchase"],
    ...     "channel": ["social", "email", None], "value": [None, None, 120.0]})
    >>> j = build_journeys(ev, conversion="purchase", stage_map=stages)
    >>> j.journeys[["n_touches", "converted", "value"]].values.tolist()
    [[2, True, 120.0]]
    >>> [len(build_journeys(ev, conversion="purchase", stage_map=stages, month=m).journeys)
    ...  for m in ("2026-04", "2026-05")]
    [0, 1]
    """
    rules = JourneyRules.read(
        conversion=conversion,
        touch_events=touch_events,
        lookback=lookback,
        period_end=period_end,
        start=start,
        month=month,
        max_touches=max_touches,
    )
    with _Events(events, stage_map=stage_map) as ev:
        touches, journeys, left_out, settings = _build_tables(ev, rules)
        jframe = ev.df(
            f"SELECT {', '.join(map(quote_ident, _JOURNEY_COLUMNS))} FROM {journeys} ORDER BY journey_id"
        )
        tframe = ev.df(
            f"SELECT {', '.join(map(quote_ident, _TOUCH_COLUMNS))} FROM {touches} ORDER BY journey_id, position"
        )
    jframe = _typed_journeys(jframe)
    tframe = _typed_touches(tframe)
    return Journeys(touches=tframe, journeys=jframe, left_out=left_out, settings=settings)


def _typed_journeys(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.reindex(columns=_JOURNEY_COLUMNS)
    for col in ("journey_id", "n_touches", "truncated_touches"):
        frame[col] = frame[col].astype("int64")
    for col in ("converted", "censored"):
        frame[col] = frame[col].astype(bool)
    frame["value"] = frame["value"].astype("float64")
    frame["user_id"] = frame["user_id"].astype("string")
    for col in ("start", "end", "conversion_time"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame


def _typed_touches(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.reindex(columns=_TOUCH_COLUMNS)
    for col in ("journey_id", "position"):
        frame[col] = frame[col].astype("int64")
    for col in ("user_id", "channel", "event"):
        frame[col] = frame[col].astype("string")
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame


# ---------------------------------------------------------------------------
# path table
# ---------------------------------------------------------------------------
@contextmanager
def _journey_views(
    source: Any,
    *,
    stage_map: Any,
    journey_options: dict[str, Any],
) -> Iterator[tuple[duckdb.DuckDBPyConnection, str, str, dict[str, int], dict[str, Any]]]:
    """Touches and journeys as tables in a DuckDB cursor, from events or a Journeys result.

    Yields ``(cursor, touches, journeys, left_out, settings)``; the cursor is closed on exit.
    """
    if isinstance(source, Journeys):
        if journey_options:
            raise ParameterError(
                f"{sorted(journey_options)} only apply when building journeys from events; "
                "these journeys are already built (rebuild them with build_journeys(...))."
            )
        with engine.cursor() as con:
            con.register("jl_touches", source.touches)
            con.register("jl_journeys", source.journeys)
            yield con, "jl_touches", "jl_journeys", dict(source.left_out), dict(source.settings)
        return
    rules = JourneyRules.read(**{**JOURNEY_DEFAULTS, **journey_options})
    with _Events(source, stage_map=stage_map) as ev:
        touches, journeys, left_out, settings = _build_tables(ev, rules)
        yield ev.con, touches, journeys, left_out, settings


def _row_element_sql(
    con: duckdb.DuckDBPyConnection, stage_map: StageMap, level: str | None, distinct_events: str
) -> tuple[str, str]:
    """Return the SQL expression (and join) naming an event row ``b``'s path element.

    ``level`` None (no paths wanted) gives NULL; ``distinct_events`` is a query
    of the event names to map to stages.
    """
    if level == "channel":
        return f"coalesce(b.channel, {quote_literal(NO_CHANNEL)})", ""
    if level == "event":
        return "b.event", ""
    if level == "stage":
        name = _register_stages(con, stage_map, distinct_events)
        join = f"LEFT JOIN (SELECT event AS s_event, stage AS s_stage FROM {name}) s ON s.s_event = b.event"
        return f"coalesce(s.s_stage, {quote_literal(NO_STAGE)})", join
    return "NULL::VARCHAR", ""


def _element_sql(
    level: str, stage_map: Any, con: duckdb.DuckDBPyConnection, touches: str
) -> tuple[str, str]:
    """Return the SQL expression (and join) naming a touch's path element at ``level``."""
    if level == "channel":
        return "t.channel", ""
    if level == "event":
        return "t.event", ""
    name = _register_stages(
        con, StageMap.coerce(stage_map), f"SELECT DISTINCT event FROM {touches}"
    )
    return (
        f"coalesce(s.stage, {quote_literal(NO_STAGE)})",
        f"LEFT JOIN {name} s ON s.event = t.event",
    )


def path_table(
    events_or_journeys: Any,
    *,
    level: Literal["channel", "event", "stage"] = "channel",
    collapse_repeats: bool = True,
    include_censored: bool = False,
    stage_map: Any = None,
    **journey_options: Any,
) -> pd.DataFrame:
    """Aggregate journeys into the path table (the interchange format with attribution).

    Parameters
    ----------
    events_or_journeys : DataFrame, DuckDB relation, Parquet path(s) or Journeys
        An event log (journeys are built with ``journey_options``, passed on
        to :func:`build_journeys`) or journeys already built. A PySpark
        DataFrame runs the same rules on the cluster
        (:func:`journeylab.journeys.spark.path_table`) and returns the same table.
    level : {"channel", "event", "stage"}
        What a path step names: the touch's channel, its event, or its stage.
    collapse_repeats : bool
        Merge consecutive identical steps (``email > email > social`` becomes
        ``email > social``), as first-order Markov attribution expects.
    include_censored : bool
        Count censored (still open) journeys as non-conversions. By default
        they are left out and counted in ``attrs["left_out"]``.
    stage_map : StageMap, optional
        Tie-breaker order and the stages for ``level="stage"``.
    **journey_options
        ``conversion``, ``touch_events``, ``lookback``, ``period_end``,
        ``start``, ``month`` (``"YYYY-MM"``: the journeys ending in that
        calendar month, UTC), ``max_touches`` (see :func:`build_journeys`).

    Returns
    -------
    pandas.DataFrame
        Exactly the columns ``path`` (tuple of str; ``("(direct)",)`` for a
        conversion with no touch), ``conversions`` (int), ``value`` (float),
        ``non_conversions`` (int); one row per distinct path, sorted by
        conversions, then non-conversions (both descending), then path.
        ``attrs["left_out"]`` holds the counts of what was left out,
        ``attrs["settings"]`` the rules used and ``attrs["censoring"]`` how
        many journeys were still open and whether they were left out, with
        a warning when that leaves too few non-converting journeys for
        data-driven attribution (see :func:`censoring_summary`).

    Examples
    --------
    >>> from journeylab.core.stages import StageMap
    >>> stages = StageMap.from_dict({"stages": [{"name": "consideration", "events": ["visit"]},
    ...                                          {"name": "purchase", "events": ["purchase"]}]})
    >>> ev = pd.DataFrame({"user_id": ["a", "a", "b"],
    ...     "timestamp": pd.to_datetime(["2026-05-01", "2026-05-03", "2026-05-02"], utc=True),
    ...     "event": ["visit", "purchase", "visit"],
    ...     "channel": ["email", None, "email"], "value": [None, 90.0, None]})
    >>> path_table(ev, conversion="purchase", stage_map=stages, lookback="7D", period_end="2026-06-30")
           path  conversions  value  non_conversions
    0  (email,)            1   90.0                1
    >>> path_table(ev, conversion="purchase", stage_map=stages, lookback="7D", month="2026-05",
    ...            include_censored=True)["conversions"].tolist()
    [1]
    """
    if type(events_or_journeys).__module__.startswith("pyspark.sql"):
        from journeylab.journeys import spark

        return spark.path_table(
            events_or_journeys,
            level=level,
            collapse_repeats=collapse_repeats,
            include_censored=include_censored,
            stage_map=stage_map,
            **journey_options,
        )
    check_in("level", level, ["channel", "event", "stage"])
    check_journey_options(
        "path_table",
        journey_options,
        ["level", "collapse_repeats", "include_censored", "stage_map"],
    )
    where = "TRUE" if include_censored else "NOT j.censored"
    # Consecutive repeats are dropped inside each path list (no extra sort).
    collapse = (
        "list_filter(path, lambda x, i: i = 1 OR x IS DISTINCT FROM path[i - 1])"
        if collapse_repeats
        else "path"
    )
    final = f"""
        SELECT CASE WHEN len(coalesce(path, [])) = 0 THEN {quote_list([DIRECT])} ELSE {collapse} END AS path,
               sum(converted::BIGINT) AS conversions,
               sum(value{{value_order}})::DOUBLE AS value,
               sum((NOT converted)::BIGINT) AS non_conversions
        FROM paths GROUP BY 1
        ORDER BY conversions DESC, non_conversions DESC, path
    """
    if isinstance(events_or_journeys, Journeys):
        views = _journey_views(
            events_or_journeys, stage_map=stage_map, journey_options=journey_options
        )
        with views as (con, touches, journeys, left_out, settings):
            element, join = _element_sql(level, stage_map, con, touches)
            frame = fetch_df(
                con.execute(
                    f"""
                    WITH p AS (
                      SELECT t.journey_id, list({element} ORDER BY t.position) AS path FROM {touches} t {join}
                      GROUP BY t.journey_id
                    ), paths AS (
                      SELECT p.path, j.converted, j.value FROM {journeys} j LEFT JOIN p USING (journey_id)
                      WHERE {where}
                    )
                    {final.replace("{value_order}", "")}
                    """
                )
            )
    else:
        # From events, each journey's path is aggregated with the journey itself.
        rules = JourneyRules.read(**{**JOURNEY_DEFAULTS, **journey_options})
        with _Events(events_or_journeys, stage_map=stage_map) as ev:
            _, journeys, left_out, settings = _build_tables(
                ev, rules, want_touches=False, path_level=level
            )
            # Values are summed in journey order (user, then journey), as when journeys are numbered.
            frame = fetch_df(
                ev.con.execute(
                    f"WITH paths AS (SELECT j.path, j.converted, j.value, j.user_id, j.jidx FROM {journeys} j "
                    f"WHERE {where}) " + final.replace("{value_order}", " ORDER BY user_id, jidx")
                )
            )
    frame["path"] = [tuple(p) for p in frame["path"]]  # one entry per distinct path
    frame["conversions"] = frame["conversions"].astype("int64")
    frame["non_conversions"] = frame["non_conversions"].astype("int64")
    frame["value"] = frame["value"].astype("float64")
    frame = frame.reset_index(drop=True)
    left = dict(left_out)
    open_journeys = int(left.get("censored_journeys", 0))
    if include_censored:
        left["censored_journeys"] = 0
    frame.attrs["left_out"] = left
    frame.attrs["settings"] = {
        **settings,
        "level": level,
        "collapse_repeats": collapse_repeats,
        "include_censored": include_censored,
    }
    frame.attrs["censoring"] = censoring_summary(
        frame["conversions"].sum(),
        frame["non_conversions"].sum(),
        open_journeys,
        include_censored=include_censored,
        period_end=settings.get("period_end"),
    )
    return frame
