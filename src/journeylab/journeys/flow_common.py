"""What transitions, flows and top paths share: the framing states and reading the journeys.

States
------
Transitions and flows name a touch by its ``level``: ``"channel"`` (default),
``"event"`` or ``"stage"`` (the stage map's stage of the touch's event). With
``level="event"`` or ``"stage"`` every event except the conversion is a touch
unless ``touch_events`` says otherwise. Four extra states frame the journeys:

- ``START`` — where every journey begins (transitions only);
- ``CONVERSION`` — the journey ended in a conversion;
- ``NULL`` — the journey ended without one (closed: nothing within the lookback);
- ``END`` — the journey is still open at the period end (censored; only with
  ``include_censored=True``).

The functions below check the names a call gives against the events and open
the journeys (built from events, or already built) in a DuckDB cursor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import duckdb
import pandas as pd

from journeylab.core import sql as engine
from journeylab.core.errors import ParameterError, check_in, require_names
from journeylab.core.sql import quote_list
from journeylab.journeys.build import Journeys, _journey_views
from journeylab.journeys.rules import check_journey_options

__all__ = ["START", "CONVERSION", "NULL", "END", "OTHER", "OUTCOMES", "Level"]

START, CONVERSION, NULL, END, OTHER = "START", "CONVERSION", "NULL", "END", "other"
OUTCOMES = (CONVERSION, NULL, END)
Level = Literal["channel", "event", "stage"]


def _journey_options(level: str, options: dict[str, Any]) -> dict[str, Any]:
    """Default touch set: channel touches for channels, every non-conversion event otherwise."""
    if level != "channel" and "touch_events" not in options:
        return {**options, "touch_events": "all"}
    return options


def _event_names(source: Any) -> list[str] | None:
    """Distinct event names of an event log (DataFrame, DuckDB relation or Parquet files)."""
    if isinstance(source, pd.DataFrame):
        if "event" not in source.columns:
            return None  # the journey builder names the missing column
        return [str(e) for e in pd.unique(source["event"].dropna())]
    if isinstance(source, duckdb.DuckDBPyRelation):
        if "event" not in source.columns:
            return None
        return [
            r[0]
            for r in source.project('CAST("event" AS VARCHAR)').distinct().fetchall()
            if r[0] is not None
        ]
    if isinstance(source, (str, Path)) or (
        isinstance(source, (list, tuple))
        and source
        and all(isinstance(p, (str, Path)) for p in source)
    ):
        paths = [str(p) for p in (source if isinstance(source, (list, tuple)) else [source])]
        with engine.cursor() as con:
            try:
                rows = con.execute(
                    f'SELECT DISTINCT CAST("event" AS VARCHAR) FROM read_parquet({quote_list(paths)})'
                ).fetchall()
            except duckdb.Error:
                return None  # unreadable or without an event column: the journey builder says why
        return [r[0] for r in rows if r[0] is not None]
    return None


def _journey_inputs(
    source: Any,
    stage_map: Any,
    options: dict[str, Any],
    *,
    project: Any,
    func: str,
    check_names: bool = True,
) -> tuple[Any, dict[str, Any]]:
    """Stage map and journey options for building journeys from events, checked against the events.

    ``project`` supplies the conversion, lookback and stage map not given;
    without one, ``conversion`` must be named. Conversion and listed touch
    events that no row carries are an error.
    """
    if project is not None and stage_map is None:
        stage_map = project.stage_map
    if isinstance(source, Journeys):  # built already: only the stages of level="stage" are needed
        return stage_map, options
    options = dict(options)
    if project is not None:
        options.setdefault("conversion", list(project.conversion))
        options.setdefault("lookback", project.lookback)
    if "conversion" not in options:
        raise ParameterError(
            f"{func}() builds journeys from events and needs conversion=: the event (or list of "
            "events) that counts as a conversion, e.g. conversion='purchase'; or pass project=."
        )
    if check_names:
        _check_names(options, _event_names(source))
    return stage_map, options


def _check_names(options: dict[str, Any], names: list[str] | None) -> None:
    """Fail on a conversion or listed touch event that no row carries (``names``: the events)."""
    if names is not None:
        conversion = options["conversion"]
        require_names(
            [conversion] if isinstance(conversion, str) else list(conversion), names, what="conversion event",
            hint="name the event your log records for a conversion (names are case-sensitive).",
        )  # fmt: skip
        touch = options.get("touch_events")
        if touch is not None and not (isinstance(touch, str) and touch == "all"):
            require_names(
                [touch] if isinstance(touch, str) else list(touch), names, what="touch event"
            )


def _open(source: Any, *, level: str, stage_map: Any, options: dict[str, Any], func: str):
    check_in("level", level, ["channel", "event", "stage"])
    check_journey_options(
        func,
        options,
        ["level", "collapse_repeats", "include_censored", "stage_map", "steps", "top", "n"],
    )
    if not isinstance(source, Journeys):
        options = _journey_options(level, options)
    return _journey_views(source, stage_map=stage_map, journey_options=options)


def _sequence_sql(touches: str, element: str, join: str, collapse_repeats: bool) -> str:
    """CTEs ``e`` (touches named at the level) and ``c`` (after collapsing repeats, renumbered)."""
    keep = "elem IS DISTINCT FROM prev" if collapse_repeats else "TRUE"
    return f"""
        e AS (SELECT t.journey_id, t.position, t."timestamp", {element} AS elem FROM {touches} t {join}),
        l AS (SELECT *, lag(elem) OVER (PARTITION BY journey_id ORDER BY position) AS prev FROM e),
        c AS (SELECT journey_id, elem, "timestamp",
                     row_number() OVER (PARTITION BY journey_id ORDER BY position) AS pos
              FROM l WHERE {keep})
    """
