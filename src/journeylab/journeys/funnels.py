"""Funnels: how many users (or sessions) reach each step, drop-off, time to convert.

A funnel is an ordered list of steps; each step is one event name, a list of
event names (any of them), or a ``{label: events}`` mapping. The counting
rules:

- **Entry.** A unit (user, or session with ``grain="session"``) enters at each
  step-1 event whose timestamp lies in ``[start, end)``.
- **Strict order** (default). From an entry, step ``k`` is reached by the
  first step-``k`` event *after* the event that reached step ``k-1`` (after in
  the stable tie-breaker order of :mod:`journeylab.journeys.build`, so identical
  timestamps count in stage-map order, or in step order when no stage map is
  given) and no later than ``window`` after the entry. Later steps may fall after ``end``: a unit that entered on the last
  day keeps its chance to convert if the data go on.
- **Any order.** From an entry, step ``k`` is reached when each of steps
  ``2..k`` happens after the entry and within ``window``, in any order.
- **Best attempt.** A unit that enters several times counts once, with the
  entry that got furthest (the earliest such entry on ties), like ClickHouse's
  ``windowFunnel``. Hence each step's count is at most the previous one's.
- **Segments.** ``segment="platform"`` splits the funnel by the value of that
  column on the unit's first entry event (missing values as ``"(missing)"``).
  ``min_users=30`` leaves out segments entered by fewer than 30 distinct
  users (small-group suppression for shared reports) and says how many.
- **Fail closed.** A step event that no row of the log carries is an error
  naming it and the closest event names present, and so is a segment that is
  not a column; a first step nobody entered in the period is an error saying
  when its events do occur. A segment with a single value is counted, and the
  summary says there is nothing to compare.

The steps and the stage map can come from the project file (``project=``,
:class:`journeylab.core.project.Project`: its ``funnel`` and ``stage_map``).

Conversion rates carry Wilson score intervals
(``statsmodels.stats.proportion.proportion_confint(method="wilson")``). Time
to convert is measured between the events that reached consecutive steps
(strict) or from the entry (any order). All counting runs as DuckDB SQL (ASOF
joins from each entry); only the per-step table comes back to pandas.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from journeylab.core.errors import (
    NotComputableError,
    ParameterError,
    SchemaError,
    check_in,
    check_range,
    require_names,
)
from journeylab.core.project import display_label
from journeylab.core.results import Result, fmt_ci, fmt_pct, suppression_note
from journeylab.core.safe_text import mpl
from journeylab.core.sql import quote_ident, quote_list, quote_literal
from journeylab.core.timeparse import parse_duration
from journeylab.core.viz import PALETTE, new_axes, percent_axis
from journeylab.journeys.build import _Events, fetch_df
from journeylab.journeys.rules import (
    MISSING_SEGMENT,
    Steps,
    entry_window,
    parse_steps,
    resolve_steps,
    step_order_map,
)

__all__ = ["FunnelResult", "WhereInstead", "funnel", "where_instead", "NO_FURTHER_EVENT"]

#: The row of :func:`where_instead` for units that did nothing after the step.
NO_FURTHER_EVENT = "(no further event)"


def _columns_of(source: Any) -> list[str] | None:
    """Return the columns of a DataFrame or DuckDB relation (None for files: checked when opened)."""
    if isinstance(source, pd.DataFrame):
        return [str(c) for c in source.columns]
    columns = getattr(source, "columns", None)
    return [str(c) for c in columns] if isinstance(columns, (list, tuple)) else None


@dataclass
class _Units:
    """Per-unit funnel outcome, kept in a DuckDB connection (table ``name``)."""

    events: _Events
    name: str
    steps: list[tuple[str, list[str]]]
    unit: str
    settings: dict[str, Any]
    left_out: dict[str, int]


@contextmanager
def _funnel_units(
    events: Any,
    steps: Steps,
    *,
    window: str | pd.Timedelta,
    order: str,
    grain: str,
    segment: str | None,
    start: Any,
    end: Any,
    stage_map: Any,
) -> Iterator[_Units]:
    """Count each unit's furthest step in a DuckDB cursor; yield it as table ``name``, closed on exit."""
    check_in("order", order, ["strict", "any"])
    check_in("grain", grain, ["user", "session"])
    parsed = parse_steps(steps)
    win = parse_duration(window, "window")
    t0, t1 = entry_window(start, end)
    columns = _columns_of(events)
    if segment is not None and columns is not None:
        require_names(
            [segment], columns, what="segment column", absent="is not a column of the events", column=None, patterns=False,
            hint="name a column of the events, or merge a user attribute onto them first.",
        )  # fmt: skip
    with _Events(
        events,
        stage_map=stage_map if stage_map is not None else step_order_map(parsed),
        keep=[segment] if segment else [],
    ) as ev:
        present = [
            r[0]
            for r in ev.con.execute(
                "SELECT DISTINCT event FROM src WHERE event IS NOT NULL"
            ).fetchall()
        ]
        require_names(
            [e for _, names in parsed for e in names], present, what="funnel step", source=ev.source_name,
            hint="correct the step (event names are case-sensitive), or load the events the funnel needs.",
        )  # fmt: skip
        if grain == "session" and "session_id" not in ev.columns:
            raise SchemaError(
                "grain='session' needs a session_id column, which the events lack.",
                source=ev.source_name,
                column="session_id",
                missing_columns=["session_id"],
                hint="add sessions with journeylab.journeys.build.sessionize(events) or use grain='user'.",
            )
        con, tag = ev.con, ev.tag
        unit_sql = "user_id" if grain == "user" else "session_id"
        seg_sql = (
            f"coalesce(CAST({quote_ident(segment)} AS VARCHAR), {quote_literal(MISSING_SEGMENT)})"
            if segment
            else "'all'"
        )
        start_sql = (
            f'"timestamp" >= {quote_literal(t0.isoformat())}::TIMESTAMPTZ'
            if t0 is not None
            else "TRUE"
        )
        end_sql = (
            f'b."timestamp" < {quote_literal(t1.isoformat())}::TIMESTAMPTZ'
            if t1 is not None
            else "TRUE"
        )
        all_events = sorted({e for _, names in parsed for e in names})
        base = f"jl_fbase_{tag}"
        left_out = {}
        if grain == "session":
            left_out["events_without_session"] = int(
                ev.scalar(
                    f"SELECT count(*) FROM src WHERE session_id IS NULL AND list_contains({quote_list(all_events)}, event)"
                )
            )
        # Every event of the unit gets a sequence number (for where_instead, which
        # looks at what came next); step tables keep that number.
        con.execute(
            f"""
            CREATE TEMP TABLE {base} AS
            SELECT {unit_sql} AS unit, user_id, "timestamp", event, channel, {seg_sql} AS segment,
                   row_number() OVER (PARTITION BY {unit_sql} ORDER BY {ev.ORDER}) AS seq
            FROM src
            WHERE {unit_sql} IS NOT NULL AND user_id IS NOT NULL AND "timestamp" IS NOT NULL AND {start_sql}
            """
        )
        win_us = int(win.value // 1000)
        k = len(parsed)
        ctes = []
        for i, (_, names) in enumerate(parsed, start=1):
            ctes.append(
                f's{i} AS (SELECT unit, seq, "timestamp" AS t FROM {base} WHERE list_contains({quote_list(names)}, event))'
            )
        ctes.append(
            f'a1 AS (SELECT b.unit, b.user_id, b.segment, b.seq AS seq1, b."timestamp" AS t1 FROM {base} b '
            f"WHERE list_contains({quote_list(parsed[0][1])}, b.event) AND {end_sql})"
        )
        deadline = f"t1 + to_microseconds({win_us}::BIGINT)"
        for i in range(2, k + 1):
            prev = f"seq{i - 1}" if order == "strict" else "seq1"
            cols = ", ".join(f"a.seq{j}, a.t{j}" for j in range(2, i))
            cols = (", " + cols) if cols else ""
            ctes.append(
                f"j{i} AS (SELECT a.unit, a.user_id, a.segment, a.seq1, a.t1{cols}, s.seq AS raw_seq, s.t AS raw_t "
                f"FROM a{i - 1} a ASOF LEFT JOIN s{i} s ON a.unit = s.unit AND a.{prev} < s.seq)"
            )
            ctes.append(
                f"a{i} AS (SELECT * EXCLUDE (raw_seq, raw_t), "
                f"CASE WHEN raw_t <= {deadline} THEN raw_seq END AS seq{i}, "
                f"CASE WHEN raw_t <= {deadline} THEN raw_t END AS t{i} FROM j{i})"
            )
        # level = the last step reached in order (a step counts only if all before it did)
        level_terms, run = [], "TRUE"
        for i in range(2, k + 1):
            run = f"{run} AND seq{i} IS NOT NULL"
            level_terms.append(f"({run})::INTEGER")
        level_sql = "1 + " + " + ".join(level_terms)
        units = f"jl_funits_{tag}"
        con.execute(
            f"""
            CREATE TEMP TABLE {units} AS
            WITH {", ".join(ctes)},
            scored AS (SELECT *, {level_sql} AS level FROM a{k}),
            ranked AS (
              SELECT *, row_number() OVER (PARTITION BY unit ORDER BY level DESC, seq1) AS best,
                     first(segment ORDER BY seq1) OVER (PARTITION BY unit) AS entry_segment
              FROM scored
            )
            SELECT * EXCLUDE (best, segment) RENAME (entry_segment AS segment) FROM ranked WHERE best = 1
            """
        )
        if not ev.scalar(f"SELECT count(*) FROM {units}"):
            raise NotComputableError(_no_entrants(ev, parsed[0], grain=grain, t0=t0, t1=t1))
        settings = {
            "steps": [label for label, _ in parsed],
            "window": _fmt_duration(win),
            "order": order,
            "grain": grain,
            "segment": segment,
            "start": t0,
            "end": t1,
        }
        yield _Units(ev, units, parsed, grain, settings, left_out)


def _no_entrants(ev: _Events, first: tuple[str, list[str]], *, grain: str, t0: Any, t1: Any) -> str:
    """Why nobody entered the funnel: when the first step's events do occur."""
    label, names = first
    unit = "user" if grain == "user" else "session"
    when = (
        f" between {_day(t0)} and {_day(t1)}" if t0 is not None and t1 is not None
        else f" from {_day(t0)} on" if t0 is not None
        else f" before {_day(t1)}" if t1 is not None
        else ""
    )  # fmt: skip
    n, with_session, lo, hi = ev.con.execute(
        f'SELECT count(*), count(session_id), min("timestamp"), max("timestamp") FROM src '
        f'WHERE list_contains({quote_list(names)}, event) AND user_id IS NOT NULL AND "timestamp" IS NOT NULL'
    ).fetchone()
    if n and grain == "session" and not with_session:
        why = f"none of its {n:,} events has a session id"
    elif n:
        why = f"its {n:,} events occur from {_day(lo)} to {_day(hi)}"
    else:
        why = "its events have no user id or timestamp"
    return (
        f"No {unit} entered the funnel at its first step {label!r}{when}: {why}. "
        "Choose a period (start/end) in which the first step occurs."
    )


def _day(ts: Any) -> str:
    return pd.Timestamp(ts).strftime("%Y-%m-%d %H:%M").removesuffix(" 00:00")


def _step_table(u: _Units, confidence: float) -> pd.DataFrame:
    k = len(u.steps)
    order = u.settings["order"]
    parts = []
    for i in range(1, k + 1):
        if i == 1:
            delta = "NULL::DOUBLE"
        else:
            ref = f"t{i - 1}" if order == "strict" else "t1"
            delta = f"epoch(t{i}) - epoch({ref})"
        parts.append(
            f"SELECT segment, {i} AS step, count(*) AS entrants, "
            f"quantile_cont({delta}, 0.25) AS q25, quantile_cont({delta}, 0.5) AS q50, "
            f"quantile_cont({delta}, 0.75) AS q75 FROM {u.name} WHERE level >= {i} GROUP BY segment"
        )
    counts = fetch_df(u.events.con.execute(" UNION ALL ".join(parts)))
    segments = sorted(
        fetch_df(u.events.con.execute(f"SELECT DISTINCT segment FROM {u.name}"))["segment"].tolist()
    )
    segments = segments or ["all"]  # nobody entered: still one row per step, with zeros
    grid = pd.MultiIndex.from_product([segments, range(1, k + 1)], names=["segment", "step"])
    table = counts.set_index(["segment", "step"]).reindex(grid).reset_index()
    table["entrants"] = table["entrants"].fillna(0).astype("int64")
    table["label"] = [u.steps[s - 1][0] for s in table["step"]]
    first = table.groupby("segment")["entrants"].transform("first")
    previous = table.groupby("segment")["entrants"].shift(1)
    previous = previous.fillna(table["entrants"]).astype("int64")
    alpha = 1 - confidence
    out = pd.DataFrame(
        {
            "segment": table["segment"],
            "step": table["step"],
            "label": table["label"],
            "entrants": table["entrants"],
        }
    )
    for name, base in (("from_previous", previous), ("from_first", first)):
        nobs = base.to_numpy(dtype=float)
        count = out["entrants"].to_numpy(dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(nobs > 0, count / np.where(nobs > 0, nobs, 1), np.nan)
            low, high = proportion_confint(
                count, np.where(nobs > 0, nobs, 1), alpha=alpha, method="wilson"
            )
        out[f"conversion_{name}"] = rate
        out[f"{name}_ci_low"] = np.where(nobs > 0, low, np.nan)
        out[f"{name}_ci_high"] = np.where(nobs > 0, high, np.nan)
    out["drop_off"] = (previous - out["entrants"]).astype("int64")
    out["step"] = out["step"].astype("int64")
    out["segment"] = out["segment"].astype("string")
    for q in ("q25", "q50", "q75"):
        out[f"time_{q.replace('q50', 'median')}"] = pd.to_timedelta(table[q], unit="s")
    out = out.rename(columns={"time_q25": "time_q25", "time_q75": "time_q75"})
    out = out[
        [
            "segment",
            "step",
            "label",
            "entrants",
            "conversion_from_previous",
            "from_previous_ci_low",
            "from_previous_ci_high",
            "conversion_from_first",
            "from_first_ci_low",
            "from_first_ci_high",
            "drop_off",
            "time_q25",
            "time_median",
            "time_q75",
        ]
    ]
    return out


@dataclass(repr=False, eq=False)
class FunnelResult(Result):
    """Per-step counts, conversion rates with Wilson intervals, drop-off and time to convert.

    ``to_frame()`` has one row per (segment, step): ``segment`` ("all" without
    segments), ``step`` (1-based), ``label``, ``entrants``,
    ``conversion_from_previous`` and ``conversion_from_first`` with
    ``*_ci_low``/``*_ci_high``, ``drop_off`` (units lost since the previous
    step) and ``time_q25``/``time_median``/``time_q75`` (Timedelta, from the
    previous step; from the first step with ``order="any"``). ``notes`` says
    what the data did not allow (a segment with one value: no comparison).
    ``with_labels(project.labels)`` (or ``with_labels(project)``) shows the steps
    by their project labels in the summary, the table and the figures.
    """

    table: pd.DataFrame
    settings: dict[str, Any]
    left_out: dict[str, int] = field(default_factory=dict)
    confidence: float = 0.95
    suppressed_segments: int = 0
    notes: list[str] = field(default_factory=list)
    title: str = "Funnel"
    #: event/step name -> reader-facing label (None: names as given)
    labels: dict[str, str] | None = None

    def with_labels(self, labels: Mapping[str, str] | Any) -> FunnelResult:
        """Return the result showing steps by their labels (a mapping, or a project's ``labels``).

        Examples
        --------
        >>> res = FunnelResult(table=pd.DataFrame(), settings={"steps": ["add_to_cart"]})
        >>> res.with_labels({"add_to_cart": "Added to cart"})._shown("add_to_cart")
        'Added to cart'
        """
        labels = getattr(labels, "labels", labels)
        return replace(self, labels={str(k): str(v) for k, v in dict(labels or {}).items()})

    def _shown(self, step: Any) -> str:
        return str(step) if self.labels is None else display_label(step, self.labels)

    def to_frame(self) -> pd.DataFrame:
        """Return the per-step table."""
        return self.table

    @property
    def segments(self) -> list[str]:
        """Segment values, in table order."""
        return list(dict.fromkeys(self.table["segment"]))

    def summary(self) -> str:
        """Describe overall conversion, the biggest drop and segment differences."""
        t = self.table
        steps = [self._shown(s) for s in self.settings["steps"]]
        unit = "users" if self.settings["grain"] == "user" else "sessions"
        lines = []
        for seg in self.segments:
            s = t[t["segment"] == seg].reset_index(drop=True)
            n0, n_last = int(s["entrants"].iloc[0]), int(s["entrants"].iloc[-1])
            prefix = "" if seg == "all" else f"{seg}: "
            if n0 == 0:
                lines.append(f"{prefix}no {unit} entered the funnel at '{steps[0]}'.")
                continue
            last = s.iloc[-1]
            worst = s.iloc[1:].sort_values(["conversion_from_previous", "step"]).iloc[0]
            lines.append(
                f"{prefix}{n0:,} {unit} did '{steps[0]}'; {n_last:,} reached '{steps[-1]}' "
                f"({fmt_pct(last['conversion_from_first'])} "
                f"{fmt_ci(last['from_first_ci_low'], last['from_first_ci_high'], fmt_pct)}). "
                f"Biggest drop: '{steps[int(worst['step']) - 2]}' → '{self._shown(worst['label'])}' keeps "
                f"{fmt_pct(worst['conversion_from_previous'])} "
                f"{fmt_ci(worst['from_previous_ci_low'], worst['from_previous_ci_high'], fmt_pct)}, "
                f"losing {int(worst['drop_off']):,}."
            )
        ci = f"{self.confidence:.0%}"
        lines.append(
            f"Window {self.settings['window']} from entry, {self.settings['order']} order; "
            f"intervals are {ci} Wilson intervals."
        )
        if self.left_out.get("events_without_session"):
            lines.append(
                f"{self.left_out['events_without_session']:,} step events without a session id were left out."
            )
        if self.suppressed_segments:
            lines.append(suppression_note(self.suppressed_segments, self.settings["min_users"]))
        lines += self.notes
        return "\n".join(lines)

    def display_frame(self) -> pd.DataFrame:
        """Return the table with rates, intervals and times formatted for reading."""
        t = self.table
        out = pd.DataFrame(
            {
                "step": t["label"].map(self._shown),
                "entrants": t["entrants"].map(lambda n: f"{n:,}"),
                "from previous": [
                    f"{fmt_pct(r)} {fmt_ci(lo, hi, fmt_pct)}"
                    for r, lo, hi in zip(
                        t["conversion_from_previous"],
                        t["from_previous_ci_low"],
                        t["from_previous_ci_high"],
                        strict=True,
                    )
                ],
                "from first": [
                    f"{fmt_pct(r)} {fmt_ci(lo, hi, fmt_pct)}"
                    for r, lo, hi in zip(
                        t["conversion_from_first"],
                        t["from_first_ci_low"],
                        t["from_first_ci_high"],
                        strict=True,
                    )
                ],
                "drop-off": t["drop_off"].map(lambda n: f"{n:,}"),
                "median time": t["time_median"].map(_fmt_duration),
            }
        )
        if len(self.segments) > 1 or self.suppressed_segments:
            out.insert(0, "segment", t["segment"])
        return out

    def plot(self, ax=None):
        """Draw a horizontal funnel: share of entrants reaching each step, with intervals."""
        t = self.table
        steps = self.settings["steps"]
        segs = self.segments
        if not segs:
            return _nothing_shown(new_axes(ax, figsize=(9, 3)), self.settings["min_users"])
        ax = new_axes(ax, figsize=(9, 1.0 + 0.9 * len(steps) * max(1, len(segs) * 0.6)))
        height = 0.8 / len(segs)
        for j, seg in enumerate(segs):
            s = t[t["segment"] == seg]
            y = np.arange(len(steps)) + (j - (len(segs) - 1) / 2) * height
            rate = s["conversion_from_first"].to_numpy(dtype=float)
            err = np.vstack(
                [
                    rate - s["from_first_ci_low"].to_numpy(dtype=float),
                    s["from_first_ci_high"].to_numpy(dtype=float) - rate,
                ]
            )
            err = np.clip(np.nan_to_num(err), 0, None)  # rounding can leave -1e-17
            colour = PALETTE[0] if len(segs) == 1 else PALETTE[j % len(PALETTE)]
            label = None if len(segs) == 1 and not self.suppressed_segments else mpl(seg)
            ax.barh(
                y, np.nan_to_num(rate), height=height * 0.9, color=colour, alpha=0.85, label=label
            )
            ax.errorbar(
                np.nan_to_num(rate), y, xerr=err, fmt="none", ecolor="#333333", capsize=3, lw=1
            )
            for yi, (r, hi, n, prev) in enumerate(
                zip(
                    rate,
                    s["from_first_ci_high"],
                    s["entrants"],
                    s["conversion_from_previous"],
                    strict=True,
                )
            ):
                text = f"{fmt_pct(r)} ({n:,})"
                if yi > 0:
                    text += f"  · {fmt_pct(prev)} of previous"
                ax.text(
                    np.nan_to_num(max(r, hi if not np.isnan(hi) else r)) + 0.01,
                    y[yi],
                    text,
                    va="center",
                    fontsize=9,
                )
        ax.set_yticks(np.arange(len(steps)))
        ax.set_yticklabels([mpl(self._shown(step)) for step in steps])
        ax.invert_yaxis()
        ax.set_xlim(0, 1.45)
        ax.set_xticks(np.linspace(0, 1, 6))
        percent_axis(ax, "x")
        ax.set_xlabel(
            f"share of entrants reaching the step ({self.confidence:.0%} Wilson interval)"
        )
        unit = "users" if self.settings["grain"] == "user" else "sessions"
        ax.set_title(f"Funnel ({unit}, window {self.settings['window']})")
        ax.grid(axis="y", visible=False)
        if len(segs) > 1 or self.suppressed_segments:
            ax.legend(title=mpl(self.settings["segment"]), loc="lower right")
        return ax

    def plot_time_to_convert(self, ax=None):
        """Draw the median and interquartile range of the time to convert per step (log time axis)."""
        t = self.table[self.table["step"] > 1]
        segs = self.segments
        steps = self.settings["steps"]
        if not segs:
            return _nothing_shown(new_axes(ax, figsize=(9, 3)), self.settings["min_users"])
        ax = new_axes(ax, figsize=(9, 1.2 + 0.8 * (len(steps) - 1) * max(1, len(segs) * 0.6)))
        height = 0.8 / len(segs)
        strict = self.settings["order"] == "strict"
        named = [self._shown(step) for step in steps]
        labels = [
            mpl(f"{named[i - 1]} → {named[i]}" if strict else f"→ {named[i]}")
            for i in range(1, len(steps))
        ]
        lows, highs = [], []
        for j, seg in enumerate(segs):
            s = t[t["segment"] == seg]
            y = np.arange(len(steps) - 1) + (j - (len(segs) - 1) / 2) * height
            q25, med, q75 = (
                s[c].dt.total_seconds().to_numpy(dtype=float)
                for c in ("time_q25", "time_median", "time_q75")
            )
            q25 = np.maximum(q25, 1.0)  # log axis: sub-second spans drawn at 1 s
            colour = PALETTE[0] if len(segs) == 1 else PALETTE[j % len(PALETTE)]
            ax.hlines(y, q25, np.maximum(q75, q25), color=colour, lw=7, alpha=0.45)
            ax.plot(
                np.maximum(med, 1.0),
                y,
                "o",
                color=colour,
                ms=7,
                label=None if len(segs) == 1 else mpl(seg),
            )
            for yi, m in enumerate(med):
                if not np.isnan(m):
                    ax.annotate(
                        f"median {_fmt_duration(pd.Timedelta(seconds=m))}",
                        (max(q75[yi], m, 1.0), y[yi]),
                        xytext=(6, 0),
                        textcoords="offset points",
                        va="center",
                        fontsize=9,
                    )
            lows.append(np.nanmin(q25) if np.isfinite(q25).any() else np.nan)
            highs.append(np.nanmax(q75) if np.isfinite(q75).any() else np.nan)
        ax.set_xscale("log")
        lo = np.nanmin(lows) if np.isfinite(lows).any() else 60.0
        hi = np.nanmax(highs) if np.isfinite(highs).any() else 86400.0
        ticks = [
            (1, "1 s"),
            (10, "10 s"),
            (60, "1 min"),
            (600, "10 min"),
            (3600, "1 h"),
            (6 * 3600, "6 h"),
            (86400, "1 day"),
            (7 * 86400, "1 week"),
            (30 * 86400, "30 days"),
            (365 * 86400, "1 year"),
        ]
        shown = [(v, text) for v, text in ticks if lo / 3 <= v <= hi * 6] or ticks[2:7]
        ax.set_xticks([v for v, _ in shown], [text for _, text in shown])
        ax.minorticks_off()
        ax.set_xlim(min(lo / 2, shown[0][0]), max(hi * 8, shown[-1][0]))
        ax.set_yticks(np.arange(len(steps) - 1))
        ax.set_yticklabels(labels)
        ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
        ref = "previous step" if strict else "first step"
        ax.set_xlabel(f"time from the {ref} (log scale); bar = quartiles, dot = median")
        ax.set_title("Time to convert")
        if len(segs) > 1:
            ax.legend(title=mpl(self.settings["segment"]), loc="lower right")
        return ax


def _nothing_shown(ax, min_users: int):
    ax.set_axis_off()
    ax.set_title(f"No segment has {min_users:,} users or more: nothing to show")
    return ax


def _time_unit(seconds: float) -> tuple[float, str]:
    if seconds >= 2 * 86400:
        return 86400.0, "days"
    if seconds >= 2 * 3600:
        return 3600.0, "hours"
    if seconds >= 120:
        return 60.0, "minutes"
    return 1.0, "seconds"


def _fmt_duration(td: Any) -> str:
    if td is None or pd.isna(td):
        return "–"
    scale, unit = _time_unit(td.total_seconds())
    return f"{td.total_seconds() / scale:.3g} {unit}"


def funnel(
    events: Any,
    steps: Steps | None = None,
    *,
    window: str | pd.Timedelta = "7D",
    order: Literal["strict", "any"] = "strict",
    grain: Literal["user", "session"] = "user",
    segment: str | None = None,
    start: Any = None,
    end: Any = None,
    confidence: float = 0.95,
    stage_map: Any = None,
    min_users: int = 0,
    project: Any = None,
) -> FunnelResult:
    """Count how many units reach each funnel step, with intervals and time to convert.

    Parameters
    ----------
    events : DataFrame, DuckDB relation or Parquet path(s)
        Event log (``user_id``, ``timestamp``, ``event``; ``session_id`` for
        ``grain="session"``; the ``segment`` column when given).
    steps : list or dict
        Event names in funnel order; a step may be a list of names (any of
        them) and a dict gives labels: ``{"product page": "view", ...}``.
        Default: the project's ``funnel``. A name no row carries is an error.
    window : str or Timedelta
        Longest time from entering (step 1) to reaching a later step.
    order : {"strict", "any"}
        Steps in the listed order, or in any order after the entry.
    grain : {"user", "session"}
        Count users or sessions.
    segment : str, optional
        Column to split by (value on the unit's first entry).
    start, end : date-like, optional
        Units enter in ``[start, end)``; events before ``start`` are ignored.
    confidence : float
        Level of the Wilson intervals.
    stage_map : StageMap, optional
        Tie-breaker order of identical timestamps (default: the project's
        stage map, else the order of the steps).
    min_users : int
        Small-group suppression for shared reports: segments whose first
        step was entered by fewer than ``min_users`` distinct users are left
        out of the table and the figures, and the summary says how many.
        0 (the default) shows every segment. Applies with ``segment``.
    project : Project, optional
        The project file: its ``funnel`` stands in for ``steps`` and its
        ``stage_map`` for ``stage_map``.

    Returns
    -------
    FunnelResult

    Raises
    ------
    UnknownNameError
        A step names an event no row carries, or ``segment`` is not a column.
    NotComputableError
        Nobody entered the first step in the period (the message says when it occurs).

    Examples
    --------
    >>> ev = pd.DataFrame({"user_id": ["a", "a", "b"], "event": ["cart", "purchase", "cart"],
    ...     "timestamp": pd.to_datetime(["2026-05-01 10:00", "2026-05-01 10:05",
    ...                                  "2026-05-02 09:00"], utc=True)})
    >>> funnel(ev, ["cart", "purchase"]).to_frame()["entrants"].tolist()
    [2, 1]
    """
    check_range("confidence", confidence, low=0, high=1)
    if not isinstance(min_users, (int, np.integer)) or isinstance(min_users, bool):
        raise ParameterError(
            f"min_users == {min_users!r}, must be a whole number (0 shows every segment)."
        )
    check_range("min_users", min_users, low=0, low_inclusive=True)
    steps, stage_map = resolve_steps(steps, stage_map, project=project)
    counted = _funnel_units(
        events,
        steps,
        window=window,
        order=order,
        grain=grain,
        segment=segment,
        start=start,
        end=end,
        stage_map=stage_map,
    )
    with counted as units:
        table = _step_table(units, confidence)
        small: list[str] = []
        if min_users and segment:
            # Users (not sessions) make a group identifiable: count distinct entrants.
            sizes = fetch_df(
                units.events.con.execute(
                    f"SELECT segment, count(DISTINCT user_id) AS users FROM {units.name} GROUP BY segment"
                )
            )
            known = dict(zip(sizes["segment"], sizes["users"], strict=True))
            small = [
                seg for seg in dict.fromkeys(table["segment"]) if known.get(seg, 0) < min_users
            ]
    if small:
        table = table[~table["segment"].isin(small)].reset_index(drop=True)
    settings = {**units.settings, "min_users": int(min_users)}
    notes = []
    values = list(dict.fromkeys(table["segment"]))
    if segment is not None and len(values) == 1 and not small:
        notes.append(f"Only one value of {segment} ({values[0]}): no comparison.")
    return FunnelResult(
        table=table, settings=settings, left_out=units.left_out, confidence=confidence,
        suppressed_segments=len(small), notes=notes,
    )  # fmt: skip


# ---------------------------------------------------------------------------
# where did they go instead?
# ---------------------------------------------------------------------------
@dataclass(repr=False, eq=False)
class WhereInstead(Result):
    """What units did next after reaching a step but not the following one.

    ``to_frame()``: ``next`` (tuple of the next events or channels, or
    ``("(no further event)",)``), ``units`` and ``share``.
    """

    table: pd.DataFrame
    reached: str
    missed: str
    n_units: int
    settings: dict[str, Any]
    title: str = "Where they went instead"

    def to_frame(self) -> pd.DataFrame:
        """Return the distribution of next events."""
        return self.table

    def summary(self) -> str:
        """Describe the most common next moves."""
        unit = "users" if self.settings["grain"] == "user" else "sessions"
        if self.n_units == 0:
            return f"No {unit} reached '{self.reached}' without reaching '{self.missed}'."
        top = self.table.head(3)
        moves = "; ".join(
            f"{' > '.join(n)} {fmt_pct(s)}" for n, s in zip(top["next"], top["share"], strict=True)
        )
        return (
            f"{self.n_units:,} {unit} reached '{self.reached}' but not '{self.missed}' within "
            f"{self.settings['window']}. What they did next: {moves}."
        )

    def display_frame(self) -> pd.DataFrame:
        """Return the table with readable paths and shares."""
        return pd.DataFrame(
            {
                "next": self.table["next"].map(" > ".join),
                "units": self.table["units"].map(lambda n: f"{n:,}"),
                "share": self.table["share"].map(fmt_pct),
            }
        )

    def plot(self, ax=None, top: int = 12):
        """Draw a bar chart of the most common next moves."""
        t = self.table.head(top)
        ax = new_axes(ax, figsize=(8, 0.6 + 0.4 * max(len(t), 1)))
        labels = [" > ".join(n) for n in t["next"]]
        colours = [PALETTE[7] if n == (NO_FURTHER_EVENT,) else PALETTE[0] for n in t["next"]]
        ax.barh(np.arange(len(t)), t["share"], color=colours)
        for i, (s, n) in enumerate(zip(t["share"], t["units"], strict=True)):
            ax.text(s + 0.005, i, f"{fmt_pct(s)} ({n:,})", va="center", fontsize=9)
        ax.set_yticks(np.arange(len(t)))
        ax.set_yticklabels(labels)
        ax.invert_yaxis()
        ax.set_xlim(0, max(0.1, float(t["share"].max()) * 1.25) if len(t) else 1)
        percent_axis(ax, "x")
        ax.set_xlabel(
            f"share of the {self.n_units:,} who reached '{self.reached}' but not '{self.missed}'"
        )
        ax.set_title(f"After '{self.reached}', instead of '{self.missed}'")
        ax.grid(axis="y", visible=False)
        return ax


def where_instead(
    events: Any,
    steps: Steps | None,
    after_step: int,
    *,
    n_next: int = 1,
    level: Literal["event", "channel"] = "event",
    window: str | pd.Timedelta = "7D",
    order: Literal["strict", "any"] = "strict",
    grain: Literal["user", "session"] = "user",
    start: Any = None,
    end: Any = None,
    stage_map: Any = None,
    project: Any = None,
) -> WhereInstead:
    """Show what units did next after reaching step ``after_step`` but not the one after.

    The funnel is counted as in :func:`funnel`; for each unit whose furthest
    step is ``after_step`` (1-based), the next ``n_next`` events after the
    event that reached it (any time later, within the unit) are listed;
    ``level="channel"`` looks only at events that carry a channel. Units with
    nothing after form the row ``("(no further event)",)``. ``steps=None``
    takes the project's funnel; names are checked as in :func:`funnel`.

    Examples
    --------
    >>> ev = pd.DataFrame({"user_id": ["a", "a", "b", "c"], "event": ["cart", "help_chat", "cart", "purchase"],
    ...     "timestamp": pd.to_datetime(["2026-05-01 10:00", "2026-05-01 10:05",
    ...                                  "2026-05-02 09:00", "2026-05-02 09:30"], utc=True)})
    >>> where_instead(ev, ["cart", "purchase"], after_step=1).to_frame()["next"].tolist()
    [('(no further event)',), ('help_chat',)]
    """
    check_in("level", level, ["event", "channel"])
    if not isinstance(n_next, (int, np.integer)) or isinstance(n_next, bool):
        raise ParameterError(f"n_next == {n_next!r}, must be a whole number.")
    check_range("n_next", n_next, low=1, low_inclusive=True)
    steps, stage_map = resolve_steps(steps, stage_map, project=project)
    parsed = parse_steps(steps)
    if not isinstance(after_step, (int, np.integer)) or not 1 <= after_step < len(parsed):
        raise ParameterError(
            f"after_step == {after_step!r}, must be a step number from 1 to {len(parsed) - 1} "
            f"(the step reached; the next one is the step missed)."
        )
    k = int(after_step)
    element = "event" if level == "event" else "channel"
    only = "TRUE" if level == "event" else "b.channel IS NOT NULL"
    counted = _funnel_units(
        events,
        steps,
        window=window,
        order=order,
        grain=grain,
        segment=None,
        start=start,
        end=end,
        stage_map=stage_map,
    )
    with counted as units:
        con, base = units.events.con, f"jl_fbase_{units.events.tag}"
        table = fetch_df(
            con.execute(
                f"""
                WITH u AS (SELECT unit, seq{k} AS seq_k FROM {units.name} WHERE level = {k}),
                nx AS (
                  SELECT u.unit, b.{element} AS elem, b.seq,
                         row_number() OVER (PARTITION BY u.unit ORDER BY b.seq) AS rn
                  FROM u JOIN {base} b ON b.unit = u.unit AND b.seq > u.seq_k AND {only}
                ),
                paths AS (
                  SELECT u.unit, coalesce(list(nx.elem ORDER BY nx.seq) FILTER (WHERE nx.rn <= {int(n_next)}),
                                          {quote_list([NO_FURTHER_EVENT])}) AS next
                  FROM u LEFT JOIN nx ON nx.unit = u.unit GROUP BY u.unit
                )
                SELECT next, count(*) AS units FROM paths GROUP BY next ORDER BY units DESC, next
                """
            )
        )
    table["next"] = [tuple(p) for p in table["next"]]
    table["units"] = table["units"].astype("int64")
    total = int(table["units"].sum())
    table["share"] = table["units"] / total if total else np.nan
    settings = {**units.settings, "after_step": k, "n_next": int(n_next), "level": level}
    return WhereInstead(
        table=table.reset_index(drop=True),
        reached=parsed[k - 1][0],
        missed=parsed[k][0],
        n_units=total,
        settings=settings,
    )
