"""The journey and funnel rules that both engines apply, read once.

:mod:`journeylab.journeys.build` (DuckDB) and :mod:`journeylab.journeys.spark`
(Spark) cut journeys and count funnels by the same rules. What they must agree
on lives here, so neither imports the other's internals:

1. the names of the explicit path elements, :data:`DIRECT`, :data:`NO_CHANNEL`
   and :data:`NO_STAGE`;
2. the journey options, their defaults and the unknown-option message
   (:data:`JOURNEY_DEFAULTS`, :func:`check_journey_options`);
3. the reading of those options into :class:`JourneyRules` (a conversion list,
   a positive lookback, a ``max_touches`` cap, and the period: ``start``,
   ``period_end`` or ``month``, in UTC through :mod:`journeylab.core.timeparse`);
4. the reading of funnel steps and of the entry window (:func:`parse_steps`,
   :func:`entry_window`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from journeylab.core.errors import ParameterError, check_range, did_you_mean
from journeylab.core.results import fmt_num, fmt_pct
from journeylab.core.stages import Stage, StageMap
from journeylab.core.timeparse import format_time, month_bounds, parse_duration, to_utc_timestamp

__all__ = [
    "MIN_NON_CONVERSIONS",
    "MIN_NON_CONVERSION_SHARE",
    "censoring_summary",
    "DIRECT",
    "NO_CHANNEL",
    "NO_STAGE",
    "MISSING_SEGMENT",
    "DEFAULT_TOUCHES",
    "JOURNEY_DEFAULTS",
    "JourneyRules",
    "check_journey_options",
    "parse_steps",
    "resolve_steps",
    "step_order_map",
    "entry_window",
]

#: The path of a conversion that has no touch in its journey.
DIRECT = "(direct)"
#: The channel name given to a touch that has none.
NO_CHANNEL = "(none)"
#: The stage name of an event that no stage of the stage map lists.
NO_STAGE = "(no stage)"
#: The segment of a funnel unit whose entry event has no value in the segment column.
MISSING_SEGMENT = "(missing)"
#: How the settings describe the default choice of touches.
DEFAULT_TOUCHES = "events with a channel, in a stage before the conversion's"

#: The options that cut journeys, with their defaults (see :func:`journeylab.journeys.build_journeys`).
JOURNEY_DEFAULTS: dict[str, Any] = {
    "conversion": None,  # required: the project file's journey.conversion
    "touch_events": None,
    "lookback": "30D",
    "period_end": None,
    "start": None,
    "month": None,
    "max_touches": None,
}

Steps = Sequence[str | Sequence[str]] | Mapping[str, str | Sequence[str]]


def check_journey_options(func: str, options: Mapping[str, Any], own: Sequence[str]) -> None:
    """Reject an option that is neither a journey option nor one of ``own``, with the closest name.

    Examples
    --------
    >>> check_journey_options("path_table", {"lookbak": "7D"}, ["level"])
    Traceback (most recent call last):
    ...
    journeylab.core.errors.ParameterError: path_table() got an unexpected option 'lookbak' (did you mean 'lookback'?).
    """
    unknown = set(options) - set(JOURNEY_DEFAULTS)
    if unknown:
        key = sorted(unknown)[0]
        raise ParameterError(
            f"{func}() got an unexpected option {key!r}{did_you_mean(key, [*JOURNEY_DEFAULTS, *own])}."
        )


@dataclass(frozen=True)
class JourneyRules:
    """The journey options, checked and read.

    Attributes
    ----------
    conversions : tuple of str
        The events that count as conversions (at least one).
    touch_events : list of str, "all" or None
        As given (a single name stays a string); never empty.
    lookback : pandas.Timedelta
        Positive.
    start : pandas.Timestamp or None
        Keep journeys that end on or after it (UTC).
    period_end : pandas.Timestamp or None
        The last instant observed (UTC); None: the log's last timestamp.
    month : str or None
        ``"YYYY-MM"`` when the period was given as a month.
    max_touches : int or None
        The cap on touches per journey.
    """

    conversions: tuple[str, ...]
    touch_events: Any
    lookback: pd.Timedelta
    start: pd.Timestamp | None
    period_end: pd.Timestamp | None
    month: str | None
    max_touches: int | None

    @classmethod
    def read(
        cls,
        *,
        conversion: str | Sequence[str],
        touch_events: Any,
        lookback: Any,
        period_end: Any,
        start: Any,
        month: Any,
        max_touches: Any,
    ) -> JourneyRules:
        """Check and read the journey options (see :data:`JOURNEY_DEFAULTS`).

        Examples
        --------
        >>> rules = JourneyRules.read(**{**JOURNEY_DEFAULTS, "conversion": "purchase", "month": "2026-02"})
        >>> rules.start, rules.period_end
        (Timestamp('2026-02-01 00:00:00+0000', tz='UTC'), Timestamp('2026-02-28 23:59:59.999999+0000', tz='UTC'))
        """
        if conversion is None:
            raise ParameterError(
                "Journeys need conversion=: the event (or list of events) that counts as a conversion, "
                "e.g. conversion='purchase' (the project file's journey.conversion)."
            )
        conversions = (conversion,) if isinstance(conversion, str) else tuple(conversion)
        if not conversions:
            raise ParameterError("conversion is empty; name the event that counts as a conversion.")
        if (
            touch_events is not None
            and not isinstance(touch_events, str)
            and not list(touch_events)
        ):
            raise ParameterError(
                "touch_events is empty; list the events that count as touches, or pass None."
            )
        look = parse_duration(lookback, "lookback")
        if max_touches is not None:
            if not isinstance(max_touches, (int, np.integer)) or isinstance(max_touches, bool):
                raise ParameterError(
                    f"max_touches == {max_touches!r}, must be a whole number or None."
                )
            check_range("max_touches", max_touches, low=1, low_inclusive=True)
            max_touches = int(max_touches)
        first = to_utc_timestamp(start, "start", optional=True)
        if month is not None:
            if start is not None or period_end is not None:
                raise ParameterError(
                    f"month == {month!r} sets both start and period_end; pass either month or start/period_end."
                )
            first, following = month_bounds(month)
            month = f"{first:%Y-%m}"
            end = following - pd.Timedelta(1, "us")  # the month's last instant
        else:
            end = to_utc_timestamp(period_end, "period_end", optional=True)
        if first is not None and end is not None and first > end:
            raise ParameterError(
                f"start == {format_time(first)} is after period_end == {format_time(end)}; "
                "no journey can end between."
            )
        return cls(conversions, touch_events, look, first, end, month, max_touches)

    def settings(self, period_end: pd.Timestamp | None) -> dict[str, Any]:
        """Return the rules as recorded with a result, with the period end actually used."""
        return {
            "conversion": self.conversions[0]
            if len(self.conversions) == 1
            else list(self.conversions),
            "touch_events": self.touch_events if self.touch_events is not None else DEFAULT_TOUCHES,
            "lookback": str(self.lookback),
            "period_end": period_end,
            "start": self.start,
            "month": self.month,
            "max_touches": self.max_touches,
        }


def parse_steps(steps: Steps) -> list[tuple[str, list[str]]]:
    """Normalise funnel steps to ``[(label, [event, ...]), ...]``.

    Examples
    --------
    >>> parse_steps(["view", ["cart", "wishlist"]])
    [('view', ['view']), ('cart | wishlist', ['cart', 'wishlist'])]
    """
    if isinstance(steps, str):
        raise ParameterError(
            "steps must list at least two steps, e.g. ['view', 'cart', 'purchase']."
        )
    items = list(steps.items()) if isinstance(steps, Mapping) else [(None, s) for s in steps]
    parsed = []
    for label, spec in items:
        names = [spec] if isinstance(spec, str) else list(spec)
        if not names or not all(isinstance(n, str) and n for n in names):
            raise ParameterError(
                f"Funnel step {label or spec!r} must be an event name or a list of event names."
            )
        parsed.append((str(label) if label is not None else " | ".join(names), names))
    if len(parsed) < 2:
        raise ParameterError(f"A funnel needs at least two steps; got {len(parsed)}.")
    labels = [p[0] for p in parsed]
    if len(set(labels)) != len(labels):
        raise ParameterError(f"Funnel step labels must differ; got {labels}.")
    return parsed


def resolve_steps(steps: Steps | None, stage_map: Any, *, project: Any) -> tuple[Steps, Any]:
    """Return the funnel steps and stage map from the arguments, else from the project file.

    The project file gives them as ``project.funnel`` and ``project.stage_map``.
    """
    if steps is None:
        if project is None or not project.funnel:
            raise ParameterError(
                "Name the funnel steps (steps=['view', 'cart', 'purchase']), or pass project= "
                "with a funnel in its project file."
            )
        steps = list(project.funnel)
    if stage_map is None and project is not None:
        stage_map = project.stage_map
    return steps, stage_map


def step_order_map(parsed: Sequence[tuple[str, Sequence[str]]]) -> StageMap:
    """Return a one-stage map listing the step events in step order (the tie-breaker without a stage map)."""
    names = tuple(dict.fromkeys(e for _, events in parsed for e in events))
    return StageMap((Stage("funnel steps", names),), source="funnel steps")


def entry_window(start: Any, end: Any) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """Read a funnel's entry window ``[start, end)`` in UTC; either bound may be None.

    Examples
    --------
    >>> entry_window("2026-10-01", None)
    (Timestamp('2026-10-01 00:00:00+0000', tz='UTC'), None)
    """
    first = to_utc_timestamp(start, "start", optional=True)
    last = to_utc_timestamp(end, "end", optional=True)
    if first is not None and last is not None and last <= first:
        raise ParameterError(
            f"end == {format_time(last)} is not after start == {format_time(first)}; "
            "units enter in [start, end)."
        )
    return first, last


#: When leaving open journeys out leaves fewer non-converting journeys than this, or
#: fewer than ``MIN_NON_CONVERSION_SHARE`` of the journeys, data-driven attribution
#: (Markov, Shapley) cannot tell which channels make conversions more likely.
MIN_NON_CONVERSIONS = 30
MIN_NON_CONVERSION_SHARE = 0.01


def censoring_summary(
    conversions: float,
    non_conversions: float,
    open_journeys: int,
    *,
    include_censored: bool = False,
    period_end: Any = None,
) -> dict[str, Any]:
    """Say how censoring shaped a path table, and whether data-driven attribution is identifiable.

    Parameters
    ----------
    conversions, non_conversions : float
        The totals of the path table.
    open_journeys : int
        Journeys still open at the period end (censored, rule 6).
    include_censored : bool
        Whether the table counts them as non-conversions (else they were left out).
    period_end : timestamp, optional
        The period end, for the message.

    Returns
    -------
    dict
        ``rule`` ("left out" or "counted as non-conversions"), ``open_journeys``,
        ``left_out``, ``conversions``, ``non_conversions``, ``journeys``,
        ``identifiable`` (False when open journeys were left out and fewer than
        :data:`MIN_NON_CONVERSIONS` non-converting journeys, or fewer than
        :data:`MIN_NON_CONVERSION_SHARE` of the journeys, remain),
        ``period_end`` and ``message`` (plain words, with what to do).

    Examples
    --------
    >>> censoring_summary(120, 0, 7_668)["identifiable"]
    False
    >>> censoring_summary(120, 7_668, 7_668, include_censored=True)["left_out"]
    0
    """
    open_journeys = int(open_journeys)
    left_out = 0 if include_censored else open_journeys
    journeys = float(conversions) + float(non_conversions)
    few = non_conversions < MIN_NON_CONVERSIONS or (
        journeys > 0 and non_conversions < MIN_NON_CONVERSION_SHARE * journeys
    )
    identifiable = not (left_out > 0 and few)
    at = f" ({format_time(period_end)})" if period_end is not None else ""
    count = count_text
    if open_journeys == 0:
        message = f"No journey was still open at the period end{at}: nothing was censored."
    elif include_censored:
        message = (
            f"{count(open_journeys)} journeys were still open at the period end{at}; they count as "
            "not (yet) converted (include_censored=True)."
        )
    else:
        message = (
            f"{count(open_journeys)} journeys were still open at the period end{at} and are left out "
            f"(censored): they have neither converted nor ended. The table keeps {count(journeys)} "
            f"closed journeys, {count(conversions)} converting and {count(non_conversions)} not."
        )
        if not identifiable:
            share = fmt_pct(non_conversions / journeys) if journeys else "–"
            remaining = "no" if non_conversions == 0 else f"only {count(non_conversions)} ({share})"
            message += (
                f" That leaves {remaining} non-converting journeys, too few to tell which channels "
                "make conversions more likely: data-driven attribution (Markov, Shapley) is not "
                "identifiable on this table. Count open journeys as not (yet) converted "
                "(include_censored=True), or end the period at least the lookback after the "
                "journeys of interest."
            )
        elif open_journeys > non_conversions:
            message += (
                f" Open journeys outnumber the closed non-converting ones ({count(open_journeys)} to "
                f"{count(non_conversions)}), so data-driven credit leans towards the channels of "
                "converting journeys; include_censored=True counts them as not (yet) converted."
            )
    return {
        "rule": "counted as non-conversions" if include_censored else "left out",
        "open_journeys": open_journeys,
        "left_out": left_out,
        "conversions": float(conversions),
        "non_conversions": float(non_conversions),
        "journeys": journeys,
        "identifiable": identifiable,
        "period_end": None if period_end is None else pd.Timestamp(period_end),
        "message": message,
    }


def count_text(n: float) -> str:
    """Write whole counts with separators and fractional weights with 3 significant digits."""
    return f"{int(n):,}" if float(n).is_integer() else fmt_num(n)
