"""First-order transitions between touches, from START to the outcome.

The states are those of :mod:`journeylab.journeys.flow_common`; journeys are
built from events by :func:`journeylab.journeys.build.build_journeys` (or passed
in already built), and the pairs are counted in DuckDB SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from journeylab.core.errors import check_in
from journeylab.core.results import Result, fmt_pct
from journeylab.core.sql import quote_literal
from journeylab.core.viz import SEQUENTIAL, new_axes
from journeylab.journeys.build import Journeys, _element_sql, fetch_df, fmt_count
from journeylab.journeys.event_pairs import event_transitions, small_transitions
from journeylab.journeys.flow_common import (
    CONVERSION,
    END,
    NULL,
    OUTCOMES,
    START,
    Level,
    _check_names,
    _journey_inputs,
    _journey_options,
    _open,
    _sequence_sql,
)
from journeylab.journeys.rules import JOURNEY_DEFAULTS, JourneyRules, check_journey_options

__all__ = ["Transitions", "transitions"]


@dataclass(repr=False, eq=False)
class Transitions(Result):
    """First-order transitions between touches, with START and outcome states.

    ``to_frame()``: ``from``, ``to``, ``count``, ``probability`` (of ``to``
    given ``from``; each ``from`` sums to 1) and ``median_time`` (Timedelta
    between the two touches, or from the last touch to the conversion; NaT for
    START and for NULL/END).
    """

    table: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)
    title: str = "Transitions"

    def to_frame(self) -> pd.DataFrame:
        """Return the transitions, one row per (from, to)."""
        return self.table

    def states(self) -> list[str]:
        """Touch states, most visited first."""
        t = self.table
        counts = (
            t[~t["from"].isin([START])]
            .groupby("from")["count"]
            .sum()
            .sort_values(ascending=False, kind="stable")
        )
        return list(counts.index)

    def matrix(
        self, values: Literal["probability", "count", "median_time"] = "probability"
    ) -> pd.DataFrame:
        """Return a from × to matrix (START first; outcome columns last)."""
        check_in("values", values, ["probability", "count", "median_time"])
        states = self.states()
        rows = [START, *states]
        cols = [*states, *[o for o in OUTCOMES if o in set(self.table["to"])]]
        m = self.table.pivot(index="from", columns="to", values=values).reindex(
            index=rows, columns=cols
        )
        if values != "median_time":
            m = m.fillna(0)
        return m

    def summary(self) -> str:
        """Describe the commonest first touch and each state's commonest next step."""
        t = self.table
        if t.empty:
            return "No journeys."
        first = t[t["from"] == START].sort_values("probability", ascending=False).iloc[0]
        conv = t[t["to"] == CONVERSION]
        lines = [f"Journeys start most often with {first['to']} ({fmt_pct(first['probability'])})."]
        if len(conv):
            best = conv[conv["from"] != START].sort_values("probability", ascending=False)
            if len(best):
                b = best.iloc[0]
                lines.append(
                    f"The touch most often followed by a conversion: {b['from']} "
                    f"({fmt_pct(b['probability'])} of its transitions)."
                )
        lines.append(
            f"{fmt_count(t.loc[t['from'] == START, 'count'].sum())} journeys, {len(self.states())} states; "
            f"repeats {'collapsed' if self.settings.get('collapse_repeats') else 'kept'} "
            f"(level: {self.settings.get('level')})."
        )
        return "\n".join(lines)

    def display_frame(self) -> pd.DataFrame:
        """Return the probability matrix, as percentages."""
        return self.matrix("probability").map(lambda p: fmt_pct(p) if p else "")

    def plot(self, ax=None, values: Literal["probability", "count"] = "probability"):
        """Draw the transition matrix as a heatmap (rows: from, columns: to)."""
        import seaborn as sns

        m = self.matrix(values)
        ax = new_axes(ax, figsize=(1.6 + 0.75 * m.shape[1], 1.2 + 0.5 * m.shape[0]))
        annotate = m.shape[0] * m.shape[1] <= 400
        labels = (
            m.map(lambda p: f"{p * 100:.0f}" if p >= 0.005 else "")
            if values == "probability"
            else m.map(lambda c: fmt_count(c) if c else "")
        )
        sns.heatmap(
            m,
            ax=ax,
            cmap=SEQUENTIAL,
            vmin=0,
            vmax=1 if values == "probability" else None,
            annot=labels if annotate else False,
            fmt="",
            cbar_kws={"label": "probability (%)" if values == "probability" else "transitions"},
            linewidths=0.5,
            linecolor="white",
            annot_kws={"fontsize": 8},
        )
        if values == "probability":
            ax.collections[0].colorbar.ax.yaxis.set_major_formatter(lambda v, _: f"{v * 100:.0f}")
        ax.set_xlabel("to")
        ax.set_ylabel("from")
        ax.set_title(f"Transitions between {self.settings.get('level', 'channel')}s (row %)")
        ax.tick_params(axis="x", rotation=45)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
        return ax


def transitions(
    events_or_journeys: Any,
    *,
    level: Level = "channel",
    collapse_repeats: bool = False,
    include_censored: bool = False,
    stage_map: Any = None,
    project: Any = None,
    **journey_options: Any,
) -> Transitions:
    """Count first-order transitions between touches, from START to the outcome.

    Parameters
    ----------
    events_or_journeys : DataFrame, DuckDB relation, Parquet path(s) or Journeys
        Events (journeys are built with ``journey_options``) or journeys.
    level : {"channel", "event", "stage"}
        What a state names.
    collapse_repeats : bool
        Merge consecutive identical states (no self-transitions).
    include_censored : bool
        Add still-open journeys, ending in ``END``.
    stage_map : StageMap, optional
        Stages for ``level="stage"`` and the tie-breaker (required with
        events, unless ``project`` gives it).
    project : Project, optional
        The project file: its ``conversion``, ``lookback`` and ``stage_map``.
    **journey_options
        Passed to :func:`journeylab.journeys.build.build_journeys`;
        ``conversion`` is required with events (unless ``project`` gives it).

    Returns
    -------
    Transitions

    Examples
    --------
    >>> from journeylab.core.stages import StageMap
    >>> stages = StageMap.from_dict({"stages": [{"name": "consideration", "events": ["ad_view", "visit"]},
    ...                                          {"name": "purchase", "events": ["purchase"]}]})
    >>> ev = pd.DataFrame({"user_id": ["a", "a", "a"],
    ...     "timestamp": pd.to_datetime(["2026-05-01", "2026-05-02", "2026-05-03"], utc=True),
    ...     "event": ["ad_view", "visit", "purchase"],
    ...     "channel": ["social", "email", None]})
    >>> t = transitions(ev, conversion="purchase", stage_map=stages)
    >>> t.to_frame()[["from", "to", "count"]].values.tolist()
    [['START', 'social', 1], ['email', 'CONVERSION', 1], ['social', 'email', 1]]
    """
    check_in("level", level, ["channel", "event", "stage"])
    built = isinstance(events_or_journeys, Journeys)
    stage_map, journey_options = _journey_inputs(
        events_or_journeys,
        stage_map,
        journey_options,
        project=project,
        func="transitions",
        check_names=built,  # from events, the names are checked on the first scan
    )
    if not built:
        check_journey_options(
            "transitions",
            journey_options,
            ["level", "collapse_repeats", "include_censored", "stage_map", "steps", "top", "n"],
        )
        options = _journey_options(level, journey_options)
        rules = JourneyRules.read(**{**JOURNEY_DEFAULTS, **options})
        how = {
            "level": level,
            "stage_map": stage_map,
            "collapse_repeats": collapse_repeats,
            "include_censored": include_censored,
            "check_names": lambda names: _check_names(journey_options, names),
        }
        # a small log is read without DuckDB (the same table; None: not read that way)
        counted = small_transitions(events_or_journeys, rules, **how)
        if counted is None:
            counted = event_transitions(events_or_journeys, rules, **how)
        frame, left_out, settings = counted
        return _result(
            frame,
            settings,
            left_out,
            level=level,
            collapse_repeats=collapse_repeats,
            include_censored=include_censored,
        )
    views = _open(
        events_or_journeys,
        level=level,
        stage_map=stage_map,
        options=journey_options,
        func="transitions",
    )
    with views as (con, touches, journeys, left_out, settings):
        element, join = _element_sql(level, stage_map, con, touches)
        outcome = (
            f"CASE WHEN j.converted THEN {quote_literal(CONVERSION)} WHEN j.censored THEN {quote_literal(END)} "
            f"ELSE {quote_literal(NULL)} END"
        )
        where = "TRUE" if include_censored else "NOT j.censored"
        frame = fetch_df(
            con.execute(
                f"""
                WITH {_sequence_sql(touches, element, join, collapse_repeats)},
                s AS (
                  SELECT c.*, lead(elem) OVER w AS nxt, lead("timestamp") OVER w AS nxt_t,
                         max(pos) OVER (PARTITION BY journey_id) AS n
                  FROM c WINDOW w AS (PARTITION BY journey_id ORDER BY pos)
                ),
                jj AS (SELECT * FROM {journeys} j WHERE {where}),
                pairs AS (
                  SELECT {quote_literal(START)} AS "from",
                         coalesce(s.elem, {quote_literal(CONVERSION)}) AS "to", NULL::DOUBLE AS secs
                  FROM jj j LEFT JOIN s ON s.journey_id = j.journey_id AND s.pos = 1
                  UNION ALL
                  SELECT s.elem, s.nxt, epoch(s.nxt_t) - epoch(s."timestamp")
                  FROM s JOIN jj j USING (journey_id) WHERE s.nxt IS NOT NULL
                  UNION ALL
                  SELECT s.elem, {outcome},
                         CASE WHEN j.converted THEN epoch(j.conversion_time) - epoch(s."timestamp") END
                  FROM s JOIN jj j USING (journey_id) WHERE s.pos = s.n
                )
                SELECT "from", "to", count(*) AS count, quantile_cont(secs, 0.5) AS median_secs
                FROM pairs GROUP BY "from", "to"
                ORDER BY "from", "to"
                """
            )
        )
    return _result(
        frame,
        settings,
        left_out,
        level=level,
        collapse_repeats=collapse_repeats,
        include_censored=include_censored,
    )


def _result(
    frame: pd.DataFrame,
    settings: dict[str, Any],
    left_out: dict[str, int],
    *,
    level: str,
    collapse_repeats: bool,
    include_censored: bool,
) -> Transitions:
    """Return the Transitions of the counted pairs (``from``, ``to``, ``count``, ``median_secs``)."""
    count = frame["count"].to_numpy().astype("int64")
    # each pair's share of the pairs from its state (a state without a name has none)
    state, _ = pd.factorize(frame["from"])
    named = state >= 0
    total = np.bincount(state[named], weights=count[named], minlength=1)
    frame = pd.DataFrame(
        {
            "from": frame["from"].array,
            "to": frame["to"].array,
            "count": count,
            "probability": count / np.where(named, total[np.maximum(state, 0)], np.nan),
            "median_time": pd.to_timedelta(frame["median_secs"], unit="s").array,
        }
    )
    return Transitions(
        table=frame,
        settings={
            **settings,
            "level": level,
            "collapse_repeats": collapse_repeats,
            "include_censored": include_censored,
            "left_out": left_out,
        },
    )
