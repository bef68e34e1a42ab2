"""Which touch to offer next: the first-order absorbing Markov chain of journeys.

:func:`next_best_touchpoint` uses the first-order absorbing Markov chain of
journeys (states = channels; absorbing conversion and null) to rank the next
touch by the probability of eventually converting from it. The chain is
attribution's own :class:`~journeylab.attribution.markov.MarkovChain`, fitted on
the path table as :func:`~journeylab.attribution.paths.read_path_table` reads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from journeylab.attribution.markov import CONVERSION, NULL, START, MarkovChain
from journeylab.core.errors import ParameterError, did_you_mean, require_columns
from journeylab.core.results import Result, fmt_pct, fmt_pp

__all__ = ["next_best_touchpoint", "NextBestTouchpointResult"]


@dataclass(repr=False, eq=False)
class NextBestTouchpointResult(Result):
    """Candidate next touches ranked by the probability of eventually converting from them."""

    state: str
    current_probability: float
    table: pd.DataFrame
    title: str = "Next best touchpoint"

    @property
    def best(self) -> str:
        """The next touch with the highest probability of eventual conversion."""
        return str(self.table["next_touch"].iloc[0])

    def to_frame(self) -> pd.DataFrame:
        """One row per candidate.

        Columns ``conversion_probability``, ``uplift`` (vs the current state) and
        ``transition_share``.
        """
        return self.table.copy()

    def display_frame(self) -> pd.DataFrame:
        """Format for readers."""
        t = self.table
        return pd.DataFrame(
            {
                "next touch": t["next_touch"],
                "P(convert)": t["conversion_probability"].map(fmt_pct),
                "uplift": t["uplift"].map(fmt_pp),
                "seen after current": t["transition_share"].map(fmt_pct),
            }
        )

    def summary(self) -> str:
        """Recommend the best next touch and say how much it adds."""
        t = self.table
        first = t.iloc[0]
        lines = [
            f"From {self.state} a customer converts with probability {fmt_pct(self.current_probability)} "
            "(first-order Markov chain of journeys).",
            f"Best next touch: {first['next_touch']} — {fmt_pct(first['conversion_probability'])} eventual "
            f"conversion, {fmt_pp(first['uplift'])} versus staying on the current path.",
        ]
        observed = t[t["transition_share"] > 0]
        if len(observed) and observed.iloc[0]["next_touch"] != first["next_touch"]:
            lines.append(
                f"Among touches customers actually take next, {observed.iloc[0]['next_touch']} is best "
                f"({fmt_pp(observed.iloc[0]['uplift'])})."
            )
        lines.append(
            "Assumes the journey after the next touch does not depend on how it was reached."
        )
        return "\n".join(lines)

    def plot(self, ax=None):
        """Bars of the uplift in conversion probability per candidate next touch."""
        from journeylab.core.viz import PALETTE, new_axes

        t = self.table.iloc[::-1]
        ax = new_axes(ax, figsize=(7, 0.42 * len(t) + 1.6))
        colours = [PALETTE[2] if u >= 0 else PALETTE[3] for u in t["uplift"]]
        bars = ax.barh(t["next_touch"], 100 * t["uplift"], color=colours, alpha=0.85)
        for bar, share in zip(bars, t["transition_share"], strict=True):
            # Labels sit right of the bar (or of zero for a negative bar), clear of the stage names.
            ax.annotate(
                f"taken next by {fmt_pct(share)}",
                (max(bar.get_width(), 0.0), bar.get_y() + bar.get_height() / 2),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                ha="left",
                fontsize=8,
                color="0.3",
            )
        ax.margins(x=0.25)
        ax.axvline(0, color="0.3", lw=0.8)
        ax.set_xlabel(
            f"change in P(convert) vs now ({fmt_pct(self.current_probability)}), percentage points"
        )
        ax.set_title(f"Next best touch from {self.state}")
        return ax


def next_best_touchpoint(
    paths_or_journeys: pd.DataFrame | Any,
    state: str | Sequence[str] = START,
    *,
    candidates: Sequence[str] | None = None,
    separator: str = " > ",
) -> NextBestTouchpointResult:
    """Rank the next touch by how much it raises the probability of converting.

    The journeys' first-order absorbing Markov chain (states = channels,
    absorbing ``(conversion)`` and ``(null)``, consecutive repeats collapsed)
    gives ``P(convert | state)`` for every state. For a customer whose last
    touch is ``state``, each candidate next touch ``c`` is scored by
    ``P(convert | c)`` and its uplift ``P(convert | c) − P(convert | state)``;
    ``transition_share`` is how often customers in ``state`` actually go to ``c``.
    The chain is :class:`~journeylab.attribution.markov.MarkovChain` of order 1,
    solved exactly.

    Parameters
    ----------
    paths_or_journeys : pandas.DataFrame, Journeys or fitted MarkovChain
        A path table (``path`` as a tuple of channels or a ``" > "``-joined string,
        ``conversions``, ``non_conversions``), an event log or built journeys (turned
        into a path table by :func:`journeylab.journeys.build.path_table` with its default
        rules), or a fitted first-order chain exposing ``conversion_probability_`` and
        ``transitions_frame()``.
    state : str or sequence of str
        The customer's current state: ``"(start)"`` (no touch yet), a channel, or
        the journey so far (its last channel is the state).
    candidates : sequence of str, optional
        Touches to consider; default every channel except the current one.
    separator : str
        Separator of string paths.

    Returns
    -------
    NextBestTouchpointResult

    Examples
    --------
    >>> paths = pd.DataFrame({"path": [("A", "B"), ("A",), ("B",)],
    ...                       "conversions": [1, 0, 2], "non_conversions": [1, 2, 0]})
    >>> next_best_touchpoint(paths, state="A").best
    'B'
    """
    if (
        isinstance(paths_or_journeys, pd.DataFrame)
        and "path" not in paths_or_journeys.columns
        and {"user_id", "timestamp", "event"} <= set(paths_or_journeys.columns)
    ):
        from journeylab.journeys.build import path_table

        paths_or_journeys = path_table(paths_or_journeys)
    elif not isinstance(paths_or_journeys, pd.DataFrame) and callable(
        getattr(paths_or_journeys, "path_table", None)
    ):
        paths_or_journeys = paths_or_journeys.path_table()
    if hasattr(paths_or_journeys, "conversion_probability_"):
        chain = paths_or_journeys
        if getattr(chain, "order", 1) != 1:
            raise ParameterError(
                f"next_best_touchpoint needs a first-order chain; this one has order {chain.order}."
            )
        conversion = chain.conversion_probability_
        transitions = chain.transitions_frame()
    elif isinstance(paths_or_journeys, pd.DataFrame):
        conversion, transitions = _markov_from_paths(paths_or_journeys, separator)
    else:
        raise ParameterError(
            "paths_or_journeys must be a path table (path, conversions, non_conversions) or a fitted "
            f"first-order MarkovChain, not {type(paths_or_journeys).__name__}."
        )
    conversion = pd.Series(conversion.to_numpy(float), index=[str(s) for s in conversion.index])
    channels = [s for s in conversion.index if s not in (START, CONVERSION, NULL)]
    if not isinstance(state, str):
        collapsed = [str(s) for s in state]
        state = collapsed[-1] if collapsed else START
    if state not in conversion.index or state in (CONVERSION, NULL):
        raise ParameterError(
            f"state == {state!r} is not a state of the journeys{did_you_mean(state, [START, *channels])}; "
            f"states are {[START, *channels]}."
        )
    if candidates is None:
        candidates = [c for c in channels if c != state]
    else:
        unknown = [c for c in candidates if c not in channels]
        if unknown:
            raise ParameterError(
                f"Candidate touch {unknown[0]!r} never appears in the journeys{did_you_mean(unknown[0], channels)}."
            )
        candidates = list(candidates)
    current = float(conversion[state])
    share = transitions[transitions["from"].astype(str) == state].set_index("to")["probability"]
    share.index = share.index.astype(str)
    table = pd.DataFrame({"next_touch": candidates})
    table["conversion_probability"] = conversion.reindex(candidates).to_numpy()
    table["uplift"] = table["conversion_probability"] - current
    table["relative_uplift"] = table["uplift"] / current if current > 0 else np.nan
    table["transition_share"] = share.reindex(candidates).fillna(0.0).to_numpy()
    table = table.sort_values(
        ["conversion_probability", "next_touch"], ascending=[False, True], ignore_index=True
    )
    table["rank"] = np.arange(1, len(table) + 1)
    return NextBestTouchpointResult(state=state, current_probability=current, table=table)


def _markov_from_paths(paths: pd.DataFrame, separator: str) -> tuple[pd.Series, pd.DataFrame]:
    """Fit the first-order chain of a path table; return P(convert) per state and the transitions."""
    require_columns(paths, ["path", "conversions", "non_conversions"], what="path")
    # Only conversions and non-conversions shape the chain; a value column is not read.
    chain = MarkovChain(order=1, separator=separator).fit(paths, separator=separator, value=None)
    return chain.conversion_probability_, chain.transitions_frame()
