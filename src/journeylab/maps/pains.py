"""Pain points: where the journey loses people, ranked by the value at stake.

For each *step* of the journey (every pair of consecutive stages of the stage
map, plus the event-to-event steps the caller names, such as ``cart →
purchase``, and the consecutive steps of the project's funnel), each
*segment dimension* (any column of the events or of a ``users`` table such as
``platform``, the ``touchpoint`` that brought the user to the step, or a
ready-made Series user → segment such as :func:`response_speed` gives) and
each segment, :func:`pain_points` measures

- ``reached``: users with a "from" event in the period,
- ``converted``: those with a "to" event at or after their first "from" event,
- the step conversion with a Wilson interval,
- a benchmark conversion: the best segment of the same step and dimension
  (``benchmark="best_segment"``; segments with fewer than ``min_users`` are
  neither benchmarks nor ranked) or the same segment in the previous period
  (``benchmark="previous_period"``),
- the value at stake::

      reached × max(benchmark − conversion, 0) × value per step success

  where the value per step success is the value per conversion (default: the
  mean ``value`` of the conversion events) times the share of users who made
  the step that converted in the period (1 for steps that end in the
  conversion). The interval propagates the binomial uncertainty of both rates
  through the Newcombe interval of the gap (statsmodels
  ``confint_proportions_2indep(method="newcombe")``), floored at 0.

Picking the best segment as benchmark favours lucky segments (winner's curse);
``min_users`` limits it, and the interval on the gap shows how much the
benchmark itself is uncertain.

The vocabulary is the caller's: ``conversion``, ``steps`` and ``segments``
are arguments (or come from ``project=``, the project file), never defaults
naming a particular business. A step, conversion or segment that the data do
not carry is an error naming it and the closest names present; a dimension
with a single value is kept and noted ("only one value of ...: no
comparison").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from journeylab.core.errors import (
    NotComputableError,
    ParameterError,
    check_in,
    check_range,
    require_names,
)
from journeylab.core.stages import StageMap
from journeylab.maps.pain_result import TOUCHPOINT, PainPointsResult
from journeylab.maps.periods import in_period, prepare_events, resolve_period, user_segment
from journeylab.maps.progress import events_matching, step_progress, two_proportion, wilson

__all__ = ["pain_points", "PainPointsResult", "Step", "response_speed", "TOUCHPOINT"]


StepSpec = tuple[str, str] | tuple[str, str, str]


@dataclass(frozen=True)
class Step:
    """A step of the journey: from one set of events to another, with the words that name it."""

    name: str
    kind: Literal["stage", "event"]
    from_events: tuple[str, ...]
    to_events: tuple[str, ...]
    words: str

    @classmethod
    def between(cls, a: str, b: str, stage_map: StageMap, words: str | None = None) -> Step:
        """Build a step between two stage names or two event names/patterns.

        ``words`` finishes "users drop out ..." ("at the checkout"); the
        default is "between <a> and <b>".
        """
        text = words or f"between {a} and {b}"
        if a in stage_map.names and b in stage_map.names:
            return cls(f"{a} → {b}", "stage", stage_map[a].events, stage_map[b].events, text)
        return cls(f"{a} → {b}", "event", (a,), (b,), text)


def response_speed(
    events: pd.DataFrame,
    *,
    request_event: str,
    response_event: str,
    minutes_column: str,
    fast_minutes: float = 60,
    name: str = "response_speed",
) -> pd.Series:
    """Label each user with a request by how fast the first response came.

    ``fast (≤ N min)`` when the first ``response_event`` with a value in
    ``minutes_column`` took at most ``fast_minutes``, ``slow (> N min)``
    otherwise, ``no response`` when none came. Users without a
    ``request_event`` are left out. Pass the Series to :func:`pain_points`
    (or :func:`journeylab.maps.journey_maps.journey_map`) as a segment.

    Parameters
    ----------
    events : pandas.DataFrame
        Event log with ``user_id``, ``timestamp``, ``event`` and ``minutes_column``.
    request_event, response_event : str
        The events of a request (a call, a chat, a quote request) and of its answer.
    minutes_column : str
        Column holding the response time in minutes, on the response events.
    fast_minutes : float
        The threshold between fast and slow.
    name : str
        Name of the returned Series (the dimension's name).

    Returns
    -------
    pandas.Series
        user → label, named ``name``.

    Raises
    ------
    UnknownNameError
        An event that no row carries, or a ``minutes_column`` that is not a column.

    Examples
    --------
    >>> t = pd.Timestamp("2026-10-01", tz="UTC")
    >>> ev = pd.DataFrame({"user_id": ["a", "a", "b", "b", "c"],
    ...     "timestamp": [t, t, t, t, t], "event": ["chat", "reply", "chat", "reply", "chat"],
    ...     "wait_min": [None, 5.0, None, 90.0, None]})
    >>> response_speed(ev, request_event="chat", response_event="reply", minutes_column="wait_min").to_dict()
    {'a': 'fast (≤ 60 min)', 'b': 'slow (> 60 min)', 'c': 'no response'}
    """
    require_names(
        [minutes_column], events.columns, what="minutes column", absent="is not a column of the events",
        column=None, patterns=False,
    )  # fmt: skip
    require_names(
        [request_event, response_event], pd.unique(events["event"].dropna()), patterns=False
    )
    requests = pd.Index(events.loc[events["event"] == request_event, "user_id"].unique())
    answers = events.loc[
        (events["event"] == response_event) & events[minutes_column].notna(),
        ["user_id", "timestamp", minutes_column],
    ]
    first = (
        answers.sort_values("timestamp", kind="stable")
        .groupby("user_id", sort=False)[minutes_column]
        .first()
        .astype(float)
    )
    label = pd.Series(
        np.where(
            first <= fast_minutes,
            f"fast (≤ {fast_minutes:g} min)",
            f"slow (> {fast_minutes:g} min)",
        ),
        index=first.index,
        dtype=object,
    )
    out = label.reindex(requests).fillna("no response")
    out.index.name = "user_id"
    return out.rename(name)


def _touchpoint(frame: pd.DataFrame, from_mask: pd.Series) -> pd.Series:
    """Channel of each user's first "from" event, else the last channel seen before it."""
    firsts = frame.loc[
        from_mask, ["user_id", "timestamp"] + (["channel"] if "channel" in frame else [])
    ]
    firsts = firsts.sort_values("timestamp", kind="stable").drop_duplicates("user_id")
    if "channel" not in frame:
        return pd.Series("(no channel)", index=firsts["user_id"].to_numpy(), name=TOUCHPOINT)
    missing = firsts["channel"].isna()
    if missing.any():
        seen = frame.loc[frame["channel"].notna(), ["user_id", "timestamp", "channel"]].sort_values(
            "timestamp", kind="stable"
        )
        lookup = firsts.loc[missing, ["user_id", "timestamp"]].sort_values(
            "timestamp", kind="stable"
        )
        back = pd.merge_asof(
            lookup,
            seen.rename(columns={"channel": "before"}),
            on="timestamp",
            by="user_id",
            direction="backward",
        )
        firsts = firsts.merge(back[["user_id", "before"]], on="user_id", how="left")
        firsts["channel"] = (
            firsts["channel"].astype(object).where(firsts["channel"].notna(), firsts["before"])
        )
    label = (
        firsts["channel"]
        .astype(object)
        .where(firsts["channel"].notna(), "(no channel)")
        .astype(str)
    )
    return pd.Series(
        label.to_numpy(), index=firsts["user_id"].astype(str).to_numpy(), name=TOUCHPOINT
    )


def _step_rates(
    frame: pd.DataFrame,
    step: Step,
    dims: Sequence[str],
    user_dims: Mapping[str, pd.Series],
) -> pd.DataFrame:
    """Reached / converted per (dimension, segment) of one step in one period."""
    from_mask = events_matching(frame, step.from_events)
    if not from_mask.any():
        return pd.DataFrame()
    progress = step_progress(frame, from_mask, events_matching(frame, step.to_events))
    progress["converted"] = progress["next_ts"].notna()
    rows = []
    for dim in dims:
        labels = _touchpoint(frame, from_mask) if dim == TOUCHPOINT else user_dims[dim]
        seg = progress["user_id"].map(labels)
        counts = (
            progress.loc[seg.notna()]
            .groupby(seg.loc[seg.notna()].astype(str))["converted"]
            .agg(["size", "sum"])
        )
        rows.append(
            pd.DataFrame(
                {
                    "step": step.name,
                    "dimension": dim,
                    "segment": counts.index.astype(str),
                    "reached": counts["size"].to_numpy(),
                    "converted": counts["sum"].to_numpy(),
                }
            )  # fmt: skip
        )
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def _downstream_share(frame: pd.DataFrame, step: Step, conversions: Sequence[str]) -> float:
    """Share of the users who made the step that converted in the period (1 for steps ending in the conversion)."""
    if any(_matches(c, p) for c in conversions for p in step.to_events):
        return 1.0
    made = pd.Index(frame.loc[events_matching(frame, step.to_events), "user_id"].unique())
    if made.empty:
        return 0.0
    converted = pd.Index(frame.loc[frame["event"].isin(conversions), "user_id"].unique())
    return float(made.isin(converted).mean())


def _matches(event: str, pattern: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(event, pattern)


def pain_points(
    events: pd.DataFrame,
    stage_map: StageMap | Mapping | str | None = None,
    *,
    conversion: str | Sequence[str] | None = None,
    steps: Sequence[StepSpec] | None = None,
    segments: Sequence[str | pd.Series] | None = None,
    month: str | None = None,
    start: Any = None,
    end: Any = None,
    value_per_conversion: float | None = None,
    benchmark: Literal["best_segment", "previous_period"] = "best_segment",
    users: pd.DataFrame | None = None,
    min_users: int = 30,
    alpha: float = 0.05,
    currency: str | None = None,
    project: Any = None,
) -> PainPointsResult:
    """Rank the journey's pain points by the value at stake.

    Parameters
    ----------
    events : pandas.DataFrame
        Canonical event log; ``value`` on conversion events, ``channel`` for
        touchpoints.
    stage_map : StageMap, dict or YAML path
        Stage transitions come from it (required, unless ``project`` gives it).
    conversion : str or sequence of str
        The event(s) that are the conversion (default: the project's).
    steps : sequence of (from, to) or (from, to, words), optional
        Steps as pairs of stage names or event names/patterns; ``words``
        finishes "users drop out ..." (``"at the checkout"``). Default: every
        consecutive stage pair, plus the consecutive steps of the project's
        funnel and its extra ``steps``.
    segments : sequence of str or Series
        Segment dimensions: columns of the events or of ``users``, the derived
        ``"touchpoint"`` (channel that brought the user to the step; skipped,
        with a note, when the events have no channel), or named Series user →
        segment (e.g. :func:`response_speed`, ``personas.assignments``).
        Default: the project's ``segments`` and ``"touchpoint"``.
    month, start, end
        The period (``"YYYY-MM"`` or a ``[start, end)`` window; default all data).
    value_per_conversion : float, optional
        Value of one conversion; default the project's, else the mean
        ``value`` of the conversion events.
    benchmark : {"best_segment", "previous_period"}
        What each segment's conversion is compared with.
    users : pandas.DataFrame, optional
        One row per user with attribute columns usable in ``segments``.
    min_users : int
        Segments with fewer users reaching the step are neither benchmark nor ranked.
    alpha : float
        1 − confidence level of the intervals.
    currency : str, optional
        ISO 4217 code the values at stake are written in (default: the
        project's ``currency``, else USD).
    project : Project, optional
        The project file: ``stage_map``, ``conversion``, ``funnel``,
        ``segments``, ``value_per_conversion`` and ``currency`` stand in for the
        arguments left out.

    Returns
    -------
    PainPointsResult

    Raises
    ------
    UnknownNameError
        A conversion, step or segment that the data do not carry.
    NotComputableError
        No events in the period, no step occurring in it, or no value to size with.

    Examples
    --------
    >>> from journeylab.datasets.sample import make_sample, sample_project
    >>> shop = make_sample(seed=1, n_users=3000, vertical="ecommerce")
    >>> pp = pain_points(shop.events, sample_project("ecommerce").stage_map, conversion="purchase",
    ...                  steps=[("add_to_cart", "purchase", "at the checkout")], segments=["platform"],
    ...                  month="2026-10", currency="EUR")
    >>> print(pp.findings(1)[0])  # doctest: +NORMALIZE_WHITESPACE
    Users with platform = android drop out at the checkout 1.8× as often as users with platform
    = ios (80.8% vs 45.7%; 52 reached the step); closing the gap is worth €1,324 a month [€550,
    €1,982].
    """
    check_in("benchmark", benchmark, ["best_segment", "previous_period"])
    check_range("min_users", min_users, low=1, low_inclusive=True)
    check_range("alpha", alpha, low=0, high=1)
    if value_per_conversion is None and project is not None:
        value_per_conversion = project.value_per_conversion
    if currency is None:
        currency = getattr(project, "currency", None) or "USD"
    if value_per_conversion is not None:
        check_range("value_per_conversion", value_per_conversion, low=0, low_inclusive=True)
    events = prepare_events(events)
    if stage_map is None and project is not None:
        stage_map = project.stage_map
    stage_map = StageMap.coerce(stage_map)
    if conversion is None:
        if project is None:
            raise ParameterError(
                "Name the conversion: conversion='purchase' (the event, or list of events, "
                "that counts as one), or pass project=."
            )
        conversion = list(project.conversion)
    conversions = [conversion] if isinstance(conversion, str) else [str(c) for c in conversion]
    present = [str(e) for e in pd.unique(events["event"].dropna())]
    require_names(conversions, present, what="conversion event", patterns=False)
    if segments is None:
        if project is None:
            candidates = [
                c for c in events.columns if c not in ("user_id", "timestamp", "event", "value")
            ]
            raise ParameterError(
                "Name the segment dimensions: segments=[...] with columns of the events or users "
                f"(the events have {candidates}), 'touchpoint', or Series user → segment; or pass project=."
            )
        segments = [*project.segments, TOUCHPOINT]
    period = resolve_period(events["timestamp"], month=month, start=start, end=end)
    frame = in_period(events, period)
    if frame.empty:
        raise NotComputableError(
            f"No events in the period {period.label}: no pain points to rank. Choose a period with events."
        )

    if steps is None:
        pairs: list[tuple[str, ...]] = list(zip(stage_map.names, stage_map.names[1:], strict=False))
        funnel = list(project.funnel) if project is not None else []
        pairs += list(zip(funnel, funnel[1:], strict=False))
        pairs += (
            [tuple(pair) for pair in project.steps] if project is not None else []
        )  # the project's extra steps
    else:
        pairs = []
        for item in steps:
            if isinstance(item, str) or len(item) not in (2, 3):
                raise ParameterError(
                    f"Step {item!r} must be a pair (from, to) or a triple (from, to, words) of stage or event names."
                )
            pairs.append(tuple(str(x) for x in item))
    names = list(dict.fromkeys(n for pair in pairs for n in pair[:2]))
    require_names(
        names, [*present, *stage_map.names], what="step name", absent="is neither a stage nor an event of the data",
        present_label="stages and events",
        hint="name stages of the stage map or events of the log (names are case-sensitive).",
    )  # fmt: skip
    unique: dict[str, Step] = {}
    for p in pairs:  # one step per (from, to): the first words given win
        step = Step.between(p[0], p[1], stage_map, p[2] if len(p) == 3 else None)
        unique.setdefault(step.name, step)
    step_list = list(unique.values())

    if value_per_conversion is None:
        conv_values = (
            frame.loc[frame["event"].isin(conversions), "value"]
            if "value" in frame
            else pd.Series(dtype=float)
        )
        if conv_values.notna().sum() == 0 and "value" in events:
            conv_values = events.loc[events["event"].isin(conversions), "value"]
        if conv_values.notna().sum() == 0:
            raise NotComputableError(
                f"No value on the {' / '.join(conversions)} events to size the pain points; "
                "pass value_per_conversion= (the value of one conversion)."
            )
        value_per_conversion = float(conv_values.mean())

    notes: list[str] = []
    dims: list[str] = []
    given: dict[str, pd.Series] = {}
    columns = [*events.columns, *(users.columns if users is not None else [])]
    for dim in segments:
        if isinstance(dim, pd.Series):
            # a ready-made user → segment Series, e.g. personas.assignments or response_speed(...)
            name = str(dim.name or "segment")
            given[name] = dim
            dims.append(name)
            continue
        if dim == TOUCHPOINT:
            if "channel" not in frame:
                notes.append("touchpoint skipped: the events have no 'channel' column.")
                continue
        else:
            require_names(
                [dim], columns, what="segment", column=None, patterns=False,
                absent=f"is not a column of the events{' or the users table' if users is not None else ''}",
            )  # fmt: skip
        dims.append(dim)

    def rates(part: pd.DataFrame) -> pd.DataFrame:
        user_dims: dict[str, pd.Series] = {}
        for dim in dims:
            if dim in given:
                user_dims[dim] = user_segment(part, given[dim])
            elif dim != TOUCHPOINT:
                user_dims[dim] = user_segment(part, dim, users)
        tables = [_step_rates(part, step, dims, user_dims) for step in step_list]
        tables = [t for t in tables if len(t)]
        if not tables:
            return pd.DataFrame(columns=["step", "dimension", "segment", "reached", "converted"])
        return pd.concat(tables, ignore_index=True)

    table = rates(frame)
    if table.empty:
        raise NotComputableError(
            f"None of the steps occurs in {period.label}: no pain points to rank."
        )
    for dim, values in table.groupby("dimension", sort=False)["segment"].unique().items():
        if len(values) == 1:
            notes.append(f"only one value of {dim} ({values[0]}) in {period.label}: no comparison.")
    table["conversion"] = table["converted"] / table["reached"]
    table["conversion_ci_low"], table["conversion_ci_high"] = wilson(
        table["converted"], table["reached"], alpha
    )
    eligible = table["reached"] >= min_users

    previous = None
    if benchmark == "best_segment":
        ranked = table.loc[eligible].sort_values(
            ["conversion", "reached"], ascending=[False, False], kind="stable"
        )
        best = ranked.drop_duplicates(["step", "dimension"]).set_index(["step", "dimension"])
        key = pd.MultiIndex.from_frame(table[["step", "dimension"]])
        table["benchmark"] = best["segment"].reindex(key).to_numpy()
        table["benchmark_reached"] = best["reached"].reindex(key).to_numpy()
        table["benchmark_converted"] = best["converted"].reindex(key).to_numpy()
    else:
        previous = period.previous()
        before = in_period(events, previous)
        prev = (
            rates(before)
            if len(before)
            else pd.DataFrame(columns=["step", "dimension", "segment", "reached", "converted"])
        )
        prev = prev.rename(
            columns={"reached": "benchmark_reached", "converted": "benchmark_converted"}
        )
        table = table.merge(prev, on=["step", "dimension", "segment"], how="left")
        table["benchmark"] = np.where(table["benchmark_reached"].notna(), previous.label, None)
        eligible = table["reached"] >= min_users
        if len(before) == 0:
            notes.append(
                f"no events in the previous period ({previous.label}): nothing to compare with."
            )
    table["benchmark_conversion"] = table["benchmark_converted"] / table["benchmark_reached"]
    gap = two_proportion(
        table["benchmark_converted"].fillna(0),
        table["benchmark_reached"].fillna(0),
        table["converted"],
        table["reached"],
        alpha,
    )
    # Segments below min_users, and benchmarks below it, are not sized.
    sized = eligible & (table["benchmark_reached"].fillna(0) >= min_users)
    table["gap"] = np.where(sized, np.clip(gap["diff"], 0, None), np.nan)
    table["gap_ci_low"] = np.where(sized, np.clip(gap["diff_ci_low"], 0, None), np.nan)
    table["gap_ci_high"] = np.where(sized, np.clip(gap["diff_ci_high"], 0, None), np.nan)
    table["p_value"] = np.where(sized, gap["p_value"], np.nan)

    shares = {s.name: _downstream_share(frame, s, conversions) for s in step_list}
    table["value_per_success"] = value_per_conversion * table["step"].map(shares).astype(float)
    for col, src in (
        ("value_at_stake", "gap"),
        ("value_at_stake_ci_low", "gap_ci_low"),
        ("value_at_stake_ci_high", "gap_ci_high"),
    ):
        table[col] = table["reached"] * table[src] * table["value_per_success"]
    table["sized"] = sized
    table = table.sort_values(
        ["value_at_stake", "reached"], ascending=[False, False], na_position="last", kind="stable"
    )
    table = table.reset_index(drop=True)
    words = {s.name: s.words for s in step_list}
    return PainPointsResult(
        table=table,
        period=period,
        previous=previous,
        benchmark=benchmark,
        value_per_conversion=value_per_conversion,
        step_words=words,
        notes=notes,
        alpha=alpha,
        min_users=min_users,
        currency=currency,
    )
