"""Interactive explorers for JupyterLab, each with a data twin and a static fallback.

Four explorers put controls (ipywidgets) in front of the analysis functions;
none of them computes a statistic of its own:

- :class:`FunnelExplorer` — :func:`journeylab.funnel.funnel` by segment,
  device, month, window and order;
- :class:`PathExplorer` — :func:`journeylab.flows.top_paths` and
  :func:`journeylab.flows.transitions` by level, number of paths and
  collapsed repeats;
- :class:`AttributionComparer` — :func:`journeylab.attribution.attribute`
  by models, Markov order, conversions or value, bootstrap on or off;
- :class:`ExperimentCalculator` — sample size, power or minimum detectable
  effect (:func:`journeylab.experiments.power_calculator`, R's
  ``power.prop.test`` formulas) and a readout from counts per arm
  (:func:`journeylab.experiments.compare_proportions`, the SRM check and the
  beta-binomial comparison).

Every explorer has a data twin — a module function (:func:`funnel_data`,
:func:`path_data`, :func:`attribution_data`, :func:`experiment_data`) and the
method ``explorer.data()`` for the current control values — so the numbers
behind the picture can be tested and used without a front end.

Displaying an explorer shows the live widget where a widget runtime exists;
the same display also carries a static HTML rendering of the current state
(summary, table and the figure as an embedded PNG), which is what an exported
HTML report shows. Under the report runner (``journeylab report``) only the
static rendering is emitted: a scheduled run has nobody to move a control, and
nbconvert would otherwise prefer the widget view it cannot draw. Results are computed when a control changes (not while the
explorer is built) and cached per tuple of control values.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from journeylab.results import Result, fmt_num, fmt_p, fmt_pct, fmt_pp
from journeylab.schema import JourneylabError, ParameterError, SchemaError, check_in, did_you_mean

__all__ = [
    "FunnelExplorer",
    "PathExplorer",
    "AttributionComparer",
    "ExperimentCalculator",
    "ProportionsReadout",
    "funnel_data",
    "path_data",
    "attribution_data",
    "experiment_data",
    "power_data",
    "readout_data",
    "DEFAULT_FUNNEL_STEPS",
    "ALL",
    "NONE",
]

#: The funnel an explorer opens on when no steps are given (the sample's booking funnel).
DEFAULT_FUNNEL_STEPS = ("site_visit", "booking_started", "booking_completed")
#: Control value meaning "no filter" (every device, every month).
ALL = "(all)"
#: Control value meaning "no segment".
NONE = "(none)"
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
_CACHE_SIZE = 32
_STYLE = "max-width:100%;height:auto"


# ---------------------------------------------------------------------------
# rendering helpers
# ---------------------------------------------------------------------------
def _frame_of(table: Any) -> Any:
    """Return a loaded table's DataFrame (``.frame``), or the object itself."""
    return (
        table.frame if hasattr(table, "frame") and isinstance(table.frame, pd.DataFrame) else table
    )


def _png(draw: Callable[[], Any], alt: str) -> str:
    """Draw a figure with ``draw()`` (returns axes) and return it as an embedded PNG ``<img>``."""
    import matplotlib.pyplot as plt

    ax = draw()
    fig = ax.figure
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    finally:
        plt.close(fig)  # closed figures are not shown again by the inline backend
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}" style="{_STYLE}">'


def _error_html(exc: Exception) -> str:
    text = html.escape(str(exc)).replace("\n", "<br>")
    return f'<div class="jl-explorer-error" style="border-left:4px solid #d55e00;padding-left:8px">⚠ {text}</div>'


class _Explorer:
    """Controls, an output area, a cache per control tuple and the static rendering.

    Subclasses build ``self.controls`` (name → widget, in display order) and
    implement :meth:`_compute` (control values → results), :meth:`_numbers`
    (results → data twin) and :meth:`_render` (results → HTML).
    """

    title = "Explorer"

    def __init__(self) -> None:
        self.controls: dict[str, Any] = {}
        self._results: OrderedDict[Hashable, Any] = OrderedDict()
        self._html: OrderedDict[Hashable, str] = OrderedDict()
        self._holding = False
        self._widget = None
        self._output = None

    # -- values ----------------------------------------------------------------
    def values(self) -> dict[str, Any]:
        """Return the current control values, by control name."""
        return {name: _plain(w.value) for name, w in self.controls.items()}

    def _key(self, values: Mapping[str, Any]) -> Hashable:
        return tuple((k, _hashable(v)) for k, v in sorted(values.items()))

    def set(self, **values: Any) -> _Explorer:
        """Set several controls at once, refreshing the output once; returns self.

        Examples
        --------
        >>> explorer.set(device="mobile", period="2026-10")  # doctest: +SKIP
        """
        unknown = [k for k in values if k not in self.controls]
        if unknown:
            raise ParameterError(
                f"{type(self).__name__} has no control {unknown[0]!r}"
                f"{did_you_mean(unknown[0], self.controls)}; its controls are {list(self.controls)}."
            )
        self._holding = True
        try:
            for name, value in values.items():
                self.controls[name].value = value
        finally:
            self._holding = False
        self._refresh()
        return self

    # -- numbers ---------------------------------------------------------------
    def result(self) -> Any:
        """Return the analysis result(s) for the current control values (cached)."""
        values = self.values()
        key = self._key(values)
        if key not in self._results:
            self._results[key] = self._compute(**values)
            if len(self._results) > _CACHE_SIZE:
                self._results.popitem(last=False)
        else:
            self._results.move_to_end(key)
        return self._results[key]

    def data(self) -> Any:
        """Return the numbers behind the picture for the current control values."""
        return self._numbers(self.result())

    def _compute(self, **values: Any) -> Any:
        raise NotImplementedError

    def _numbers(self, result: Any) -> Any:
        raise NotImplementedError

    def _render(self, result: Any) -> str:
        raise NotImplementedError

    # -- pictures --------------------------------------------------------------
    def _describe(self, values: Mapping[str, Any]) -> str:
        """Return the enabled controls' settings in words (``device: mobile · order: strict``)."""
        parts = []
        for name, value in values.items():
            control = self.controls[name]
            if control.disabled:
                continue
            shown = getattr(control, "label", value)  # a choice's label, e.g. "sample size"
            parts.append(f"{control.description or name.replace('_', ' ')}: {_label(shown)}")
        return " · ".join(parts)

    def static_html(self) -> str:
        """Render the current state as static HTML: settings, summary, table and the figure (PNG)."""
        self._sync()
        values = self.values()
        key = self._key(values)
        if key not in self._html:
            try:
                body = self._render(self.result())
            except JourneylabError as exc:
                body = _error_html(exc)
            self._html[key] = (
                f'<div class="jl-explorer"><h3>{html.escape(self.title)}</h3>'
                f'<p class="jl-controls" style="color:#555">{html.escape(self._describe(values))}</p>{body}</div>'
            )
            if len(self._html) > _CACHE_SIZE:
                self._html.popitem(last=False)
        return self._html[key]

    @property
    def output(self):
        """The ipywidgets ``Output`` that shows the current state."""
        self._build()
        return self._output

    @property
    def widget(self):
        """The whole explorer as one ipywidgets container (controls above the output)."""
        self._build()
        return self._widget

    def _layout(self) -> list[Any]:
        """Rows of controls (subclasses may group them)."""
        import ipywidgets as w

        items = list(self.controls.values())
        return [w.HBox(items[i : i + 3]) for i in range(0, len(items), 3)]

    def _build(self) -> None:
        if self._widget is not None:
            return
        import ipywidgets as w

        self._output = w.Output()
        self._widget = w.VBox([*self._layout(), self._output])
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self._refresh()

    def _on_change(self, change: Any) -> None:
        if not self._holding:
            self._refresh()

    def _refresh(self) -> None:
        if self._output is None:  # not built yet: nothing to show, nothing to compute
            return
        self._sync()
        if self._key(self.values()) not in self._html:
            self._show('<p style="color:#555"><i>Computing…</i></p>')
        try:
            page = self.static_html()
        except Exception as exc:  # a callback must not die silently: say what went wrong
            page = _error_html(exc)
        self._show(page)

    def _show(self, page: str) -> None:
        self._output.outputs = (
            {
                "output_type": "display_data",
                "data": {"text/html": page, "text/plain": self.title},
                "metadata": {},
            },
        )

    def _sync(self) -> None:
        """Enable or disable controls that depend on others (subclasses)."""

    def display(self) -> None:
        """Show the explorer in the notebook (the widget, with its static rendering)."""
        from IPython.display import display

        display(self)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self._repr_mimebundle_(), raw=True)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle = {"text/plain": repr(self), "text/html": self._repr_html_()}
        if _unattended():
            # A scheduled report has no one to move a control: the static view is
            # the whole story, and no widget state bloats the executed notebook.
            return bundle
        view = self.widget._repr_mimebundle_()
        if view:
            bundle["application/vnd.jupyter.widget-view+json"] = view[
                "application/vnd.jupyter.widget-view+json"
            ]
        return bundle

    def _repr_html_(self) -> str:
        return self.static_html()

    def __repr__(self) -> str:
        self._sync()
        return f"<{type(self).__name__}: {self._describe(self.values())}>"


def _unattended() -> bool:
    """Whether the report runner executes this kernel (no widget front end to talk to)."""
    from journeylab.reports import UNDER_RUNNER_ENV

    return bool(os.environ.get(UNDER_RUNNER_ENV))


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _hashable(value: Any) -> Hashable:
    return tuple(value) if isinstance(value, list) else value


def _label(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def _dropdown(description: str, options: Sequence[Any], value: Any, width: str = "260px"):
    import ipywidgets as w

    return w.Dropdown(
        options=list(options),
        value=value,
        description=description,
        style={"description_width": "initial"},
        layout=w.Layout(width=width),
    )


# ---------------------------------------------------------------------------
# funnel
# ---------------------------------------------------------------------------
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


def _month_bounds(period: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    try:
        p = pd.Period(str(period), freq="M")
    except (ValueError, TypeError):
        raise ParameterError(
            f"period == {period!r}, must be a month 'YYYY-MM' such as '2026-10'."
        ) from None
    return p.start_time.tz_localize("UTC"), (p + 1).start_time.tz_localize("UTC")


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
    from journeylab.funnel import funnel

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
        start, end = _month_bounds(period)
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
        Funnel steps (see :func:`journeylab.funnel.funnel`); default
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
        As in :func:`journeylab.funnel.funnel`.

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
    """Funnel by segment, device, month, window and order (:func:`journeylab.funnel.funnel`).

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
        As in :func:`journeylab.funnel.funnel`.

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


# ---------------------------------------------------------------------------
# paths
# ---------------------------------------------------------------------------
def _is_path_table(source: Any) -> bool:
    return isinstance(source, pd.DataFrame) and "path" in source.columns


def path_data(
    events_or_paths: Any,
    *,
    level: Literal["channel", "event", "stage"] = "channel",
    n: int = 10,
    collapse_repeats: bool = True,
    stage_map: Any = None,
    **journey_options: Any,
) -> dict[str, pd.DataFrame | None]:
    """Top paths and transitions behind :class:`PathExplorer` for one set of control values.

    Parameters
    ----------
    events_or_paths : DataFrame, LoadedTable, Journeys or path table
        Events (journeys are built here) or a path table (top paths only:
        transitions need the events).
    level : {"channel", "event", "stage"}
        What a path step names.
    n : int
        How many paths to list.
    collapse_repeats : bool
        Merge consecutive identical steps.
    stage_map, **journey_options
        As in :func:`journeylab.flows.top_paths` / :func:`journeylab.flows.transitions`.

    Returns
    -------
    dict
        ``"top_paths"``: ``TopPaths.to_frame()``; ``"transitions"``:
        ``Transitions.to_frame()`` (None for a path table).

    Examples
    --------
    >>> path_data(events, level="stage", n=5)["top_paths"]  # doctest: +SKIP
    """
    top, trans = _path_results(
        _frame_of(events_or_paths), level, n, collapse_repeats, stage_map, journey_options
    )
    return {"top_paths": top.to_frame(), "transitions": None if trans is None else trans.to_frame()}


def _path_results(source, level, n, collapse_repeats, stage_map, options):
    from journeylab.flows import top_paths, transitions

    if _is_path_table(source):
        return top_paths(source, n), None
    top = top_paths(
        source, n, level=level, collapse_repeats=collapse_repeats, stage_map=stage_map, **options
    )
    trans = transitions(
        source, level=level, collapse_repeats=collapse_repeats, stage_map=stage_map, **options
    )
    return top, trans


class PathExplorer(_Explorer):
    """Top paths and transitions by level, number of paths and collapsed repeats.

    Built on :func:`journeylab.flows.top_paths` and
    :func:`journeylab.flows.transitions` (journeys by
    :func:`journeylab.journeys.path_table`'s rules).

    Parameters
    ----------
    events_or_paths : DataFrame, LoadedTable, Journeys or path table
        Events, or a path table (then level and collapse are fixed and no
        transitions are shown).
    max_paths : int
        Largest number of paths the slider offers.
    stage_map, **journey_options
        Passed to the flow functions (``lookback``, ``conversion`` …).

    Examples
    --------
    >>> px = PathExplorer(ws.events)  # doctest: +SKIP
    >>> px.set(level="stage", n=5).data()["top_paths"]  # doctest: +SKIP
    """

    title = "Path explorer"

    def __init__(
        self,
        events_or_paths: Any,
        *,
        max_paths: int = 50,
        stage_map: Any = None,
        **journey_options: Any,
    ) -> None:
        import ipywidgets as w

        super().__init__()
        self.source = _frame_of(events_or_paths)
        self.stage_map = stage_map
        self.journey_options = journey_options
        self.max_paths = int(max_paths)
        self._full: dict[tuple[str, bool], Any] = {}
        fixed = _is_path_table(self.source)
        self.controls = {
            "level": w.ToggleButtons(
                options=["channel", "event", "stage"],
                value="channel",
                description="level",
                disabled=fixed,
                style={"description_width": "initial", "button_width": "80px"},
            ),
            "n": w.IntSlider(
                value=min(10, self.max_paths),
                min=1,
                max=self.max_paths,
                description="paths",
                style={"description_width": "initial"},
            ),
            "collapse_repeats": w.Checkbox(
                value=True,
                description="collapse repeats",
                disabled=fixed,
                style={"description_width": "initial"},
            ),
        }

    def _compute(self, **values: Any):
        from journeylab.flows import TopPaths, top_paths, transitions

        level, n, collapse = values["level"], int(values["n"]), bool(values["collapse_repeats"])
        if _is_path_table(self.source):
            return top_paths(self.source, n), None
        key = (level, collapse)
        if key not in self._full:
            # one pass per (level, collapse) with the most paths the slider offers;
            # moving the slider only slices it (top_paths sorts before it cuts)
            full = top_paths(
                self.source,
                max(self.max_paths, n),
                level=level,
                collapse_repeats=collapse,
                stage_map=self.stage_map,
                **self.journey_options,
            )
            trans = transitions(
                self.source,
                level=level,
                collapse_repeats=collapse,
                stage_map=self.stage_map,
                **self.journey_options,
            )
            self._full[key] = (full, trans)
        full, trans = self._full[key]
        top = TopPaths(
            table=full.table.head(n).reset_index(drop=True),
            total_journeys=full.total_journeys,
            total_paths=full.total_paths,
        )
        return top, trans

    def _numbers(self, result: Any) -> dict[str, pd.DataFrame | None]:
        top, trans = result
        return {
            "top_paths": top.to_frame(),
            "transitions": None if trans is None else trans.to_frame(),
        }

    def _render(self, result: Any) -> str:
        top, trans = result
        parts = [
            top._repr_html_(),
            _png(top.plot, "top paths: journeys and conversion rate per path"),
        ]
        if trans is None:
            parts.append(
                "<p><i>Transitions need the event log; a path table has no order of touches in time.</i></p>"
            )
        else:
            summary = html.escape(trans.summary()).replace("\n", "<br>")
            parts.append(f'<h4>Transitions</h4><p class="jl-summary">{summary}</p>')
            parts.append(_png(trans.plot, "transition probabilities between states"))
        return "".join(parts)


# ---------------------------------------------------------------------------
# attribution
# ---------------------------------------------------------------------------
def _as_paths(paths: Any) -> Any:
    """Return a path table built from events, or ``paths`` as given."""
    frame = _frame_of(paths)
    if (
        isinstance(frame, pd.DataFrame)
        and "path" not in frame.columns
        and {"event", "timestamp"} <= set(frame.columns)
    ):
        from journeylab.journeys import path_table

        return path_table(frame)
    return frame


def attribution_data(
    paths: Any,
    *,
    models: Sequence[str] | None = None,
    order: int = 1,
    value: bool = False,
    bootstrap: bool = False,
    n_boot: int = 200,
    seed: int = 0,
    spend: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Credit per channel behind :class:`AttributionComparer` for one set of control values.

    Parameters
    ----------
    paths : path table, Journeys or events
        As :func:`journeylab.attribution.attribute` takes; an event log is
        turned into a path table with :func:`journeylab.journeys.path_table`.
    models : list of str, optional
        Models to compare (default :data:`journeylab.attribution.DEFAULT_MODELS`).
    order : int
        Markov order (1–4).
    value : bool
        Credit value instead of conversions.
    bootstrap : bool
        Add journey-bootstrap intervals (``n_boot`` replicates, ``seed``).
    spend : DataFrame, optional
        Spend per channel (CPA / ROAS in the result).

    Returns
    -------
    pandas.DataFrame
        ``AttributionResult.to_frame()``: one row per channel, one column per model.

    Examples
    --------
    >>> attribution_data(paths, models=["last_touch", "markov"], order=2)  # doctest: +SKIP
    """
    return _attribution_result(
        _as_paths(paths),
        models=models,
        order=order,
        value=value,
        bootstrap=bootstrap,
        n_boot=n_boot,
        seed=seed,
        spend=spend,
    ).to_frame()


def _attribution_result(paths, *, models, order, value, bootstrap, n_boot, seed, spend):
    from journeylab.attribution import DEFAULT_MODELS, attribute

    models = list(DEFAULT_MODELS if models is None else models)
    if not models:
        raise ParameterError("No model selected: pick at least one attribution model.")
    return attribute(
        paths,
        models,
        order=int(order),
        value=bool(value),
        n_boot=int(n_boot) if bootstrap else 0,
        seed=seed,
        spend=_frame_of(spend),
    )


class AttributionComparer(_Explorer):
    """Attribution models side by side (:func:`journeylab.attribution.attribute`).

    Parameters
    ----------
    paths : path table, Journeys or events
        The journeys to credit; an event log is turned into a path table once.
    spend : DataFrame or LoadedTable, optional
        Spend per channel and day, for CPA and ROAS.
    n_boot, seed : int
        Bootstrap replicates and seed when the bootstrap is on.

    Attributes
    ----------
    controls : dict
        ``models`` (multi-select), ``order`` (Markov order), ``metric``
        (``"conversions"`` or ``"value"``), ``bootstrap`` (on/off).

    Examples
    --------
    >>> ac = AttributionComparer(path_table(ws.events.frame), spend=ws.spend)  # doctest: +SKIP
    >>> ac.set(models=["last_touch", "markov"], order=2).data()  # doctest: +SKIP
    """

    title = "Attribution comparer"

    def __init__(
        self, paths: Any, spend: pd.DataFrame | None = None, *, n_boot: int = 200, seed: int = 0
    ) -> None:
        import ipywidgets as w

        from journeylab.attribution import DEFAULT_MODELS, MODELS
        from journeylab.attribution.compare import LABELS

        super().__init__()
        self.paths = _as_paths(paths)
        self.spend = _frame_of(spend)
        self.n_boot, self.seed = int(n_boot), int(seed)
        touch_level = hasattr(self.paths, "touches") or (
            isinstance(self.paths, pd.DataFrame)
            and {"journey_id", "conversion_time"} <= set(self.paths.columns)
        )
        available = [m for m in MODELS if m != "time_decay" or touch_level]
        self.controls = {
            "models": w.SelectMultiple(
                options=[(LABELS[m], m) for m in available],
                value=list(DEFAULT_MODELS),
                rows=len(available),
                description="models",
                style={"description_width": "initial"},
            ),
            "order": _dropdown("Markov order", [1, 2, 3, 4], 1, "160px"),
            "metric": w.ToggleButtons(
                options=["conversions", "value"],
                value="conversions",
                description="credit",
                style={"description_width": "initial", "button_width": "100px"},
            ),
            "bootstrap": w.Checkbox(
                value=False,
                description=f"bootstrap intervals ({self.n_boot} replicates)",
                style={"description_width": "initial"},
            ),
        }

    def _layout(self) -> list[Any]:
        import ipywidgets as w

        c = self.controls
        return [w.HBox([c["models"], w.VBox([c["order"], c["metric"], c["bootstrap"]])])]

    def _key(self, values: Mapping[str, Any]) -> Hashable:
        # the Markov order matters only when the Markov model is selected
        values = dict(values)
        if "markov" not in values["models"]:
            values["order"] = 1
        return super()._key(values)

    def _sync(self) -> None:
        self.controls["order"].disabled = "markov" not in self.controls["models"].value

    def _compute(self, **values: Any):
        return _attribution_result(
            self.paths,
            models=values["models"],
            order=values["order"],
            value=values["metric"] == "value",
            bootstrap=values["bootstrap"],
            n_boot=self.n_boot,
            seed=self.seed,
            spend=self.spend,
        )

    def _numbers(self, result: Any) -> pd.DataFrame:
        return result.to_frame()

    def _render(self, result: Any) -> str:
        return result._repr_html_() + _png(result.plot, "credit per channel by attribution model")


# ---------------------------------------------------------------------------
# experiments
# ---------------------------------------------------------------------------
@dataclass
class ProportionsReadout(Result):
    """Two conversion rates compared from counts: lift, intervals, p-value, SRM, P(better).

    The numbers come from :func:`journeylab.experiments.compare_proportions`
    (pooled z-test, Newcombe interval, delta-method relative lift),
    :func:`journeylab.experiments.srm_check` and
    :func:`journeylab.experiments.bayes_proportions`.
    """

    comparison: Any
    srm: Any
    bayes: Any
    alpha: float = 0.05
    control: str = "control"
    treatment: str = "treatment"
    title: str = "Experiment readout"

    def to_frame(self) -> pd.DataFrame:
        """One row: users, rates, absolute and relative lift with intervals, p-value, P(better), SRM p."""
        c = self.comparison
        return pd.DataFrame(
            [
                {
                    "n_control": c.n_control,
                    "n_treatment": c.n_treatment,
                    "control_mean": c.control_mean,
                    "treatment_mean": c.treatment_mean,
                    "abs_lift": c.abs_lift,
                    "abs_ci_low": c.abs_ci_low,
                    "abs_ci_high": c.abs_ci_high,
                    "rel_lift": c.rel_lift,
                    "rel_ci_low": c.rel_ci_low,
                    "rel_ci_high": c.rel_ci_high,
                    "p_value": c.p_value,
                    "prob_treatment_better": self.bayes.prob_treatment_better,
                    "srm_p_value": self.srm.p_value,
                    "srm_status": self.srm.status,
                    "method": c.method,
                    "status": c.status,
                }
            ]
        )

    def summary(self) -> str:
        """Describe the lift with its interval, p-value, P(better) and the SRM check."""
        c = self.comparison
        level = f"{(1 - self.alpha) * 100:g}%"
        if not c.computable:
            head = f"The lift is {c.status}."
        else:
            head = (
                f"{self.treatment} converts {fmt_pct(c.treatment_mean)} vs {fmt_pct(c.control_mean)} for "
                f"{self.control}: {fmt_pp(c.abs_lift)} ({level} CI {fmt_pp(c.abs_ci_low)} to {fmt_pp(c.abs_ci_high)}; "
                f"p = {fmt_p(c.p_value)}), {fmt_pct(c.rel_lift, signed=True)} relative "
                f"[{fmt_pct(c.rel_ci_low, signed=True)}, {fmt_pct(c.rel_ci_high, signed=True)}]. "
                f"P({self.treatment} beats {self.control}) = {fmt_pct(self.bayes.prob_treatment_better)}."
            )
        flag = "⚠ " if self.srm.flagged else ""
        return f"{head}\n{flag}{self.srm.message}"

    def display_frame(self) -> pd.DataFrame:
        """Return the row formatted for readers."""
        c = self.comparison
        ok = c.computable
        return pd.DataFrame(
            [
                {
                    "users (c / t)": f"{c.n_control:,} / {c.n_treatment:,}",
                    self.control: fmt_pct(c.control_mean),
                    self.treatment: fmt_pct(c.treatment_mean),
                    "lift": fmt_pp(c.abs_lift) if ok else "–",
                    "CI": f"[{fmt_pp(c.abs_ci_low)}, {fmt_pp(c.abs_ci_high)}]" if ok else "–",
                    "relative": fmt_pct(c.rel_lift, signed=True),
                    "p": fmt_p(c.p_value),
                    "P(better)": fmt_pct(self.bayes.prob_treatment_better),
                    "SRM p": fmt_p(self.srm.p_value),
                }
            ]
        )

    def plot(self, ax=None):
        """Conversion rate per arm with Wilson intervals; the lift in the title."""
        from statsmodels.stats.proportion import proportion_confint

        from journeylab.viz import PALETTE, new_axes, percent_axis

        c = self.comparison
        ax = new_axes(ax, figsize=(7, 2.4))
        arms = [self.control, self.treatment]
        n = np.array([c.n_control, c.n_treatment], dtype=float)
        rate = np.array([c.control_mean, c.treatment_mean], dtype=float)
        x = np.nan_to_num(rate * n)
        low, high = proportion_confint(x, np.where(n > 0, n, 1), alpha=self.alpha, method="wilson")
        err = np.clip(np.nan_to_num(np.vstack([rate - low, high - rate])), 0, None)
        ax.barh([0, 1], np.nan_to_num(rate), color=[PALETTE[7], PALETTE[0]], height=0.6)
        ax.errorbar(
            np.nan_to_num(rate), [0, 1], xerr=err, fmt="none", ecolor="0.2", capsize=4, lw=1
        )
        for i, (r, hi, users) in enumerate(zip(rate, high, n, strict=True)):
            ax.text(
                np.nan_to_num(max(r, hi)) * 1.02 + 1e-4,
                i,
                f"{fmt_pct(r)} of {int(users):,}",
                va="center",
                fontsize=9,
            )
        ax.set_yticks([0, 1], arms)
        ax.invert_yaxis()
        top = float(np.nanmax(np.append(high, 1e-3)))
        ax.set_xlim(0, top * 1.35)
        percent_axis(ax, "x", decimals=1 if top < 0.1 else 0)
        ax.set_xlabel(f"conversion rate ({(1 - self.alpha) * 100:g}% Wilson interval)")
        lift = (
            f"lift {fmt_pp(c.abs_lift)}, p = {fmt_p(c.p_value)}"
            if c.computable
            else "lift not computable"
        )
        ax.set_title(f"Readout: {lift}")
        ax.grid(axis="y", visible=False)
        return ax


def _power_result(*, baseline, mde, relative, n_per_variant, power, alpha, solve_for):
    from journeylab.experiments import power_calculator

    check_in("solve_for", solve_for, ["n_per_variant", "power", "mde"])
    given = {
        "mde": None if solve_for == "mde" else float(mde),
        "n_per_variant": None if solve_for == "n_per_variant" else float(n_per_variant),
        "power": None if solve_for == "power" else float(power),
    }
    return power_calculator(float(baseline), relative=bool(relative), alpha=float(alpha), **given)


def _readout_result(
    *,
    conversions_control,
    users_control,
    conversions_treatment,
    users_treatment,
    alpha,
    design_split=None,
):
    from journeylab.experiments import bayes_proportions, compare_proportions, srm_check

    xc, nc, xt, nt = (
        int(v) for v in (conversions_control, users_control, conversions_treatment, users_treatment)
    )
    comparison = compare_proportions(xc, nc, xt, nt, alpha=float(alpha))
    srm = srm_check({"control": nc, "treatment": nt}, design_split)
    bayes = bayes_proportions(xc, nc, xt, nt, level=1 - float(alpha))
    return ProportionsReadout(comparison, srm, bayes, alpha=float(alpha))


def power_data(
    baseline: float = 0.10,
    *,
    mde: float = 0.01,
    relative: bool = False,
    n_per_variant: float = 10_000,
    power: float = 0.8,
    alpha: float = 0.05,
    solve_for: Literal["n_per_variant", "power", "mde"] = "n_per_variant",
) -> pd.DataFrame:
    """Return the design behind the calculator: one row of a ``PowerCalculation``.

    The control named by ``solve_for`` is ignored and solved for (R
    ``power.prop.test`` formulas via :func:`journeylab.experiments.power_calculator`).

    Examples
    --------
    >>> round(float(power_data(0.5, mde=0.25, power=0.9)["n_per_variant"].iloc[0]), 5)
    76.70693
    >>> round(float(power_data(0.5, mde=0.25, n_per_variant=50, solve_for="power")["power"].iloc[0]), 7)
    0.7401659
    """
    return _power_result(
        baseline=baseline,
        mde=mde,
        relative=relative,
        n_per_variant=n_per_variant,
        power=power,
        alpha=alpha,
        solve_for=solve_for,
    ).to_frame()


def readout_data(
    conversions_control: int,
    users_control: int,
    conversions_treatment: int,
    users_treatment: int,
    *,
    alpha: float = 0.05,
    design_split: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Return the readout from counts per arm (one row of :class:`ProportionsReadout`).

    Examples
    --------
    >>> round(float(readout_data(200, 10_000, 250, 10_000)["p_value"].iloc[0]), 6)
    0.017126
    """
    return _readout_result(
        conversions_control=conversions_control,
        users_control=users_control,
        conversions_treatment=conversions_treatment,
        users_treatment=users_treatment,
        alpha=alpha,
        design_split=design_split,
    ).to_frame()


def experiment_data(
    *,
    baseline: float = 0.10,
    mde: float = 0.01,
    relative: bool = False,
    n_per_variant: float = 10_000,
    power: float = 0.8,
    alpha: float = 0.05,
    solve_for: Literal["n_per_variant", "power", "mde"] = "n_per_variant",
    conversions_control: int = 1_000,
    users_control: int = 10_000,
    conversions_treatment: int = 1_100,
    users_treatment: int = 10_000,
) -> dict[str, pd.DataFrame]:
    """Both tables behind :class:`ExperimentCalculator`: ``"design"`` and ``"readout"``.

    Examples
    --------
    >>> experiment_data(baseline=0.5, mde=0.25, power=0.9)["design"]["n_per_variant"]  # doctest: +SKIP
    """
    return {
        "design": power_data(
            baseline,
            mde=mde,
            relative=relative,
            n_per_variant=n_per_variant,
            power=power,
            alpha=alpha,
            solve_for=solve_for,
        ),
        "readout": readout_data(
            conversions_control, users_control, conversions_treatment, users_treatment, alpha=alpha
        ),
    }


class ExperimentCalculator(_Explorer):
    """Sample size, power or minimum detectable effect, and a readout from counts.

    The design side solves R's ``power.prop.test`` formulas
    (:func:`journeylab.experiments.power_calculator`): pick what to solve for
    and the other two of MDE, users per variant and power. The readout side
    compares conversions / users per arm (:class:`ProportionsReadout`).

    Parameters
    ----------
    baseline, mde, relative, n_per_variant, power, alpha, solve_for
        Starting values of the design controls (``mde`` absolute unless ``relative``).
    conversions_control, users_control, conversions_treatment, users_treatment
        Starting counts of the readout.
    design_split : mapping, optional
        Designed split for the SRM check (equal when None).

    Examples
    --------
    >>> calc = ExperimentCalculator(baseline=0.5, mde=0.25, power=0.9)
    >>> round(float(calc.data()["design"]["n_per_variant"].iloc[0]), 5)
    76.70693
    """

    title = "Experiment calculator"

    def __init__(
        self,
        *,
        baseline: float = 0.10,
        mde: float = 0.01,
        relative: bool = False,
        n_per_variant: float = 10_000,
        power: float = 0.8,
        alpha: float = 0.05,
        solve_for: Literal["n_per_variant", "power", "mde"] = "n_per_variant",
        conversions_control: int = 1_000,
        users_control: int = 10_000,
        conversions_treatment: int = 1_100,
        users_treatment: int = 10_000,
        design_split: Mapping[str, float] | None = None,
    ) -> None:
        import ipywidgets as w

        super().__init__()
        self.design_split = design_split
        st = {"description_width": "initial"}
        box = w.Layout(width="220px")
        self.controls = {
            "solve_for": w.ToggleButtons(
                options=[("sample size", "n_per_variant"), ("power", "power"), ("MDE", "mde")],
                value=solve_for,
                description="solve for",
                style={**st, "button_width": "95px"},
            ),
            "baseline": w.BoundedFloatText(
                value=baseline,
                min=0.0,
                max=1.0,
                step=0.005,
                description="baseline rate",
                style=st,
                layout=box,
            ),
            "mde": w.BoundedFloatText(
                value=mde, min=0.0, max=100.0, step=0.005, description="MDE", style=st, layout=box
            ),
            "relative": w.Checkbox(value=relative, description="MDE is relative", style=st),
            "n_per_variant": w.BoundedFloatText(
                value=n_per_variant,
                min=2,
                max=1e12,
                step=100,
                description="users per variant",
                style=st,
                layout=box,
            ),
            "power": w.BoundedFloatText(
                value=power,
                min=0.01,
                max=0.999,
                step=0.05,
                description="power",
                style=st,
                layout=box,
            ),
            "alpha": w.BoundedFloatText(
                value=alpha,
                min=0.0001,
                max=0.5,
                step=0.01,
                description="α (two-sided)",
                style=st,
                layout=box,
            ),
            "conversions_control": w.BoundedIntText(
                value=conversions_control,
                min=0,
                max=10**12,
                description="control conversions",
                style=st,
                layout=box,
            ),
            "users_control": w.BoundedIntText(
                value=users_control,
                min=0,
                max=10**12,
                description="control users",
                style=st,
                layout=box,
            ),
            "conversions_treatment": w.BoundedIntText(
                value=conversions_treatment,
                min=0,
                max=10**12,
                description="treatment conversions",
                style=st,
                layout=box,
            ),
            "users_treatment": w.BoundedIntText(
                value=users_treatment,
                min=0,
                max=10**12,
                description="treatment users",
                style=st,
                layout=box,
            ),
        }

    _DESIGN = ("solve_for", "baseline", "mde", "relative", "n_per_variant", "power", "alpha")
    _READOUT = ("conversions_control", "users_control", "conversions_treatment", "users_treatment")

    def _layout(self) -> list[Any]:
        import ipywidgets as w

        c = self.controls
        return [
            w.HTML("<b>Design</b>"),
            c["solve_for"],
            w.HBox([c["baseline"], c["mde"], c["relative"]]),
            w.HBox([c["n_per_variant"], c["power"], c["alpha"]]),
            w.HTML("<b>Readout from counts</b>"),
            w.HBox([c["conversions_control"], c["users_control"]]),
            w.HBox([c["conversions_treatment"], c["users_treatment"]]),
        ]

    def _sync(self) -> None:
        target = self.controls["solve_for"].value
        for name in ("mde", "n_per_variant", "power"):
            self.controls[name].disabled = name == target

    def _key(self, values: Mapping[str, Any]) -> Hashable:
        values = dict(values)
        values[values["solve_for"]] = None  # the solved quantity's box does not matter
        return super()._key(values)

    def design(self):
        """Return the ``PowerCalculation`` for the current design controls."""
        return self.result()[0]

    def readout(self) -> ProportionsReadout:
        """Return the :class:`ProportionsReadout` for the current counts."""
        return self.result()[1]

    def _compute(self, **values: Any):
        design = {k: values[k] for k in self._DESIGN}
        counts = {k: values[k] for k in self._READOUT}
        try:
            calc = _power_result(**design)
        except JourneylabError as exc:
            calc = exc
        try:
            readout = _readout_result(
                **counts, alpha=values["alpha"], design_split=self.design_split
            )
        except JourneylabError as exc:
            readout = exc
        return calc, readout

    def _numbers(self, result: Any) -> dict[str, pd.DataFrame]:
        for part in result:
            if isinstance(part, Exception):
                raise part
        calc, readout = result
        return {"design": calc.to_frame(), "readout": readout.to_frame()}

    def _render(self, result: Any) -> str:
        calc, readout = result
        parts = ["<h4>Design</h4>"]
        if isinstance(calc, Exception):
            parts.append(_error_html(calc))
        else:
            parts.append(
                f'<p class="jl-summary">{html.escape(calc.summary()).replace(chr(10), "<br>")}</p>'
            )
            parts.append(_design_table(calc))
            parts.append(_png(calc.plot, "power curve against users per variant"))
        if isinstance(readout, Exception):
            parts.append("<h4>Readout</h4>" + _error_html(readout))
        else:
            parts.append(readout._repr_html_())
            parts.append(_png(readout.plot, "conversion rate per arm"))
        return "".join(parts)


def _design_table(calc: Any) -> str:
    rows = [
        (
            "users per variant",
            f"{int(np.ceil(calc.n_per_variant)):,} ({fmt_num(calc.n_per_variant)})",
        ),
        ("users in total", f"{calc.n_total:,}"),
        ("baseline rate", fmt_pct(calc.baseline, 2)),
        ("treatment rate", fmt_pct(calc.treatment, 2)),
        ("absolute effect", fmt_pp(calc.effect, 2)),
        ("relative effect", fmt_pct(calc.relative_effect, signed=True)),
        ("power", fmt_pct(calc.power)),
        ("α", f"{calc.alpha:g} ({calc.alternative})"),
    ]
    frame = pd.DataFrame(rows, columns=["quantity", "value"])
    solved = {"n_per_variant": "users per variant", "power": "power", "effect": "treatment rate"}[
        calc.solved_for
    ]
    frame["quantity"] = [f"{q} (solved)" if q == solved else q for q in frame["quantity"]]
    return frame.to_html(index=False, border=0, classes="jl-table")
