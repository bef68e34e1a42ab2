"""The steps a findings pass searches and the counts it takes at each (see :mod:`journeylab.maps.findings`).

A step is a consecutive pair of funnel steps, of stages, or a pair the project
file names; for each, who reached it in the month, who made it, their segment
at the step's entry, and the value of one step success.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from journeylab.core.errors import NotComputableError, ParameterError, check_range
from journeylab.core.stages import StageMap
from journeylab.maps.periods import first_values, user_segment
from journeylab.maps.progress import (
    epoch_ns,
    events_matching,
    id_codes,
    step_progress,
    user_numbers,
)

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


def _progress(frame: pd.DataFrame, step: _Step, *, codes: bool = False) -> pd.DataFrame:
    """Each user's progress at ``step`` (see :func:`step_progress`), indexed by user id.

    With ``codes``, ``user_code`` (when the ids are numbered) numbers the users
    among :func:`id_codes` of ``frame["user_id"]``: the entry rows and segments
    are then found by number.
    """
    out = step_progress(
        frame,
        events_matching(frame, step.from_events),
        events_matching(frame, step.to_events),
        codes=codes,
    )
    out = out.set_index("user_id")
    out["first_ts"] = pd.to_datetime(out["first_ts"], unit="ns", utc=True)
    out["made"] = out["next_ts"].notna()
    return out


def _entry_rows(
    frame: pd.DataFrame, step: _Step, progress: pd.DataFrame
) -> tuple[pd.DataFrame, np.ndarray]:
    """Return the row of each user's step entry (the first "from" event of the month).

    Of the user's "from" rows at its ``first_ts``, the first in ``frame``'s order;
    indexed by user id. Also, for each row of ``progress``, the position of its
    user's entry row (-1: none). Text ids are matched by their codes (numbered
    once per column), so only the entry rows themselves are copied, and with
    ``progress["user_code"]`` no id is looked up as text.
    """
    is_from = events_matching(frame, step.from_events).to_numpy()
    coded = id_codes(frame["user_id"])
    if coded is None:
        rows = frame.loc[is_from].copy()
        rows["user_id"] = rows["user_id"].astype(str)
        rows = rows.loc[rows["timestamp"] == rows["user_id"].map(progress["first_ts"])]
        entry = rows.drop_duplicates("user_id").set_index("user_id")
        return entry, entry.index.get_indexer(progress.index)
    codes, names = coded
    if "user_code" in progress.columns:
        slot = progress["user_code"].to_numpy()
    else:
        slot = pd.Index(names).get_indexer(progress.index)
    found = slot >= 0
    first = np.zeros(len(names), dtype=np.int64)
    first[slot[found]] = epoch_ns(progress["first_ts"])[found]
    known = np.zeros(len(names), dtype=bool)
    known[slot[found]] = True
    rows = np.flatnonzero(is_from & (codes >= 0))
    user = codes[rows]
    at_first = known[user] & (epoch_ns(frame["timestamp"].iloc[rows]) == first[user])
    rows, user = rows[at_first], user[at_first]
    _, once = np.unique(user, return_index=True)  # each user's first such row, in frame order
    taken = np.sort(rows[once])
    entry = frame.iloc[taken]
    position = np.full(len(names), -1, dtype=np.int64)
    position[codes[taken]] = np.arange(len(taken))
    at_entry = np.where(found, position[np.where(found, slot, 0)], -1)
    return entry.assign(user_id=entry["user_id"].astype(str)).set_index("user_id"), at_entry


def _user_values(
    frame: pd.DataFrame, dim: str, users: pd.DataFrame | None, cache: dict | None
) -> pd.Series:
    """Each user's value of ``dim``: from the users table, else the first in ``frame`` (cached)."""
    base = cache.get(dim) if cache is not None else None
    if base is None:
        from_users = users is not None and dim in users.columns
        base = user_segment(frame, dim, users if from_users else None)
        if cache is not None:
            cache[dim] = base
    return base


def _take(values: pd.Series, positions: np.ndarray, index: pd.Index) -> pd.Series:
    """``values`` at ``positions`` (-1: missing), labelled ``index``: ``reindex`` by position."""
    taken = pd.api.extensions.take(values.array, positions, allow_fill=True)
    return pd.Series(taken, index=index, name=values.name)


def _segments_at_entry(
    frame: pd.DataFrame,
    entry: pd.DataFrame,
    dims: Sequence[str],
    users: pd.DataFrame | None,
    *,
    cache: dict | None,
    progress: pd.DataFrame,
    at_entry: np.ndarray,
) -> dict[str, pd.Series]:
    """Each user of ``progress``'s segment at the step, for every dimension of ``dims``.

    The users table's value, else the value on the user's entry row (the first
    "from" event of the month), else the user's first value in the month. The same
    as ``base.reindex(index)`` and ``entry[dim].dropna().reindex(index)`` per
    dimension, but the step's users are found once among the month's users and
    once among the entry rows (``at_entry``, as :func:`_entry_rows` gives it), not
    once per dimension; each dimension's values are then taken by position. The
    month's users are numbered as :func:`id_codes` numbers them when
    ``progress["user_code"]`` is there, so no id is looked up as text.
    ``cache`` keeps what does not depend on the step.
    """
    cache = {} if cache is None else cache
    index = progress.index
    from_users = {d for d in dims if users is not None and d in users.columns}
    firsts = [d for d in dims if d not in cache and d in frame.columns and d not in from_users]
    if firsts:  # the month's first values of every dimension, in one ordering of the rows
        cache.update(first_values(frame, firsts))
    by_code = "user_code" in progress.columns
    month_users = cache.get((_MONTH_USERS, by_code))
    if month_users is None:
        # the codes' own order when the steps carry codes (the ids as pd.unique gives them)
        distinct = (
            id_codes(frame["user_id"])[1] if by_code else pd.unique(frame["user_id"].astype(str))
        )
        month_users = cache[(_MONTH_USERS, by_code)] = pd.Index(distinct)
    at_month = progress["user_code"].to_numpy() if by_code else month_users.get_indexer(index)
    out: dict[str, pd.Series] = {}
    for dim in dims:
        base = _user_values(frame, dim, users, cache)
        key = (_POSITIONS, dim, by_code)
        positions = cache.get(key)
        if positions is None:
            # each month user's row in the dimension's values (-1: none), once per dimension
            positions = cache[key] = np.append(base.index.get_indexer(month_users), -1)
        # a user at the step missing from the month (never, for users of ``frame``) reads -1
        base_at = _take(base, positions[at_month], index)
        if dim in from_users or dim not in entry.columns:
            out[dim] = base_at
            continue
        chosen = _take(entry[dim], at_entry, index)
        out[dim] = chosen.where(chosen.notna(), base_at)
    return out


#: Keys of what the cache keeps besides the dimensions' values: objects, so no column
#: name can equal them.
_MONTH_USERS = object()
_POSITIONS = object()


def _downstream_share(frame: pd.DataFrame, step: _Step, conversions: tuple[str, ...]) -> float:
    if any(c in step.to_events for c in conversions):
        return 1.0
    # by the users' numbers (no id compared as text); the last slot is a missing id
    users = user_numbers(frame["user_id"])
    made_by = np.zeros(users.max(initial=-1) + 2, dtype=bool)
    made_by[users[events_matching(frame, step.to_events).to_numpy()]] = True
    made_by[-1] = False
    if not made_by.any():
        return 0.0
    converted_by = np.zeros_like(made_by)
    converted_by[users[frame["event"].isin(conversions).to_numpy()]] = True
    return float(np.count_nonzero(made_by & converted_by) / np.count_nonzero(made_by))


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
