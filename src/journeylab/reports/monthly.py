"""What the monthly report computes, outside the notebook so that it is tested and reused.

1. **Stage KPIs.** Every KPI of the project's stage map for the month and the
   month before, computed from the data (never from an earlier report), with
   the change, its interval and a test: the difference of two compound-Poisson
   totals (:func:`journeylab.maps.canvas_cells.kpi_change_test`, the same test
   the journey canvas marks): for distinct users it is the Wald test of two
   Poisson counts, for event counts and money it allows for heavy users. A
   scheduler can tell a real drop from noise.
2. **Trend.** Each KPI per month over the last ``months`` months where data
   exists; months before the data start are left blank and said once.
3. **metrics.json.** One document per report: the month, the project, the
   headline figures, the KPIs per stage, the ranked findings (see
   :mod:`journeylab.maps.findings`) and the sections that could not be
   computed with their one-line reason. :data:`METRICS_SCHEMA` is its
   JSON Schema (also in the README); :func:`validate_metrics` checks a
   document against it without third-party code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from journeylab.core.errors import DataError, ParameterError
from journeylab.core.project import Project, display_label
from journeylab.core.stages import StageMap

__all__ = [
    "stage_kpis",
    "kpi_trend",
    "month_rows",
    "METRICS_SCHEMA",
    "validate_metrics",
    "metrics_document",
]


def _month_window(month: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    period = pd.Period(month, freq="M")
    return period.start_time.tz_localize("UTC"), (period + 1).start_time.tz_localize("UTC")


#: The columns the KPIs, the headline and the reach read: month windows take only these.
KPI_COLUMNS = ("user_id", "event", "value")


def month_rows(
    events: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, columns=KPI_COLUMNS
) -> pd.DataFrame:
    """Rows with ``start <= timestamp < end``, only the given ``columns`` (those present).

    Taking a few columns instead of every property keeps month windows of a
    large log cheap; the rows and their order are those of a full filter.
    """
    ts = events["timestamp"]
    keep = [c for c in columns if c in events.columns]
    return events.loc[(ts >= start) & (ts < end), keep]


def _kpi_values(
    events: pd.DataFrame, stage_map: StageMap, periods: Sequence[pd.Period]
) -> dict[str, dict[tuple[str, str], float]]:
    """Each KPI in each calendar month of ``periods``, keyed by month then ``(stage, kpi)``.

    One row mask per KPI over the whole log (the event names are matched once)
    and one per month; a KPI's rows in a month are where both hold, so no
    month is copied out of the log.
    """
    from journeylab.maps.progress import column_codes, events_matching

    kpis = [(stage.name, kpi) for stage in stage_map for kpi in stage.kpis]
    matching = [events_matching(events, kpi.events).to_numpy() for _, kpi in kpis]
    # users counted as integer codes (numbered once), not by hashing their ids per KPI and month
    coded = column_codes(events["user_id"]) if any(k.measure == "users" for _, k in kpis) else None
    ts = events["timestamp"]
    out: dict[str, dict[tuple[str, str], float]] = {}
    for period in periods:
        start, end = _month_window(str(period))
        within = ((ts >= start) & (ts < end)).to_numpy()
        values: dict[tuple[str, str], float] = {}
        for (stage, kpi), match in zip(kpis, matching, strict=True):
            rows = within & match
            if kpi.measure == "count":
                value = float(np.count_nonzero(rows))
            elif kpi.measure == "users" and coded is not None:
                users = coded[0][rows]
                value = float(np.count_nonzero(np.bincount(users[users >= 0], minlength=1)))
            elif kpi.measure == "users":
                value = float(events["user_id"][rows].nunique())
            elif "value" in events.columns:
                value = float(events["value"][rows].sum())
            else:
                value = math.nan
            values[(stage, kpi.name)] = value
        out[str(period)] = values
    return out


def stage_kpis(
    events: pd.DataFrame, project: Project, month: str, *, alpha: float = 0.05
) -> pd.DataFrame:
    """Every stage KPI of the month beside the previous month, with the change and its test.

    Parameters
    ----------
    events : pandas.DataFrame
        The canonical event log (at least the month and the one before).
    project : Project
        Its stage map defines the KPIs; its labels name them.
    month : str
        ``YYYY-MM``.
    alpha : float
        Level of the test and of the interval of the change.

    Returns
    -------
    pandas.DataFrame
        One row per KPI: ``stage``, ``stage_label``, ``kpi``, ``label``,
        ``measure``, ``value``, ``previous`` (NaN when the data hold no
        previous month), ``change`` (relative) with ``change_ci_low`` /
        ``change_ci_high``, ``p_value`` and ``significant``.
    """
    from journeylab.maps.canvas_cells import kpi_change_test, kpi_moments

    start, end = _month_window(month)
    prev_start, _ = _month_window(str(pd.Period(month, freq="M") - 1))
    now = kpi_moments(month_rows(events, start, end), project.stage_map)
    previous_rows = month_rows(events, prev_start, start)
    has_previous = bool(len(previous_rows))
    before = kpi_moments(previous_rows, project.stage_map)
    test = kpi_change_test(
        now["total"], now["sum_sq"], before["total"], before["sum_sq"], alpha=alpha
    )
    rows = []
    i = 0
    for stage in project.stage_map:
        for kpi in stage.kpis:
            value = float(now["total"].iloc[i])
            prev = float(before["total"].iloc[i]) if has_previous else math.nan
            p = float(test["p_value"].iloc[i]) if has_previous else math.nan
            rows.append(
                {
                    "stage": stage.name,
                    "stage_label": project.label(stage.name),
                    "kpi": kpi.name,
                    "label": project.labels.get(kpi.name, kpi.label),
                    "measure": kpi.measure,
                    "value": value,
                    "previous": prev,
                    "change": float(test["change"].iloc[i]) if has_previous else math.nan,
                    "change_ci_low": float(test["change_ci_low"].iloc[i])
                    if has_previous
                    else math.nan,
                    "change_ci_high": float(test["change_ci_high"].iloc[i])
                    if has_previous
                    else math.nan,
                    "p_value": p,
                    "significant": bool(p < alpha) if not math.isnan(p) else False,
                }
            )
            i += 1
    return pd.DataFrame(rows, columns=_KPI_COLUMNS)


#: The columns of :func:`stage_kpis`, also when the stage map declares no KPI.
_KPI_COLUMNS = [
    "stage", "stage_label", "kpi", "label", "measure", "value", "previous", "change",
    "change_ci_low", "change_ci_high", "p_value", "significant",
]  # fmt: skip


def kpi_trend(
    events: pd.DataFrame, project: Project, month: str, *, months: int = 6
) -> pd.DataFrame:
    """Each KPI per calendar month, over the ``months`` months ending with ``month``.

    Months before the first event are left out (not shown as zeros).
    """
    if months < 1:
        raise ParameterError(f"months == {months}, must be >= 1.")
    end_period = pd.Period(month, freq="M")
    first = events["timestamp"].min()
    if pd.isna(first):
        raise DataError("The event log is empty: no trend to show.")
    first_period = first.tz_convert("UTC").tz_localize(None).to_period("M")
    periods = [
        period
        for period in pd.period_range(end=end_period, periods=months, freq="M")
        if period >= first_period
    ]
    rows = []
    for month_name, values in _kpi_values(events, project.stage_map, periods).items():
        for (stage, kpi), value in values.items():
            rows.append({"month": month_name, "stage": stage, "kpi": kpi, "value": value})
    return pd.DataFrame(rows, columns=["month", "stage", "kpi", "value"])


# -- metrics.json ---------------------------------------------------------------
_NUMBER = {"type": ["number", "null"]}
_FINDING = {
    "type": "object",
    "required": [
        "rank",
        "id",
        "kind",
        "step",
        "dimension",
        "segment",
        "reached",
        "value",
        "benchmark",
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
    ],
    "properties": {
        "rank": {"type": "integer"},
        "id": {"type": "string"},
        "kind": {"enum": ["segment_gap", "change_vs_previous", "timing"]},
        "step": {"type": "string"},
        "dimension": {"type": "string"},
        "segment": {"type": "string"},
        "reached": {"type": "integer"},
        "value": _NUMBER,
        "benchmark": _NUMBER,
        "benchmark_label": {"type": "string"},
        "difference": _NUMBER,
        "difference_ci_low": _NUMBER,
        "difference_ci_high": _NUMBER,
        "p_value": _NUMBER,
        "q_value": _NUMBER,
        "value_at_stake": _NUMBER,
        "value_at_stake_ci_low": _NUMBER,
        "value_at_stake_ci_high": _NUMBER,
        "counted": {"type": "boolean"},
        "overlaps": {"type": ["string", "null"]},
        "text": {"type": "string"},
    },
}
_KPI = {
    "type": "object",
    "required": ["stage", "kpi", "label", "measure", "value", "previous", "change", "p_value"],
    "properties": {
        "stage": {"type": "string"},
        "kpi": {"type": "string"},
        "label": {"type": "string"},
        "measure": {"enum": ["count", "users", "value"]},
        "value": _NUMBER,
        "previous": _NUMBER,
        "change": _NUMBER,
        "p_value": _NUMBER,
        "significant": {"type": "boolean"},
    },
}

#: JSON Schema (draft 2020-12 subset) of the monthly report's ``metrics.json``.
METRICS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "journeylab monthly report metrics",
    "type": "object",
    "required": ["month", "project", "currency", "headline", "kpis", "findings", "sections"],
    "properties": {
        "month": {"type": "string", "pattern": r"^\d{4}-\d{2}$"},
        "project": {"type": "string"},
        "currency": {"type": "string"},
        "headline": {"type": "object"},
        "kpis": {"type": "array", "items": _KPI},
        "findings": {"type": "array", "items": _FINDING},
        "sections": {
            "type": "object",
            "description": "section name -> 'shown' or the one-line reason it is not",
        },
    },
}


def _type_ok(value: Any, types: str | Sequence[str]) -> bool:
    names = [types] if isinstance(types, str) else list(types)
    checks = {
        "object": lambda v: isinstance(v, Mapping),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: (
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        ),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
    }
    return any(checks[n](value) for n in names)


def _validate(value: Any, schema: Mapping[str, Any], path: str, errors: list[str]) -> None:
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} is not one of {schema['enum']}")
        return
    if "type" in schema and not _type_ok(value, schema["type"]):
        errors.append(f"{path}: {value!r} is not of type {schema['type']}")
        return
    if "pattern" in schema and isinstance(value, str):
        import re

        if not re.search(schema["pattern"], value):
            errors.append(f"{path}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, Mapping):
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{path}: '{key}' is missing")
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                _validate(value[key], sub, f"{path}.{key}", errors)
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            _validate(item, schema["items"], f"{path}[{i}]", errors)


def validate_metrics(document: Mapping[str, Any]) -> list[str]:
    """Check a ``metrics.json`` document against :data:`METRICS_SCHEMA`; return the problems (none: valid)."""
    errors: list[str] = []
    _validate(document, METRICS_SCHEMA, "metrics", errors)
    return errors


def _plain(value: Any) -> Any:
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else float(value)
    return value


def metrics_document(
    *,
    month: str,
    project: Project,
    headline: Mapping[str, Any],
    kpis: pd.DataFrame,
    findings: Sequence[Mapping[str, Any]],
    sections: Mapping[str, str],
) -> dict[str, Any]:
    """Assemble ``metrics.json`` and check it against the schema (a ``DataError`` if it does not fit)."""
    kpi_records = [
        {
            key: _plain(row[key])
            for key in (
                "stage",
                "kpi",
                "label",
                "measure",
                "value",
                "previous",
                "change",
                "p_value",
                "significant",
            )
        }
        for row in kpis.to_dict("records")
    ]
    document = {
        "month": month,
        "project": project.name,
        "currency": project.currency,
        "headline": {str(k): _plain(v) for k, v in headline.items()},
        "kpis": kpi_records,
        "findings": [dict(f) for f in findings],
        "sections": dict(sections),
    }
    problems = validate_metrics(document)
    if problems:
        raise DataError("metrics.json does not fit its schema:\n  " + "\n  ".join(problems[:10]))
    return document


def label_kpi(row: Mapping[str, Any], labels: Mapping[str, str]) -> str:
    """Display name of a KPI row: its label, or its name made readable."""
    return labels.get(str(row.get("kpi")), str(row.get("label") or display_label(row.get("kpi"))))
