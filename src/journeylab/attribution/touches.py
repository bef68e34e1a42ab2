"""Touch-level frames: recognise them and group them into a path table.

A touch-level frame has one row per touch (``journey_id``, ``timestamp``,
``channel``, ``converted`` and optionally ``value``), as
``Journeys.touches`` of :mod:`journeylab.journeys.build` gives;
:func:`touches_to_path_table` groups it in DuckDB into the path table that
:func:`journeylab.attribution.paths.read_path_table` reads.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from journeylab.core import sql as engine
from journeylab.core.errors import require_columns

__all__ = ["TOUCH_COLUMNS", "touches_to_path_table", "is_touch_frame"]

#: Columns of a touch-level frame (``Journeys.touches`` of journeylab.journeys.build).
TOUCH_COLUMNS = ("journey_id", "timestamp", "channel", "converted")


def touches_to_path_table(
    touches: pd.DataFrame,
    *,
    journey_id: str = "journey_id",
    timestamp: str = "timestamp",
    channel: str = "channel",
    converted: str = "converted",
    value: str | None = "value",
) -> pd.DataFrame:
    """Group a touch-level frame into a path table (in DuckDB).

    Touches are ordered by ``timestamp`` within each journey, ties kept in
    input order. Rows with a missing channel keep their journey (it may end
    with an empty path) but add no touch.

    Parameters
    ----------
    touches : pandas.DataFrame
        One row per touch with ``journey_id``, ``timestamp``, ``channel``,
        ``converted`` (bool, per journey) and optionally ``value`` (the
        journey's conversion value, repeated on its touches).

    Returns
    -------
    pandas.DataFrame
        Columns ``path`` (tuple), ``conversions``, ``value``, ``non_conversions``.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"journey_id": [1, 1, 2], "timestamp": [1, 2, 1],
    ...                   "channel": ["A", "B", "B"], "converted": [True, True, False]})
    >>> touches_to_path_table(t).path.tolist()
    [('A', 'B'), ('B',)]
    """
    required = [journey_id, timestamp, channel, converted]
    if value is not None and value in touches.columns:
        required.append(value)
    require_columns(touches, required, what="touch")
    frame = pd.DataFrame(
        {
            "jid": touches[journey_id].to_numpy(),
            "ts": touches[timestamp].to_numpy(),
            "ch": touches[channel].astype(object).where(touches[channel].notna(), None),
            "conv": touches[converted].astype(bool).to_numpy(),
            "val": (
                pd.to_numeric(touches[value], errors="coerce").fillna(0.0).to_numpy()
                if value is not None and value in touches.columns
                else np.zeros(len(touches))
            ),
            "rn": np.arange(len(touches)),
        }
    )
    with engine.connect() as con:
        con.register("touches", frame)
        out = con.execute(
            """
            WITH j AS (
                SELECT jid,
                       coalesce(list(ch ORDER BY ts, rn) FILTER (WHERE ch IS NOT NULL),
                                []::VARCHAR[]) AS path,
                       bool_or(conv) AS conv,
                       max(val) AS val
                FROM touches GROUP BY jid
            )
            SELECT path,
                   sum(CASE WHEN conv THEN 1 ELSE 0 END)::DOUBLE AS conversions,
                   sum(CASE WHEN conv THEN val ELSE 0 END)::DOUBLE AS value,
                   sum(CASE WHEN conv THEN 0 ELSE 1 END)::DOUBLE AS non_conversions
            FROM j GROUP BY path ORDER BY path
            """
        ).df()
    out["path"] = [tuple(p) for p in out["path"]]
    return out


def is_touch_frame(frame: Any) -> bool:
    """Tell whether ``frame`` looks like a touch-level frame rather than a path table."""
    return isinstance(frame, pd.DataFrame) and all(c in frame.columns for c in TOUCH_COLUMNS)
