"""Metric declarations and the user-level table an experiment is analysed on.

A metric is *binary* (a proportion: booked or not), *continuous* (a mean per
user: revenue, sessions) or a *ratio* of two per-user sums (revenue per
session: the user stays the randomisation unit, so its variance comes from
the delta method). Declare it with :class:`Metric` or a dict
``{"name": "booked", "kind": "binary"}``; heavy tails can be capped
(``winsorize=0.99`` caps at the pooled 99th percentile, ``cap=500`` at a
fixed value) and the cap is stated in the output.

:func:`user_metrics` builds the user-level table from an assignment table
and an event log: only events at or after each user's ``assigned_at`` count.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from journeylab.core.errors import (
    DataError,
    ParameterError,
    SchemaError,
    check_in,
    check_range,
    require_columns,
)
from journeylab.core.results import fmt_num
from journeylab.core.timeparse import parse_duration, to_utc_series

__all__ = ["Metric", "coerce_metrics", "user_metrics", "prepare_values"]

Kind = Literal["binary", "continuous", "ratio"]
_KINDS = ["binary", "continuous", "ratio"]


@dataclass(frozen=True)
class Metric:
    """A metric of an experiment.

    Parameters
    ----------
    name : str
        Name shown in results (and the column, unless ``column`` is given).
    kind : "binary", "continuous" or "ratio"
        Proportion, mean per user, or ratio of per-user sums.
    column : str, optional
        Column of the user-level table (default ``name``); for ratios use
        ``numerator`` and ``denominator`` instead.
    numerator, denominator : str, optional
        Columns of a ratio metric.
    winsorize : float, optional
        Upper quantile (e.g. 0.99) at which values are capped, computed over
        all arms together.
    cap : float, optional
        A fixed upper cap.

    Examples
    --------
    >>> Metric("booked", "binary").column
    'booked'
    """

    name: str
    kind: Kind = "continuous"
    column: str | None = None
    numerator: str | None = None
    denominator: str | None = None
    winsorize: float | None = None
    cap: float | None = None

    def __post_init__(self) -> None:
        check_in("kind", self.kind, _KINDS)
        if self.column is None and self.kind != "ratio":
            object.__setattr__(self, "column", self.name)
        if self.kind == "ratio" and (self.numerator is None or self.denominator is None):
            raise ParameterError(
                f"ratio metric {self.name!r} needs numerator= and denominator= columns."
            )
        if self.winsorize is not None:
            check_range("winsorize", self.winsorize, low=0.5, high=1)
        if self.winsorize is not None and self.cap is not None:
            raise ParameterError(f"metric {self.name!r}: give winsorize= or cap=, not both.")
        if self.kind == "binary" and (self.winsorize is not None or self.cap is not None):
            raise ParameterError(f"binary metric {self.name!r} cannot be capped.")

    @property
    def columns(self) -> list[str]:
        """Columns of the user-level table this metric reads."""
        if self.kind == "ratio":
            return [self.numerator, self.denominator]
        return [self.column]


def _infer_kind(values: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(values):
        return "binary"
    unique = pd.unique(values.dropna())
    if len(unique) <= 2 and set(np.asarray(unique, dtype=float).tolist()) <= {0.0, 1.0}:
        return "binary"
    return "continuous"


def coerce_metrics(
    metrics: Iterable[Metric | Mapping[str, Any] | str] | Metric | Mapping | str | None,
    data: pd.DataFrame,
) -> list[Metric]:
    """Turn Metric objects, dicts or column names into checked :class:`Metric` objects.

    A bare column name gets its kind inferred (0/1 or bool -> binary).
    ``None`` takes the metrics recorded by :func:`user_metrics`.

    Examples
    --------
    >>> frame = pd.DataFrame({"booked": [0, 1], "revenue": [0.0, 12.5]})
    >>> [m.kind for m in coerce_metrics(["booked", "revenue"], frame)]
    ['binary', 'continuous']
    """
    if metrics is None:
        metrics = data.attrs.get("metrics")
        if not metrics:
            raise ParameterError(
                "metrics=[...] is required: name the metric columns, e.g. "
                "metrics=[{'name': 'booked', 'kind': 'binary'}]."
            )
    if isinstance(metrics, Metric | Mapping | str):
        metrics = [metrics]
    out: list[Metric] = []
    for spec in metrics:
        if isinstance(spec, Metric):
            metric = spec
        elif isinstance(spec, str):
            require_columns(data, [spec], what="experiment")
            metric = Metric(spec, _infer_kind(data[spec]))
        elif isinstance(spec, Mapping):
            if "name" not in spec:
                raise ParameterError(f"a metric dict needs a 'name'; got {dict(spec)}.")
            fields = {"name", "kind", "column", "numerator", "denominator", "winsorize", "cap"}
            unknown = set(spec) - fields
            if unknown:
                raise ParameterError(
                    f"unknown metric field(s) {sorted(unknown)}; allowed: {sorted(fields)}."
                )
            spec = dict(spec)
            if "kind" not in spec:
                column = spec.get("column", spec["name"])
                require_columns(data, [column], what="experiment")
                spec["kind"] = _infer_kind(data[column])
            metric = Metric(**spec)
        else:
            raise ParameterError(
                f"cannot read a metric from {spec!r}: give a Metric, dict or column name."
            )
        require_columns(data, metric.columns, what="experiment")
        for col in metric.columns:
            if not (
                pd.api.types.is_numeric_dtype(data[col]) or pd.api.types.is_bool_dtype(data[col])
            ):
                raise DataError(
                    f"metric column {col!r} is not numeric (dtype {data[col].dtype}).",
                    column=col,
                    hint="convert it to numbers (0/1 for conversions).",
                )
        if metric.kind == "binary":
            values = pd.to_numeric(data[metric.column].astype("float64"), errors="coerce")
            bad = np.flatnonzero(~values.isin([0.0, 1.0]) & values.notna())
            if bad.size:
                raise DataError(
                    f"binary metric {metric.name!r} has values other than 0/1.",
                    column=metric.column,
                    rows=bad.tolist(),
                    hint="declare it kind='continuous', or convert it to 0/1.",
                )
        out.append(metric)
    names = [m.name for m in out]
    if len(set(names)) != len(names):
        raise ParameterError(f"metric names must be unique; got {names}.")
    return out


def prepare_values(metric: Metric, data: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Numeric values of a metric (capped if asked) and a note on the cap.

    Returns a frame with ``y`` (and ``d`` for ratios: numerator in ``y``,
    denominator in ``d``) and the note ("" without a cap).
    """
    if metric.kind == "ratio":
        frame = pd.DataFrame(
            {
                "y": pd.to_numeric(data[metric.numerator], errors="coerce").astype(float),
                "d": pd.to_numeric(data[metric.denominator], errors="coerce").astype(float),
            }
        )
    else:
        frame = pd.DataFrame({"y": data[metric.column].astype("float64")})
    note = ""
    if metric.winsorize is not None or metric.cap is not None:
        if metric.winsorize is not None:
            limit = float(frame["y"].quantile(metric.winsorize))
            how = f"the {metric.winsorize * 100:g}th percentile of all users"
        else:
            limit = float(metric.cap)
            how = "a fixed cap"
        capped = int((frame["y"] > limit).sum())
        frame["y"] = frame["y"].clip(upper=limit)
        note = f"{metric.name} capped at {fmt_num(limit)} ({how}; {capped:,} users capped)"
    return frame, note


def _event_spec(name: str, spec: Any) -> dict[str, Any]:
    if isinstance(spec, str | list | tuple):
        spec = {"event": spec}
    if not isinstance(spec, Mapping) or "event" not in spec:
        raise ParameterError(
            f"metric {name!r}: give an event name or a dict with 'event' (and 'agg'); got {spec!r}."
        )
    spec = dict(spec)
    events = spec["event"]
    spec["event"] = [events] if isinstance(events, str) else list(events)
    spec.setdefault("agg", "any")
    check_in(f"agg of metric {name!r}", spec["agg"], ["any", "count", "sum"])
    return spec


def user_metrics(
    assignments: pd.DataFrame,
    events: pd.DataFrame,
    metrics: Mapping[str, Any],
    *,
    window: str | pd.Timedelta | None = None,
    variant: str = "variant",
) -> pd.DataFrame:
    """Build the user-level experiment table: one row per assigned user.

    Parameters
    ----------
    assignments : DataFrame
        ``user_id``, ``variant`` and (recommended) ``assigned_at``; other
        columns (pre-period covariates) are kept.
    events : DataFrame
        Canonical event log (``user_id``, ``timestamp``, ``event``, ``value``).
    metrics : mapping name -> spec
        ``"purchase"`` (binary: did the user do it),
        ``{"event": "purchase", "agg": "sum"}`` (sum of ``value``;
        ``"count"`` counts events), or a ratio
        ``{"kind": "ratio", "numerator": {...}, "denominator": {...}}`` which
        adds ``<name>_numerator`` and ``<name>_denominator`` columns.
    window : str or Timedelta, optional
        Count only events within this long after assignment ("14D").

    Returns
    -------
    DataFrame
        The assignment columns plus one column per metric; ``attrs["metrics"]``
        holds the :class:`Metric` declarations so ``analyze(table)`` needs no
        ``metrics=``. Only events at or after ``assigned_at`` count.

    Examples
    --------
    >>> a = pd.DataFrame({"user_id": ["u1", "u2"], "variant": ["control", "b"],
    ...                   "assigned_at": pd.to_datetime(["2026-05-01", "2026-05-01"], utc=True)})
    >>> e = pd.DataFrame({"user_id": ["u1", "u2"], "event": ["purchase"] * 2,
    ...                   "timestamp": pd.to_datetime(["2026-04-30", "2026-05-02"], utc=True),
    ...                   "value": [10.0, 20.0]})
    >>> user_metrics(a, e, {"bought": "purchase"})["bought"].tolist()
    [0, 1]
    """
    require_columns(assignments, ["user_id", variant], what="assignments")
    require_columns(events, ["user_id", "timestamp", "event"], what="events")
    dup = assignments["user_id"].duplicated(keep=False)
    if dup.any():
        rows = np.flatnonzero(dup.to_numpy())
        raise DataError(
            f"{int(assignments['user_id'][dup].nunique()):,} users appear more than once in the "
            "assignment table; a user must have one variant.",
            column="user_id",
            rows=rows.tolist(),
            hint="de-duplicate the assignments (journeylab.load_assignments reports them) or "
            "drop users seen in several variants.",
        )
    specs: dict[str, dict[str, Any]] = {}
    for name, spec in metrics.items():
        if isinstance(spec, Mapping) and spec.get("kind") == "ratio":
            specs[f"{name}_numerator"] = _event_spec(name, spec.get("numerator"))
            specs[f"{name}_denominator"] = _event_spec(name, spec.get("denominator"))
        else:
            specs[name] = _event_spec(name, spec)
    wanted = sorted({e for s in specs.values() for e in s["event"]})
    cols = ["user_id", "timestamp", "event"] + (["value"] if "value" in events.columns else [])
    ev = events.loc[events["event"].isin(wanted), cols]
    ev = ev[ev["user_id"].isin(assignments["user_id"])]
    if "assigned_at" in assignments.columns:
        ev = ev.merge(assignments[["user_id", "assigned_at"]], on="user_id", how="inner")
        ts = to_utc_series(ev["timestamp"], "timestamp", source="events")
        start = to_utc_series(ev["assigned_at"], "assigned_at", source="assignments")
        keep = ts >= start
        if window is not None:
            keep &= ts < start + parse_duration(window, "window")
        ev = ev[keep.to_numpy()]
    elif window is not None:
        raise ParameterError("window= needs an 'assigned_at' column in the assignments.")
    table = assignments.reset_index(drop=True).copy()
    declared: list[Metric] = []
    for column, spec in specs.items():
        part = ev[ev["event"].isin(spec["event"])]
        if spec["agg"] == "sum":
            if "value" not in part.columns:
                raise _missing_value_error(column)
            per_user = part.groupby("user_id")["value"].sum()
        else:
            per_user = part.groupby("user_id").size()
        values = table["user_id"].map(per_user).fillna(0)
        table[column] = (values > 0).astype(int) if spec["agg"] == "any" else values.astype(float)
    for name, spec in metrics.items():
        if isinstance(spec, Mapping) and spec.get("kind") == "ratio":
            declared.append(
                Metric(
                    name, "ratio", numerator=f"{name}_numerator", denominator=f"{name}_denominator"
                )
            )
        else:
            kind = "binary" if specs[name]["agg"] == "any" else "continuous"
            declared.append(Metric(name, kind))
    table.attrs["metrics"] = declared
    table.attrs["notes"] = (
        ["only events at or after assigned_at count"]
        if "assigned_at" in assignments.columns
        else ["no assigned_at column: every event of an assigned user counts"]
    )
    return table


def _missing_value_error(column: str) -> SchemaError:
    return SchemaError(
        f"metric {column!r} sums event values, but the events have no 'value' column.",
        column="value",
        missing_columns=["value"],
        hint="map the revenue column onto 'value', or use agg='count'.",
    )
