"""Findings: a discovery pass over every step and segment, ranked by the value at stake.

:func:`find` searches the month for gaps a manager can act on, and returns
them ranked, with intervals, in a form a scheduler can alert on:

1. **Steps.** Every consecutive pair of the funnel (``funnel: [a, b, c]`` →
   ``a → b``, ``b → c``) and every consecutive pair of stages of the stage
   map. A user *reaches* a step with its first "from" event in the month and
   *makes* it with a "to" event at or after that, in the month.
2. **Kinds.**

   - ``segment_gap``: for every segment dimension (a column of the events or
     of the users table) and every value of it, the step rate of that segment
     against the rest of the users at the step;
   - ``timing``: the same with the hour of day (three-hour blocks) and the day
     of week of the user's step entry, in the project's time zone;
   - ``change_vs_previous``: the step rate of the month against the previous
     month.

3. **Tests.** Two independent proportions: the difference with a Newcombe
   interval and the pooled z-test (statsmodels, as in
   :func:`journeylab.maps.journey_maps.two_proportion`). Every test of the
   pass is one family: q-values by Benjamini-Hochberg. A finding is a gap that
   hurts (the segment, or this month, does worse), is significant at
   ``q < fdr`` and rests on at least ``min_users`` users on both sides.
4. **Value at stake.** ``reached × gap × value per step success``, where the
   value per step success is the value per conversion times the share of the
   users who made the step that converted in the month (1 for steps ending in
   the conversion); the interval carries the gap's interval, floored at 0.
5. **No double counting.** The same segment found at two steps is the same
   people and, most often, the same cause: the findings of one dimension and
   segment form one group, the largest is its lead, and the others are marked
   ``overlaps`` with the lead's id and ``counted = False``. :meth:`FindingsResult.total`
   adds only counted findings of one dimension at a time; findings of different
   dimensions may share people and are never added up.
6. **Ids.** ``kind:from→to:dimension=segment`` in lower case, stable across
   months so that a ledger can follow a finding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from journeylab.core.errors import (
    NotComputableError,
    SchemaError,
    check_range,
    did_you_mean,
)
from journeylab.core.project import display_label
from journeylab.core.results import Result, fmt_pct
from journeylab.core.stages import StageMap
from journeylab.maps.finding_ranking import _plain, _rank, _short, _step_label, _test, _text
from journeylab.maps.finding_steps import (
    _DAYS,
    DAY_OF_WEEK,
    HOUR_OF_DAY,
    _downstream_share,
    _entry_rows,
    _progress,
    _row,
    _segments_at_entry,
    _steps,
    _value_per_conversion,
)
from journeylab.maps.periods import Period, in_period, prepare_events, resolve_period

__all__ = ["find", "FindingsResult", "HOUR_OF_DAY", "DAY_OF_WEEK", "KINDS", "FINDING_FIELDS"]

KINDS = ("segment_gap", "timing", "change_vs_previous")

#: The fields of each finding in ``metrics.json`` (see the README's schema).
FINDING_FIELDS = (
    "rank",
    "id",
    "kind",
    "step",
    "dimension",
    "segment",
    "reached",
    "value",
    "benchmark",
    "benchmark_label",
    "difference",
    "difference_ci_low",
    "difference_ci_high",
    "p_value",
    "q_value",
    "value_at_stake",
    "value_at_stake_ci_low",
    "value_at_stake_ci_high",
    "counted",
    "overlaps",
    "text",
)


@dataclass
class FindingsResult(Result):
    """Ranked findings of one period.

    Attributes
    ----------
    table : pandas.DataFrame
        Every test of the pass (one row per step × dimension × segment, plus
        the change rows), with ``is_finding`` marking the findings.
    period, previous : Period
        The month and the month before.
    value_per_conversion : float
    notes : list of str
        What was skipped and why.
    """

    table: pd.DataFrame
    period: Period
    previous: Period | None
    value_per_conversion: float
    currency: str = "$"
    labels: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    fdr: float = 0.05
    min_users: int = 30
    title = "Findings"

    # -- the findings ---------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """Return the findings, ranked by value at stake (counted leads first)."""
        found = self.table.loc[self.table["is_finding"]].copy()
        return found.reset_index(drop=True)

    def tests(self) -> pd.DataFrame:
        """Return every comparison of the pass, findings or not."""
        return self.table.copy()

    def top(self, n: int = 5, *, counted_only: bool = True) -> pd.DataFrame:
        """Return the ``n`` largest findings (by default the leads of their group only)."""
        found = self.to_frame()
        if counted_only:
            found = found.loc[found["counted"]]
        return found.head(n)

    def total(self, dimension: str) -> float:
        """Add up the value at stake of one dimension's counted findings (never summed across dimensions)."""
        found = self.to_frame()
        found = found.loc[found["counted"] & (found["dimension"] == dimension)]
        return float(found["value_at_stake"].sum())

    def pains(self, stage_map: StageMap) -> pd.DataFrame:
        """Return the counted findings as pain points per stage.

        The columns are ``stage``, ``title``, ``value_at_stake`` and
        ``opportunity``. A finding belongs to the stage of its step's start (the stage whose
        events include the "from" event, for funnel steps).
        """
        rows = []
        for row in self.top(50).itertuples():
            stage = (
                row.step_from
                if row.step_from in stage_map.names
                else stage_map.stage_of(row.step_from)
            )
            if stage is None:
                continue
            step = _step_label(row, self.labels)
            if row.kind == "change_vs_previous":
                title = f"{step}: {fmt_pct(row.value)}, was {fmt_pct(row.benchmark)}"
                opportunity = f"Find what changed at {step} since {row.benchmark_label}"
            elif row.dimension in (HOUR_OF_DAY, DAY_OF_WEEK):
                title = f"{step} at {row.segment}: {fmt_pct(row.value)} vs {fmt_pct(row.benchmark)}"
                opportunity = (
                    f"Serve {step.split(' → ')[-1].lower()} at {row.segment} (hours, staff, slots)"
                )
            else:
                who = f"{display_label(row.segment, self.labels)} ({display_label(row.dimension, self.labels).lower()})"
                title = f"{who}: {fmt_pct(row.value)} vs {fmt_pct(row.benchmark)}"
                opportunity = f"Fix {step} for {who}"
            rows.append(
                {
                    "stage": stage,
                    "title": title,
                    "value_at_stake": row.value_at_stake,
                    "opportunity": opportunity,
                }
            )
        return pd.DataFrame(rows, columns=["stage", "title", "value_at_stake", "opportunity"])

    def records(self) -> list[dict[str, Any]]:
        """Return the findings as plain records for ``metrics.json`` (fields: :data:`FINDING_FIELDS`)."""
        out = []
        for row in self.to_frame().to_dict("records"):
            record = {key: _plain(row.get(key)) for key in FINDING_FIELDS}
            record["rank"] = int(record["rank"])
            record["reached"] = int(record["reached"])
            out.append(record)
        return out

    def summary(self) -> str:
        """Say the top findings in plain language."""
        found = self.top(5)
        head = f"Findings in {self.period.label}"
        if found.empty:
            lines = [
                f"{head}: no gap is significant at q < {self.fdr:g} with at least "
                f"{self.min_users:,} users on both sides."
            ]
        else:
            lines = [
                f"{head} ({int(self.table['is_finding'].sum())} significant gaps, "
                f"{int(found.shape[0])} shown, ranked by value at stake):"
            ]
            lines += [f"{i}. {text}" for i, text in enumerate(found["text"], start=1)]
        lines += self.notes
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from html import escape

        items = "".join(f"<li>{escape(t)}</li>" for t in self.top(5)["text"])
        return (
            f"<h4>{escape(self.title)}</h4><ol>{items}</ol>"
            if items
            else f"<p>{escape(self.summary())}</p>"
        )

    def plot(self, ax=None, n: int = 8):
        """Bar chart of the top findings' value at stake with intervals."""
        from journeylab.core.viz import PALETTE, new_axes

        found = self.top(n)
        ax = ax or new_axes(figsize=(8, 0.5 * max(len(found), 2) + 1))
        if found.empty:
            ax.text(0.5, 0.5, "No significant gap", ha="center", va="center", parse_math=False)
            ax.set_axis_off()
            return ax
        names = [_short(row, self.labels) for row in found.itertuples()]
        y = np.arange(len(found))[::-1]
        lo = found["value_at_stake"] - found["value_at_stake_ci_low"]
        hi = found["value_at_stake_ci_high"] - found["value_at_stake"]
        ax.barh(y, found["value_at_stake"], xerr=[lo, hi], color=PALETTE[0], capsize=3)
        ax.set_yticks(y, labels=names)
        for label in ax.get_yticklabels():
            label.set_parse_math(False)
        ax.set_xlabel(f"Value at stake per month ({self.currency})")
        ax.set_title(f"Findings, {self.period.label}")
        return ax


def find(
    events: pd.DataFrame,
    stage_map: StageMap,
    *,
    month: str,
    conversion: str | Sequence[str],
    funnel: Sequence[str] = (),
    steps: Sequence[tuple[str, str]] = (),
    segments: Sequence[str] = (),
    users: pd.DataFrame | None = None,
    value_per_conversion: float | None = None,
    timezone: str = "UTC",
    timing: bool = True,
    previous: bool = True,
    labels: Mapping[str, str] | None = None,
    currency: str = "$",
    min_users: int = 30,
    fdr: float = 0.05,
    alpha: float = 0.05,
) -> FindingsResult:
    """Search a month for gaps by step, segment, timing and change, ranked by value at stake.

    Parameters
    ----------
    events : pandas.DataFrame
        Canonical event log (all months available: the previous month is read too).
    stage_map : StageMap
        Stage transitions are steps.
    month : str
        ``YYYY-MM``.
    conversion : str or list of str
        The conversion event(s).
    funnel : list of str
        Funnel steps; consecutive pairs are steps.
    steps : list of (from, to)
        More steps to search, each a pair of event or stage names (e.g. a job
        done on site → a review).
    segments : list of str
        Segment dimensions (columns of the events or of ``users``).
    users : pandas.DataFrame, optional
        One row per user with segment columns.
    value_per_conversion : float, optional
        Value of one conversion; default the mean ``value`` of the conversion events.
    timezone : str
        Time zone of hour-of-day and day-of-week.
    timing, previous : bool
        Search timing gaps / changes against the previous month.
    labels : mapping, optional
        Display names of events, stages and segment values.
    currency : str
        Sign money is written with.
    min_users : int
        Users needed on each side of a comparison.
    fdr : float
        False discovery rate (Benjamini-Hochberg) of the whole pass.
    alpha : float
        1 − confidence level of the intervals.

    Returns
    -------
    FindingsResult
    """
    check_range("min_users", min_users, low=1, low_inclusive=True)
    check_range("fdr", fdr, low=0, high=1)
    check_range("alpha", alpha, low=0, high=1)
    labels = dict(labels or {})
    conversions = (conversion,) if isinstance(conversion, str) else tuple(conversion)
    events = prepare_events(events)
    present = set(pd.unique(events["event"].dropna()).tolist())
    for name in [
        *conversions,
        *funnel,
        *(n for pair in steps for n in pair if n not in stage_map.names),
    ]:
        if name not in present:
            raise SchemaError(
                f"{name!r} occurs in no event row{did_you_mean(name, sorted(present))}.",
                column="event",
                hint="name events of the data in the project file (journeylab check lists them).",
            )
    columns = set(events.columns) | (set(users.columns) if users is not None else set())
    for dim in segments:
        if dim not in columns:
            raise SchemaError(
                f"Segment {dim!r} is not a column of the events or users table{did_you_mean(dim, sorted(columns))}.",
                column=dim,
            )
    period = resolve_period(month=month)
    steps = _steps(stage_map, funnel, steps)
    # The previous month is read first and only for each step's progress, so the two
    # months are never held at once; the search reads these columns only.
    before_period = period.previous()
    before_rows, before_progress = 0, {}
    if previous:
        before = in_period(events, before_period, ["user_id", "timestamp", "event"])
        before_rows = len(before)
        if before_rows:
            before_progress = {step: _progress(before, step) for step in steps}
        del before
    read = ["user_id", "timestamp", "event", "value", *segments]
    frame = in_period(events, period, read)
    if frame.empty:
        raise NotComputableError(f"No events in {period.label}: nothing to search.")
    notes: list[str] = []
    value_per_conversion = _value_per_conversion(frame, events, conversions, value_per_conversion)
    rows: list[dict[str, Any]] = []
    per_user: dict = {}  # what the segments of every step share (see _segments_at_entry)
    for step in steps:
        progress = _progress(frame, step, codes=True)
        if progress.empty:
            notes.append(f"{_step_label(step, labels)}: nobody reached it in {period.label}.")
            continue
        share = _downstream_share(frame, step, conversions)
        value_per_success = value_per_conversion * share
        dims: dict[str, pd.Series] = {}
        entry, at_entry = _entry_rows(frame, step, progress)
        dims.update(
            _segments_at_entry(
                frame, entry, segments, users, cache=per_user, progress=progress, at_entry=at_entry
            )
        )
        if timing:
            local = pd.to_datetime(progress["first_ts"], utc=True).dt.tz_convert(timezone)
            block = (local.dt.hour // 3) * 3
            dims[HOUR_OF_DAY] = block.map(
                {h: f"{h:02d}:00-{h + 3:02d}:00" for h in range(0, 24, 3)}
            )
            dims[DAY_OF_WEEK] = local.dt.day_of_week.map(dict(enumerate(_DAYS)))
        made = progress["made"].to_numpy()
        total_n, total_k = len(made), int(made.sum())
        for dim, seg in dims.items():
            seg = seg.astype("object").where(seg.notna(), None)
            table = pd.DataFrame({"segment": seg.to_numpy(), "made": made}).dropna(
                subset=["segment"]
            )
            if table["segment"].nunique() < 2:
                notes.append(
                    f"{display_label(dim, labels)} at {_step_label(step, labels)}: one value only, "
                    "nothing to compare."
                )
                continue
            counts = table.groupby("segment", sort=True)["made"].agg(["size", "sum"])
            n_with = int(counts["size"].sum())
            k_with = int(counts["sum"].sum())
            for segment, (n, k) in counts.iterrows():
                rest_n, rest_k = n_with - int(n), k_with - int(k)
                rows.append(
                    _row(
                        kind="timing" if dim in (HOUR_OF_DAY, DAY_OF_WEEK) else "segment_gap",
                        step=step,
                        dimension=dim,
                        segment=str(segment),
                        n=int(n),
                        k=int(k),
                        bench_n=rest_n,
                        bench_k=rest_k,
                        benchmark_label="other users at the step",
                        value_per_success=value_per_success,
                    )
                )
        if previous and before_rows:
            prev = before_progress[step]
            if len(prev):
                rows.append(
                    _row(
                        kind="change_vs_previous",
                        step=step,
                        dimension="month",
                        segment=period.label,
                        n=total_n,
                        k=total_k,
                        bench_n=len(prev),
                        bench_k=int(prev["made"].sum()),
                        benchmark_label=before_period.label,
                        value_per_success=value_per_success,
                    )
                )
    if previous and not before_rows:
        notes.append(
            f"No events in the previous month ({before_period.label}): no change to report."
        )
    if not rows:
        raise NotComputableError(
            f"No step of the journey was reached in {period.label}: nothing to search."
        )
    table = _test(pd.DataFrame(rows), alpha=alpha, fdr=fdr, min_users=min_users)
    table = _rank(table)
    table["text"] = [
        _text(row, labels, currency, period, alpha=alpha) if row.is_finding else ""
        for row in table.itertuples()
    ]
    return FindingsResult(
        table=table,
        period=period,
        previous=before_period if previous else None,
        value_per_conversion=value_per_conversion,
        currency=currency,
        labels=labels,
        notes=notes,
        fdr=fdr,
        min_users=min_users,
    )
