"""Where units went instead: what they did after reaching a funnel step but not the next."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from journeylab.core.errors import ParameterError, check_in, check_range
from journeylab.core.results import Result, fmt_pct
from journeylab.core.sql import quote_list
from journeylab.core.viz import PALETTE, new_axes, percent_axis
from journeylab.journeys.build import fetch_df
from journeylab.journeys.funnel_counts import _funnel_units
from journeylab.journeys.rules import Steps, parse_steps, resolve_steps

__all__ = ["NO_FURTHER_EVENT", "WhereInstead", "where_instead"]

#: The row of :func:`where_instead` for units that did nothing after the step.
NO_FURTHER_EVENT = "(no further event)"


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
