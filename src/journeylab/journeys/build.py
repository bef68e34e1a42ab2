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
   missing channel or value sorts last (as
   :func:`journeylab.io.loaders.sort_events`). Shuffled input with identical
   timestamps therefore always gives one order (DT-2).
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

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Literal

import duckdb
import numpy as np
import pandas as pd

from journeylab.core import sql as engine
from journeylab.core.errors import ParameterError, check_in
from journeylab.core.results import Result, fmt_money, fmt_num, fmt_pct
from journeylab.core.sql import quote_ident, quote_list, quote_literal
from journeylab.core.stages import StageMap
from journeylab.core.timeparse import format_time
from journeylab.core.viz import PALETTE, new_axes
from journeylab.journeys.coded_paths import PathTable
from journeylab.journeys.path_scan import path_sums
from journeylab.journeys.rules import (
    DIRECT,
    JOURNEY_DEFAULTS,
    NO_CHANNEL,
    NO_STAGE,
    JourneyRules,
    censoring_summary,
    check_journey_options,
)
from journeylab.journeys.sessions import sessionize
from journeylab.journeys.source import _Events, fetch_df
from journeylab.journeys.tables import _build_tables, _register_stages

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
        median = fmt_num(float(j["n_touches"].median())).removesuffix(".00").removesuffix(".0")
        lines = [
            f"{fmt_count(n)} journeys of {fmt_count(j['user_id'].nunique())} users: "
            f"{fmt_count(conv)} converted ({fmt_pct(conv / closed if closed else float('nan'))} of the "
            f"{fmt_count(closed)} closed journeys, value {fmt_money(float(j['value'].sum()))}), "
            f"{fmt_count(closed - conv)} ended without conversion, {fmt_count(cens)} still open at "
            f"the period end {format_time(self.settings.get('period_end'))} (censored, not counted as failures).",
            f"Touches per journey: median {median}, "
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
    coded: bool = False,
    **journey_options: Any,
) -> pd.DataFrame | PathTable:
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
    coded : bool
        Return the canonical :class:`~journeylab.attribution.paths.PathTable`
        that :func:`~journeylab.attribution.attribute` works on (paths as integer
        codes of the sorted channel names, each distinct path once, in the order
        of their names) instead of the frame: the same table
        ``read_path_table(path_table(...))`` gives, without writing the paths
        out as names, so attribution starts at once. Its ``attrs`` holds the
        same ``left_out``, ``settings`` and ``censoring`` records.
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
        With ``coded=True``, a ``PathTable``.
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

        frame = spark.path_table(
            events_or_journeys,
            level=level,
            collapse_repeats=collapse_repeats,
            include_censored=include_censored,
            stage_map=stage_map,
            **journey_options,
        )
        return _coded(frame, collapse_repeats) if coded else frame
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
               sum(value)::DOUBLE AS value,
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
                    {final}
                    """
                )
            )
    else:
        # From events: DuckDB sorts the rows that take part, NumPy cuts the journeys.
        rules = JourneyRules.read(**{**JOURNEY_DEFAULTS, **journey_options})
        with _Events(events_or_journeys, stage_map=stage_map) as ev:
            frame, left_out, settings = path_sums(
                ev,
                rules,
                level=level,
                collapse_repeats=collapse_repeats,
                include_censored=include_censored,
                coded=coded,
            )
    if isinstance(frame, pd.DataFrame):
        frame["path"] = [tuple(p) for p in frame["path"]]  # one entry per distinct path
        frame["conversions"] = frame["conversions"].astype("int64")
        frame["non_conversions"] = frame["non_conversions"].astype("int64")
        frame["value"] = frame["value"].astype("float64")
        frame = frame.reset_index(drop=True)
        conversions, non_conversions = frame["conversions"].sum(), frame["non_conversions"].sum()
    else:
        conversions, non_conversions = frame.conversions.sum(), frame.non_conversions.sum()
    left = dict(left_out)
    open_journeys = int(left.get("censored_journeys", 0))
    if include_censored:
        left["censored_journeys"] = 0
    attrs = {
        "left_out": left,
        "settings": {
            **settings,
            "level": level,
            "collapse_repeats": collapse_repeats,
            "include_censored": include_censored,
        },
        "censoring": censoring_summary(
            conversions,
            non_conversions,
            open_journeys,
            include_censored=include_censored,
            period_end=settings.get("period_end"),
        ),
    }
    if isinstance(frame, pd.DataFrame):
        if coded:  # journeys given: their table is read like any path table
            return _coded(frame, collapse_repeats).with_attrs(attrs)
        frame.attrs.update(attrs)
        return frame
    return frame.with_attrs(attrs)


def _coded(frame: pd.DataFrame, collapse_repeats: bool) -> PathTable:
    """Return the canonical coded table of a path-table frame, with its ``attrs``."""
    paths = frame["path"].tolist()
    flat = np.fromiter(chain.from_iterable(paths), dtype=object)
    codes, names = (
        pd.factorize(flat, use_na_sentinel=False) if len(flat) else (np.zeros(0, np.int64), [])
    )
    table = PathTable.from_codes(
        list(names),
        codes,
        np.fromiter(map(len, paths), dtype=np.int64, count=len(paths)),
        frame["conversions"].to_numpy(dtype=float),
        frame["value"].to_numpy(dtype=float),
        frame["non_conversions"].to_numpy(dtype=float),
        collapse_repeats=collapse_repeats,
        empty_paths="direct",
    )
    return table.with_attrs(frame.attrs)
