"""Sessions by the inactivity-gap rule."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from journeylab.core.errors import ParameterError, require_columns
from journeylab.core.timeparse import parse_duration
from journeylab.io.loaders import sort_events

__all__ = ["sessionize"]


# ---------------------------------------------------------------------------
# sessions
# ---------------------------------------------------------------------------
def sessionize(
    events: pd.DataFrame,
    gap: str | pd.Timedelta = "30min",
    *,
    column: str = "session_id",
    overwrite: bool = False,
    stage_map: Any = None,
) -> pd.DataFrame:
    """Give every event a session id by the inactivity-gap rule.

    Within a user, events are ordered by the stable tie-breaker; a new
    session starts at the user's first event and after any silence longer
    than ``gap`` (strictly longer: an event exactly ``gap`` after the
    previous one stays in the session). Session ids are
    ``"<user_id>#<n>"`` with ``n`` counting from 1 per user.

    Parameters
    ----------
    events : pandas.DataFrame
        Event log with ``user_id``, ``timestamp``, ``event``.
    gap : str or Timedelta
        Longest silence inside a session.
    column : str
        Name of the session column to write.
    overwrite : bool
        Replace an existing ``column``; without it an existing one is an error
        (logs that carry their own sessions should keep them).
    stage_map : StageMap, optional
        For the tie-breaker (default: the sample's map).

    Returns
    -------
    pandas.DataFrame
        A copy of ``events`` (same row order) with ``column`` added.

    Examples
    --------
    >>> ev = pd.DataFrame({"user_id": ["a", "a", "a"],
    ...     "timestamp": pd.to_datetime(["2026-01-01 10:00", "2026-01-01 10:20",
    ...                                  "2026-01-01 11:00"], utc=True),
    ...     "event": ["visit"] * 3})
    >>> sessionize(ev)["session_id"].tolist()
    ['a#1', 'a#1', 'a#2']
    """
    require_columns(events, ("user_id", "timestamp", "event"), what="events")
    delta = parse_duration(gap, "gap")
    if column in events.columns and not overwrite:
        raise ParameterError(
            f"The events already have a {column!r} column; pass overwrite=True to replace it "
            "with gap-based sessions, or keep the log's own sessions."
        )
    out = events.copy()
    if out.empty:
        out[column] = pd.Series([], dtype="string", index=out.index)
        return out
    # Same order as journeylab.io.loaders.sort_events; __row maps back to the input rows.
    keyed = pd.DataFrame(
        {
            "user_id": out["user_id"].astype("string"),
            "timestamp": pd.to_datetime(out["timestamp"], utc=True),
            "event": out["event"],
            **{c: out[c] for c in ("channel", "value") if c in out},
            "__row": np.arange(len(out)),
        }
    )
    ordered = sort_events(keyed, stage_map)
    users = ordered["user_id"].to_numpy(dtype=object, na_value=None)
    new_user = np.ones(len(users), dtype=bool)
    new_user[1:] = users[1:] != users[:-1]
    gaps = ordered["timestamp"].diff().gt(delta).to_numpy(dtype=bool, na_value=False)
    number = (
        pd.Series((new_user | gaps).astype("int64"))
        .groupby(ordered["user_id"], sort=False, dropna=False)
        .cumsum()
    )
    ids = np.empty(len(out), dtype=object)
    ids[ordered["__row"].to_numpy()] = (
        ordered["user_id"] + "#" + number.astype("string")
    ).to_numpy(dtype=object, na_value=None)
    out[column] = pd.array(ids, dtype="string")
    return out
