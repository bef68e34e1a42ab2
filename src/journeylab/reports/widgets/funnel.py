"""The funnel explorer: :func:`journeylab.journeys.funnels.funnel` by segment, device, month, window and order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import pandas as pd

from journeylab.core.errors import ParameterError, SchemaError, did_you_mean
from journeylab.core.timeparse import month_bounds
from journeylab.reports.widgets._base import ALL, NONE, _dropdown, _Explorer, _frame_of, _png

#: The funnel an explorer opens on when no steps are given (the sample's booking funnel).
DEFAULT_FUNNEL_STEPS = ("site_visit", "booking_started", "booking_completed")
_CORE_COLUMNS = {
    "user_id",
    "timestamp",
    "event",
    "session_id",
    "value",
    "first_seen",
    "response_minutes",
}
_MAX_SEGMENT_VALUES = 25


def _segment_columns(events: pd.DataFrame, users: pd.DataFrame | None) -> list[str]:
    """Columns with a handful of values that can split a funnel, events' first."""
    out = []
    for frame in (events, users):
        if frame is None:
            continue
        for col in frame.columns:
            if col in _CORE_COLUMNS or col in out:
                continue
            series = frame[col]
            if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_datetime64_any_dtype(
                series
            ):
                continue
            if 2 <= series.nunique(dropna=True) <= _MAX_SEGMENT_VALUES:
                out.append(col)
    return out


def _funnel_result(
    events: Any,
    steps: Sequence[Any] | Mapping[str, Any] | None = None,
    *,
    users: pd.DataFrame | None = None,
    segment: str | None = None,
    device: str | None = None,
    period: str | None = None,
    window: str = "7D",
    order: Literal["strict", "any"] = "strict",
    grain: Literal["user", "session"] = "user",
    stage_map: Any = None,
):
    from journeylab.journeys.funnels import funnel

    frame = _frame_of(events)
    users = _frame_of(users)
    if not isinstance(frame, pd.DataFrame):
        raise ParameterError(
            "events must be a pandas DataFrame (or a loaded table) to filter by device and segment."
        )
    segment = None if segment in (None, "", NONE) else segment
    device = None if device in (None, "", ALL) else device
    period = None if period in (None, "", ALL) else period
    if device is not None:
        if "device" not in frame.columns:
            raise SchemaError(
                "The device filter needs a device column, which the events lack.",
                column="device",
                missing_columns=["device"],
                hint="load events with a device column (columns={'your_name': 'device'}) or leave device unset.",
            )
        frame = frame[frame["device"] == device]
    if segment is not None and segment not in frame.columns:
        if users is None or segment not in users.columns:
            known = list(frame.columns) + ([] if users is None else list(users.columns))
            raise ParameterError(
                f"segment == {segment!r} is neither an events column nor a users column{did_you_mean(segment, known)}."
            )
        frame = frame.merge(
            users[["user_id", segment]].drop_duplicates("user_id"), on="user_id", how="left"
        )
    start = end = None
    if period is not None:
        start, end = month_bounds(period, "period")
    return funnel(
        frame,
        list(steps or DEFAULT_FUNNEL_STEPS) if not isinstance(steps, Mapping) else steps,
        window=window,
        order=order,
        grain=grain,
        segment=segment,
        start=start,
        end=end,
        stage_map=stage_map,
    )


def funnel_data(
    events: Any,
    steps: Sequence[Any] | Mapping[str, Any] | None = None,
    *,
    users: pd.DataFrame | None = None,
    segment: str | None = None,
    device: str | None = None,
    period: str | None = None,
    window: str = "7D",
    order: Literal["strict", "any"] = "strict",
    grain: Literal["user", "session"] = "user",
    stage_map: Any = None,
) -> pd.DataFrame:
    """Return the funnel table behind :class:`FunnelExplorer` for one set of control values.

    Parameters
    ----------
    events : DataFrame or LoadedTable
        The event log.
    steps : list or dict, optional
        Funnel steps (see :func:`journeylab.journeys.funnels.funnel`); default
        :data:`DEFAULT_FUNNEL_STEPS`.
    users : DataFrame, optional
        One row per user; its columns (acquisition channel, persona …) can be segments.
    segment : str, optional
        Column to split by, from the events (value on the entry event) or the users table.
    device : str, optional
        Keep only events on this device.
    period : str, optional
        Month ``YYYY-MM`` in which units enter the funnel.
    window, order, grain, stage_map
        As in :func:`journeylab.journeys.funnels.funnel`.

    Returns
    -------
    pandas.DataFrame
        ``FunnelResult.to_frame()``: one row per (segment, step).

    Examples
    --------
    >>> funnel_data(ws.events, device="mobile", period="2026-10")  # doctest: +SKIP
    """
    return _funnel_result(
        events,
        steps,
        users=users,
        segment=segment,
        device=device,
        period=period,
        window=window,
        order=order,
        grain=grain,
        stage_map=stage_map,
    ).to_frame()


class FunnelExplorer(_Explorer):
    """Funnel by segment, device, month, window and order (:func:`journeylab.journeys.funnels.funnel`).

    Parameters
    ----------
    events : DataFrame or LoadedTable
        The event log.
    steps : list or dict, optional
        Funnel steps; default the booking funnel :data:`DEFAULT_FUNNEL_STEPS`.
    users : DataFrame, optional
        One row per user, for segments such as ``acquisition_channel`` and ``persona``.
    windows : sequence of str
        Choices of the window control.
    grain, stage_map
        As in :func:`journeylab.journeys.funnels.funnel`.

    Attributes
    ----------
    controls : dict
        ``segment``, ``device``, ``period``, ``window``, ``order`` widgets.

    Examples
    --------
    >>> fx = FunnelExplorer(ws.events, users=ws.users)  # doctest: +SKIP
    >>> fx.set(device="mobile").data()["entrants"]  # doctest: +SKIP
    """

    title = "Funnel explorer"

    def __init__(
        self,
        events: Any,
        steps: Sequence[Any] | Mapping[str, Any] | None = None,
        users: pd.DataFrame | None = None,
        *,
        windows: Sequence[str] = ("1D", "7D", "14D", "30D"),
        grain: Literal["user", "session"] = "user",
        stage_map: Any = None,
    ) -> None:
        import ipywidgets as w

        super().__init__()
        self.events = _frame_of(events)
        self.users = _frame_of(users)
        if not isinstance(self.events, pd.DataFrame):
            raise ParameterError(
                "FunnelExplorer needs the events as a pandas DataFrame (or a loaded table)."
            )
        self.steps = steps if steps is not None else list(DEFAULT_FUNNEL_STEPS)
        self.grain = grain
        self.stage_map = stage_map
        segments = _segment_columns(self.events, self.users)
        devices = (
            sorted(self.events["device"].dropna().astype(str).unique())
            if "device" in self.events.columns
            else []
        )
        ts = self.events["timestamp"]
        months = (
            [
                str(p)
                for p in pd.period_range(
                    ts.min().tz_convert(None), ts.max().tz_convert(None), freq="M"
                )
            ]
            if len(ts) and ts.notna().any()
            else []
        )
        windows = list(dict.fromkeys([*windows, "7D"])) if "7D" not in windows else list(windows)
        self.controls = {
            "segment": _dropdown("segment", [NONE, *segments], NONE),
            "device": _dropdown("device", [ALL, *devices], ALL, "200px"),
            "period": _dropdown("month", [ALL, *months], ALL, "200px"),
            "window": _dropdown("window", windows, "7D", "160px"),
            "order": w.ToggleButtons(
                options=["strict", "any"],
                value="strict",
                description="order",
                style={"description_width": "initial", "button_width": "70px"},
            ),
        }
        self.controls["device"].disabled = not devices

    def _compute(self, **values: Any):
        return _funnel_result(
            self.events,
            self.steps,
            users=self.users,
            grain=self.grain,
            stage_map=self.stage_map,
            **values,
        )

    def _numbers(self, result: Any) -> pd.DataFrame:
        return result.to_frame()

    def _render(self, result: Any) -> str:
        return result._repr_html_() + _png(
            result.plot, "funnel: share of entrants reaching each step"
        )
