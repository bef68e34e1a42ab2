"""The path explorer: top paths and transitions (:mod:`journeylab.journeys.flows`) by level and length."""

from __future__ import annotations

from typing import Any, Literal

import pandas as pd

from journeylab.reports.widgets._base import _Explorer, _frame_of, _png, _summary_html


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
        As in :func:`journeylab.journeys.flows.top_paths` / :func:`journeylab.journeys.flows.transitions`.

    Returns
    -------
    dict
        ``"top_paths"``: ``TopPaths.to_frame()``; ``"transitions"``:
        ``Transitions.to_frame()`` (None for a path table).

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
    >>> from journeylab.core.stages import StageMap
    >>> stages = StageMap.from_dict({"stages": [
    ...     {"name": "consideration", "events": ["view", "cart"]},
    ...     {"name": "purchase", "events": ["purchase"]}]})
    >>> top = path_data(events, level="stage", n=5, conversion="purchase", stage_map=stages)
    >>> top["top_paths"][["path", "journeys", "conversions"]]
                   path  journeys  conversions
    0  (consideration,)         2            2
    """
    top, trans = _path_results(
        _frame_of(events_or_paths),
        level=level,
        n=n,
        collapse_repeats=collapse_repeats,
        stage_map=stage_map,
        options=journey_options,
    )
    return {"top_paths": top.to_frame(), "transitions": None if trans is None else trans.to_frame()}


def _path_results(source, *, level, n, collapse_repeats, stage_map, options):
    from journeylab.journeys.flows import top_paths, transitions

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

    Built on :func:`journeylab.journeys.flows.top_paths` and
    :func:`journeylab.journeys.flows.transitions` (journeys by
    :func:`journeylab.journeys.build.path_table`'s rules).

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
    >>> events = pd.DataFrame({
    ...     "user_id": ["u1", "u1", "u1", "u2", "u2", "u3", "u4", "u4"],
    ...     "timestamp": pd.to_datetime(["2026-10-01 09:00", "2026-10-01 09:05",
    ...         "2026-10-01 09:20", "2026-10-02 10:00", "2026-10-02 10:30", "2026-10-03 11:00",
    ...         "2026-10-04 12:00", "2026-10-04 12:10"], utc=True),
    ...     "event": ["view", "cart", "purchase", "view", "cart", "view", "view", "purchase"],
    ...     "channel": ["search", "email", "email", "search", "search", "social", "email", "email"],
    ...     "platform": ["app", "app", "app", "web", "web", "app", "web", "web"]})
    >>> from journeylab.core.stages import StageMap
    >>> stages = StageMap.from_dict({"stages": [
    ...     {"name": "consideration", "events": ["view", "cart"]},
    ...     {"name": "purchase", "events": ["purchase"]}]})
    >>> px = PathExplorer(events, conversion="purchase", stage_map=stages)
    >>> px.set(level="channel", n=3).data()["top_paths"][["path", "journeys", "conversions"]]
                  path  journeys  conversions
    0         (email,)         1            1
    1  (search, email)         1            1
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
        from journeylab.journeys.flows import TopPaths, top_paths, transitions

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
            parts.append("<h4>Transitions</h4>" + _summary_html(trans.summary()))
            parts.append(_png(trans.plot, "transition probabilities between states"))
        return "".join(parts)
