"""The funnel explorer: :func:`journeylab.journeys.funnels.funnel` by segment, filters, month, window and order.

The steps and the columns offered are the caller's (or the project file's):
``steps`` is the funnel, ``segments`` the columns one can split by, and
``filters`` the columns that get a dropdown of their own to keep one value
(``filters=["platform"]`` gives a ``platform`` control). Nothing here knows a
particular business's events or columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import pandas as pd

from journeylab.core.errors import ParameterError, require_names
from journeylab.core.timeparse import month_bounds
from journeylab.reports.widgets._base import ALL, NONE, _dropdown, _Explorer, _frame_of, _png

#: Columns of the data contract that are never segments.
_CORE_COLUMNS = {"user_id", "timestamp", "event", "session_id", "value"}
#: Controls every funnel explorer has; a filter column cannot take one of these names.
_FIXED_CONTROLS = ("segment", "period", "window", "order")
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


def _steps(steps: Sequence[Any] | Mapping[str, Any] | None, project: Any) -> Any:
    """Return the funnel steps given, else the project's funnel (an error without either)."""
    if steps is not None:
        return steps if isinstance(steps, Mapping) else list(steps)
    if project is not None and project.funnel:
        return list(project.funnel)
    raise ParameterError(
        "Name the funnel steps (steps=['view', 'cart', 'purchase']), or pass project= with a "
        "funnel in its project file."
    )


def _with_column(
    frame: pd.DataFrame, users: pd.DataFrame | None, column: str, what: str
) -> pd.DataFrame:
    """Return the events with ``column``: theirs, or the users table's merged on ``user_id``."""
    if column in frame.columns:
        return frame
    if users is not None and column in users.columns:
        return frame.merge(
            users[["user_id", column]].drop_duplicates("user_id"), on="user_id", how="left"
        )
    require_names(
        [column], [*frame.columns, *([] if users is None else users.columns)], what=what,
        absent="is neither an events column nor a users column", column=None, patterns=False,
    )  # fmt: skip
    raise AssertionError("require_names raises for a name no column has")  # pragma: no cover


def _funnel_result(
    events: Any,
    steps: Sequence[Any] | Mapping[str, Any] | None = None,
    *,
    users: pd.DataFrame | None = None,
    segment: str | None = None,
    filters: Mapping[str, Any] | None = None,
    period: str | None = None,
    window: str = "7D",
    order: Literal["strict", "any"] = "strict",
    grain: Literal["user", "session"] = "user",
    stage_map: Any = None,
    project: Any = None,
):
    from journeylab.journeys.funnels import funnel

    frame = _frame_of(events)
    users = _frame_of(users)
    if not isinstance(frame, pd.DataFrame):
        raise ParameterError(
            "events must be a pandas DataFrame (or a loaded table) to filter and split them."
        )
    steps = _steps(steps, project)
    segment = None if segment in (None, "", NONE) else segment
    period = None if period in (None, "", ALL) else period
    for column, value in (filters or {}).items():
        if value in (None, "", ALL):
            continue
        frame = _with_column(frame, users, column, "filter column")
        values = frame[column].dropna().astype(str)
        require_names(
            [str(value)], values.unique(), what="value", absent=f"of {column!r} occurs in no row",
            column=column, patterns=False, present_label="values",
        )  # fmt: skip
        frame = frame[frame[column].astype(str) == str(value)]
    if segment is not None:
        frame = _with_column(frame, users, segment, "segment")
    start = end = None
    if period is not None:
        start, end = month_bounds(period, "period")
    return funnel(
        frame,
        steps,
        window=window,
        order=order,
        grain=grain,
        segment=segment,
        start=start,
        end=end,
        stage_map=stage_map if stage_map is not None or project is None else project.stage_map,
    )


def funnel_data(
    events: Any,
    steps: Sequence[Any] | Mapping[str, Any] | None = None,
    *,
    users: pd.DataFrame | None = None,
    segment: str | None = None,
    filters: Mapping[str, Any] | None = None,
    period: str | None = None,
    window: str = "7D",
    order: Literal["strict", "any"] = "strict",
    grain: Literal["user", "session"] = "user",
    stage_map: Any = None,
    project: Any = None,
) -> pd.DataFrame:
    """Return the funnel table behind :class:`FunnelExplorer` for one set of control values.

    Parameters
    ----------
    events : DataFrame or LoadedTable
        The event log.
    steps : list or dict, optional
        Funnel steps (see :func:`journeylab.journeys.funnels.funnel`); default
        the project's funnel.
    users : DataFrame, optional
        One row per user; its columns (acquisition channel, persona …) can be
        segments and filters.
    segment : str, optional
        Column to split by, from the events (value on the entry event) or the users table.
    filters : mapping, optional
        ``{column: value}``: keep only the events whose column (of the events,
        or of the users table) has that value; ``"(all)"`` or None keeps all.
    period : str, optional
        Month ``YYYY-MM`` in which units enter the funnel.
    window, order, grain, stage_map
        As in :func:`journeylab.journeys.funnels.funnel`.
    project : Project, optional
        The project file: its ``funnel`` and ``stage_map``.

    Returns
    -------
    pandas.DataFrame
        ``FunnelResult.to_frame()``: one row per (segment, step).

    Examples
    --------
    >>> events = pd.DataFrame({
    ...     "user_id": ["u1", "u1", "u1", "u2", "u2", "u3", "u4", "u4"],
    ...     "timestamp": pd.to_datetime(["2026-10-01 09:00", "2026-10-01 09:05",
    ...         "2026-10-01 09:20", "2026-10-02 10:00", "2026-10-02 10:30", "2026-10-03 11:00",
    ...         "2026-10-04 12:00", "2026-10-04 12:10"], utc=True),
    ...     "event": ["view", "cart", "purchase", "view", "cart", "view", "view", "purchase"],
    ...     "channel": ["search", "email", "email", "search", "search", "social", "email", "email"],
    ...     "platform": ["app", "app", "app", "web", "web", "app", "web", "web"]})
    >>> table = funnel_data(events, ["view", "cart", "purchase"], filters={"platform": "app"},
    ...                     period="2026-10")
    >>> table[["step", "label", "entrants"]]
       step     label  entrants
    0     1      view         2
    1     2      cart         1
    2     3  purchase         1
    """
    return _funnel_result(
        events,
        steps,
        users=users,
        segment=segment,
        filters=filters,
        period=period,
        window=window,
        order=order,
        grain=grain,
        stage_map=stage_map,
        project=project,
    ).to_frame()


class FunnelExplorer(_Explorer):
    """Funnel by segment, filters, month, window and order (:func:`journeylab.journeys.funnels.funnel`).

    Parameters
    ----------
    events : DataFrame or LoadedTable
        The event log.
    steps : list or dict, optional
        Funnel steps; default the project's funnel.
    users : DataFrame, optional
        One row per user, for segments such as ``acquisition_channel`` and ``persona``.
    filters : sequence of str, optional
        Columns (of the events or ``users``) that each get a control keeping
        one of their values; default the project's segments, else none.
    segments : sequence of str, optional
        Columns offered by the segment control; default the project's
        segments, else the text columns with 2 to 25 values.
    project : Project, optional
        The project file: its ``funnel``, ``segments`` and ``stage_map``.
    windows : sequence of str
        Choices of the window control.
    grain, stage_map
        As in :func:`journeylab.journeys.funnels.funnel`.

    Attributes
    ----------
    controls : dict
        ``segment``, one control per filter column, ``period``, ``window``, ``order``.

    Examples
    --------
    >>> events = pd.DataFrame({
    ...     "user_id": ["u1", "u1", "u1", "u2", "u2", "u3", "u4", "u4"],
    ...     "timestamp": pd.to_datetime(["2026-10-01 09:00", "2026-10-01 09:05",
    ...         "2026-10-01 09:20", "2026-10-02 10:00", "2026-10-02 10:30", "2026-10-03 11:00",
    ...         "2026-10-04 12:00", "2026-10-04 12:10"], utc=True),
    ...     "event": ["view", "cart", "purchase", "view", "cart", "view", "view", "purchase"],
    ...     "channel": ["search", "email", "email", "search", "search", "social", "email", "email"],
    ...     "platform": ["app", "app", "app", "web", "web", "app", "web", "web"]})
    >>> fx = FunnelExplorer(events, ["view", "cart", "purchase"], filters=["platform"])
    >>> fx.set(platform="web").data()[["label", "entrants"]]
          label  entrants
    0      view         2
    1      cart         1
    2  purchase         0
    """

    title = "Funnel explorer"

    def __init__(
        self,
        events: Any,
        steps: Sequence[Any] | Mapping[str, Any] | None = None,
        users: pd.DataFrame | None = None,
        *,
        filters: Sequence[str] | None = None,
        segments: Sequence[str] | None = None,
        project: Any = None,
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
        self.steps = _steps(steps, project)
        self.grain = grain
        self.stage_map = (
            stage_map if stage_map is not None or project is None else project.stage_map
        )
        columns = [*self.events.columns, *([] if self.users is None else self.users.columns)]
        known = [c for c in (project.segments if project is not None else ()) if c in columns]
        if segments is None:
            segments = known if project is not None else _segment_columns(self.events, self.users)
        filters = list(known if filters is None else filters)
        require_names(
            [*segments, *filters], columns, what="column", column=None, patterns=False,
            absent="is neither an events column nor a users column",
        )  # fmt: skip
        clash = [f for f in filters if f in _FIXED_CONTROLS]
        if clash:
            raise ParameterError(
                f"A filter column cannot be called {clash[0]!r}: that is a control of the explorer "
                "already; rename the column."
            )
        self.filters = filters
        choices = {}
        for column in filters:
            source = self.events if column in self.events.columns else self.users
            choices[column] = sorted(source[column].dropna().astype(str).unique())
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
            **{
                c: _dropdown(c.replace("_", " "), [ALL, *v], ALL, "200px")
                for c, v in choices.items()
            },
            "period": _dropdown("month", [ALL, *months], ALL, "200px"),
            "window": _dropdown("window", windows, "7D", "160px"),
            "order": w.ToggleButtons(
                options=["strict", "any"],
                value="strict",
                description="order",
                style={"description_width": "initial", "button_width": "70px"},
            ),
        }
        for column, values in choices.items():
            self.controls[column].disabled = not values

    def _compute(self, **values: Any):
        filters = {c: values.pop(c) for c in self.filters}
        return _funnel_result(
            self.events,
            self.steps,
            users=self.users,
            filters=filters,
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
