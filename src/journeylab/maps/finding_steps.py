"""The steps a findings pass searches and the counts it takes at each (see :mod:`journeylab.maps.findings`).

A step is a consecutive pair of funnel steps, of stages, or a pair the project
file names; for each, who reached it in the month, who made it, their segment
at the step's entry, and the value of one step success.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from journeylab.core.errors import NotComputableError, ParameterError, check_range
from journeylab.core.stages import StageMap
from journeylab.maps.periods import user_segment
from journeylab.maps.progress import events_matching, step_progress

HOUR_OF_DAY = "hour_of_day"
DAY_OF_WEEK = "day_of_week"
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class _Step:
    name: str  # "from → to" with the raw names
    source: str  # "funnel" or "stages"
    from_events: tuple[str, ...]
    to_events: tuple[str, ...]
    a: str
    b: str


# -- pieces -------------------------------------------------------------------
def _steps(
    stage_map: StageMap, funnel: Sequence[str], extra: Sequence[tuple[str, str]] = ()
) -> list[_Step]:
    steps = [
        _Step(f"{a} → {b}", "funnel", (a,), (b,), a, b)
        for a, b in zip(funnel, funnel[1:], strict=False)
    ]
    for a, b in extra:
        from_events = stage_map[a].events if a in stage_map.names else (a,)
        to_events = stage_map[b].events if b in stage_map.names else (b,)
        steps.append(_Step(f"{a} → {b}", "steps", tuple(from_events), tuple(to_events), a, b))
    names = stage_map.names
    steps += [
        _Step(f"{a} → {b}", "stages", stage_map[a].events, stage_map[b].events, a, b)
        for a, b in zip(names, names[1:], strict=False)
    ]
    if not steps:
        raise ParameterError(
            "No steps to search: give a funnel of two steps or more, or a stage map of two stages."
        )
    return steps


def _progress(frame: pd.DataFrame, step: _Step) -> pd.DataFrame:
    out = step_progress(
        frame, events_matching(frame, step.from_events), events_matching(frame, step.to_events)
    )
    out = out.set_index("user_id")
    out["first_ts"] = pd.to_datetime(out["first_ts"], unit="ns", utc=True)
    out["made"] = out["next_ts"].notna()
    return out


def _entry_rows(frame: pd.DataFrame, step: _Step, progress: pd.DataFrame) -> pd.DataFrame:
    """Return the row of each user's step entry (the first "from" event of the month)."""
    rows = frame.loc[events_matching(frame, step.from_events)].copy()
    rows["user_id"] = rows["user_id"].astype(str)
    first = progress["first_ts"]
    rows = rows.loc[rows["timestamp"] == rows["user_id"].map(first)]
    return rows.drop_duplicates("user_id").set_index("user_id")


def _segment_at_entry(
    frame: pd.DataFrame,
    entry: pd.DataFrame,
    dim: str,
    users: pd.DataFrame | None,
    *,
    cache: dict[str, pd.Series] | None = None,
    index: pd.Index | None = None,
) -> pd.Series:
    """Return each user's segment at the step: the users table, else the entry row's value, else the user's first value.

    The per-user value (from the users table, or the first in the month) does
    not depend on the step: with a ``cache`` it is computed once per dimension.
    With ``index`` (the users at the step) the result is for those users only,
    without aligning the entry rows with every user of the month first.
    """
    from_users = users is not None and dim in users.columns
    base = cache.get(dim) if cache is not None else None
    if base is None:
        base = user_segment(frame, dim, users if from_users else None)
        if cache is not None:
            cache[dim] = base
    if from_users:
        return base if index is None else base.reindex(index)
    at_entry = entry[dim] if dim in entry.columns else pd.Series(dtype=object)
    if index is None:
        return at_entry.dropna().combine_first(base)
    if at_entry.empty:
        return base.reindex(index)
    chosen = at_entry.dropna().reindex(index)
    return chosen.where(chosen.notna(), base.reindex(index))


def _downstream_share(frame: pd.DataFrame, step: _Step, conversions: tuple[str, ...]) -> float:
    if any(c in step.to_events for c in conversions):
        return 1.0
    made = pd.Index(frame.loc[events_matching(frame, step.to_events), "user_id"].unique())
    if made.empty:
        return 0.0
    converted = pd.Index(frame.loc[frame["event"].isin(conversions), "user_id"].unique())
    return float(made.isin(converted).mean())


def _value_per_conversion(
    frame: pd.DataFrame, events: pd.DataFrame, conversions: tuple[str, ...], given: float | None
) -> float:
    if given is not None:
        check_range("value_per_conversion", given, low=0, low_inclusive=True)
        return float(given)
    for data in (frame, events):
        if "value" in data:
            values = data.loc[data["event"].isin(conversions), "value"]
            if values.notna().any():
                return float(values.mean())
    raise NotComputableError(
        f"No value on the conversion events ({', '.join(conversions)}) to size the findings; "
        "set journey.value_per_conversion in the project file."
    )


def _row(
    *, kind, step, dimension, segment, n, k, bench_n, bench_k, benchmark_label, value_per_success
):
    return {
        "kind": kind,
        "step": step.name,
        "step_from": step.a,
        "step_to": step.b,
        "step_source": step.source,
        "dimension": dimension,
        "segment": segment,
        "reached": n,
        "made": k,
        "benchmark_reached": bench_n,
        "benchmark_made": bench_k,
        "benchmark_label": benchmark_label,
        "value_per_success": value_per_success,
    }
