"""Path flows: top paths, first-order transitions and step-by-step (Sankey) flows.

All three read journeys (built from events by :func:`journeylab.journeys.build.build_journeys`
with the same rules and options, or passed in already built); ``top_paths``
also takes a path table. The sequences are cut and counted in DuckDB SQL; only
the small aggregated tables come back to pandas.

States
------
Transitions and flows name a touch by its ``level``: ``"channel"`` (default),
``"event"`` or ``"stage"`` (the stage map's stage of the touch's event). With
``level="event"`` or ``"stage"`` every event except the conversion is a touch
unless ``touch_events`` says otherwise. Four extra states frame the journeys:

- ``START`` — where every journey begins (transitions only);
- ``CONVERSION`` — the journey ended in a conversion;
- ``NULL`` — the journey ended without one (closed: nothing within the lookback);
- ``END`` — the journey is still open at the period end (censored; only with
  ``include_censored=True``).

A conversion with no touch goes ``START → CONVERSION`` in the transitions and
through the node ``(direct)`` in flows, as in the path table.

Names
-----
Built from events, journeys need ``conversion=`` (the event or events that
count as one) and a stage map (the tie-breaker, and the stages of
``level="stage"``); both can come from the project file (``project=``). A
conversion or touch event that no row carries is an error naming it and the
closest event names present.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb
import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
from matplotlib.patches import PathPatch, Rectangle
from matplotlib.path import Path as MplPath
from statsmodels.stats.proportion import proportion_confint

from journeylab.core import sql as engine
from journeylab.core.errors import ParameterError, SchemaError, check_in, check_range, require_names
from journeylab.core.results import Result, fmt_ci, fmt_pct
from journeylab.core.sql import quote_list, quote_literal
from journeylab.core.stages import StageMap
from journeylab.core.viz import PALETTE, SEQUENTIAL, new_axes
from journeylab.journeys.build import (
    Journeys,
    _element_sql,
    _journey_views,
    fetch_df,
    fmt_count,
    path_table,
)
from journeylab.journeys.rules import DIRECT, check_journey_options

__all__ = [
    "START",
    "CONVERSION",
    "NULL",
    "END",
    "OTHER",
    "OUTCOMES",
    "TopPaths",
    "Transitions",
    "Flow",
    "top_paths",
    "transitions",
    "flow",
]

START, CONVERSION, NULL, END, OTHER = "START", "CONVERSION", "NULL", "END", "other"
OUTCOMES = (CONVERSION, NULL, END)
_OUTCOME_COLOURS = {CONVERSION: PALETTE[2], NULL: "#9a9a9a", END: "#c8c8c8"}
Level = Literal["channel", "event", "stage"]


def _journey_options(level: str, options: dict[str, Any]) -> dict[str, Any]:
    """Default touch set: channel touches for channels, every non-conversion event otherwise."""
    if level != "channel" and "touch_events" not in options:
        return {**options, "touch_events": "all"}
    return options


def _event_names(source: Any) -> list[str] | None:
    """Distinct event names of an event log (DataFrame, DuckDB relation or Parquet files)."""
    if isinstance(source, pd.DataFrame):
        if "event" not in source.columns:
            return None  # the journey builder names the missing column
        return [str(e) for e in pd.unique(source["event"].dropna())]
    if isinstance(source, duckdb.DuckDBPyRelation):
        if "event" not in source.columns:
            return None
        return [
            r[0]
            for r in source.project('CAST("event" AS VARCHAR)').distinct().fetchall()
            if r[0] is not None
        ]
    if isinstance(source, (str, Path)) or (
        isinstance(source, (list, tuple))
        and source
        and all(isinstance(p, (str, Path)) for p in source)
    ):
        paths = [str(p) for p in (source if isinstance(source, (list, tuple)) else [source])]
        with engine.cursor() as con:
            try:
                rows = con.execute(
                    f'SELECT DISTINCT CAST("event" AS VARCHAR) FROM read_parquet({quote_list(paths)})'
                ).fetchall()
            except duckdb.Error:
                return None  # unreadable or without an event column: the journey builder says why
        return [r[0] for r in rows if r[0] is not None]
    return None


def _journey_inputs(
    source: Any, stage_map: Any, options: dict[str, Any], *, project: Any, func: str
) -> tuple[Any, dict[str, Any]]:
    """Stage map and journey options for building journeys from events, checked against the events.

    ``project`` supplies the conversion, lookback and stage map not given;
    without one, ``conversion`` must be named. Conversion and listed touch
    events that no row carries are an error.
    """
    if project is not None and stage_map is None:
        stage_map = project.stage_map
    if isinstance(source, Journeys):  # built already: only the stages of level="stage" are needed
        return stage_map, options
    options = dict(options)
    if project is not None:
        options.setdefault("conversion", list(project.conversion))
        options.setdefault("lookback", project.lookback)
    if "conversion" not in options:
        raise ParameterError(
            f"{func}() builds journeys from events and needs conversion=: the event (or list of "
            "events) that counts as a conversion, e.g. conversion='purchase'; or pass project=."
        )
    names = _event_names(source)
    if names is not None:
        conversion = options["conversion"]
        require_names(
            [conversion] if isinstance(conversion, str) else list(conversion), names, what="conversion event",
            hint="name the event your log records for a conversion (names are case-sensitive).",
        )  # fmt: skip
        touch = options.get("touch_events")
        if touch is not None and not (isinstance(touch, str) and touch == "all"):
            require_names(
                [touch] if isinstance(touch, str) else list(touch), names, what="touch event"
            )
    return stage_map, options


def _open(source: Any, *, level: str, stage_map: Any, options: dict[str, Any], func: str):
    check_in("level", level, ["channel", "event", "stage"])
    check_journey_options(
        func,
        options,
        ["level", "collapse_repeats", "include_censored", "stage_map", "steps", "top", "n"],
    )
    if not isinstance(source, Journeys):
        options = _journey_options(level, options)
    return _journey_views(source, stage_map=stage_map, journey_options=options)


def _sequence_sql(touches: str, element: str, join: str, collapse_repeats: bool) -> str:
    """CTEs ``e`` (touches named at the level) and ``c`` (after collapsing repeats, renumbered)."""
    keep = "elem IS DISTINCT FROM prev" if collapse_repeats else "TRUE"
    return f"""
        e AS (SELECT t.journey_id, t.position, t."timestamp", {element} AS elem FROM {touches} t {join}),
        l AS (SELECT *, lag(elem) OVER (PARTITION BY journey_id ORDER BY position) AS prev FROM e),
        c AS (SELECT journey_id, elem, "timestamp",
                     row_number() OVER (PARTITION BY journey_id ORDER BY position) AS pos
              FROM l WHERE {keep})
    """


# ---------------------------------------------------------------------------
# top paths
# ---------------------------------------------------------------------------
@dataclass(repr=False, eq=False)
class TopPaths(Result):
    """The most common paths with conversions, conversion rate and share of journeys.

    ``to_frame()``: ``path``, ``journeys``, ``conversions``, ``conversion_rate``
    with ``ci_low``/``ci_high`` (Wilson), ``share`` (of all journeys) and
    ``value``.
    """

    table: pd.DataFrame
    total_journeys: int
    total_paths: int
    title: str = "Top paths"

    def to_frame(self) -> pd.DataFrame:
        """Return the top paths."""
        return self.table

    def summary(self) -> str:
        """Describe how much the top paths cover and the best-converting ones."""
        t = self.table
        if t.empty:
            return "No journeys."
        covered = t["journeys"].sum() / self.total_journeys
        best = t[t["journeys"] >= max(10, t["journeys"].max() * 0.05)].sort_values(
            "conversion_rate", ascending=False
        )
        line = (
            f"The top {len(t)} of {fmt_count(self.total_paths)} distinct paths cover {fmt_pct(covered)} of "
            f"{fmt_count(self.total_journeys)} journeys. Most common: {_fmt_path(t['path'].iloc[0])} "
            f"({fmt_pct(t['share'].iloc[0])} of journeys, converting {fmt_pct(t['conversion_rate'].iloc[0])})."
        )
        if len(best):
            b = best.iloc[0]
            line += (
                f" Best converting among the common ones: {_fmt_path(b['path'])} {fmt_pct(b['conversion_rate'])} "
                f"{fmt_ci(b['ci_low'], b['ci_high'], fmt_pct)}."
            )
        return line

    def display_frame(self) -> pd.DataFrame:
        """Return the table with readable paths and rates."""
        t = self.table
        return pd.DataFrame(
            {
                "path": t["path"].map(_fmt_path),
                "journeys": t["journeys"].map(fmt_count),
                "share": t["share"].map(fmt_pct),
                "conversions": t["conversions"].map(fmt_count),
                "conversion rate": [
                    f"{fmt_pct(r)} {fmt_ci(lo, hi, fmt_pct)}"
                    for r, lo, hi in zip(
                        t["conversion_rate"], t["ci_low"], t["ci_high"], strict=True
                    )
                ],
            }
        )

    def plot(self, ax=None):
        """Draw journeys per path (bars) with each path's conversion rate written beside it."""
        t = self.table
        ax = new_axes(ax, figsize=(9, 0.8 + 0.38 * max(len(t), 1)))
        y = np.arange(len(t))
        ax.barh(y, t["journeys"] - t["conversions"], color="#b9b9b9", label="not converted")
        ax.barh(
            y,
            t["conversions"],
            left=t["journeys"] - t["conversions"],
            color=PALETTE[2],
            label="converted",
        )
        top = float(t["journeys"].max()) if len(t) else 1.0
        for i, (n, r) in enumerate(zip(t["journeys"], t["conversion_rate"], strict=True)):
            ax.text(
                n + top * 0.01, i, f"{fmt_count(n)} · {fmt_pct(r)} convert", va="center", fontsize=9
            )
        ax.set_yticks(y)
        ax.set_yticklabels([_fmt_path(p, 60) for p in t["path"]], fontsize=9)
        ax.invert_yaxis()
        ax.set_xlim(0, top * 1.35)
        ax.set_xlabel("journeys")
        ax.set_title(
            f"Top {len(t)} paths ({fmt_pct(t['journeys'].sum() / max(self.total_journeys, 1))} of journeys)"
        )
        ax.grid(axis="y", visible=False)
        ax.legend(loc="lower right")
        return ax


def _fmt_path(path: tuple, width: int | None = None) -> str:
    text = " > ".join(str(p) for p in path)
    if width and len(text) > width:
        text = text[: width - 1] + "…"
    return text


def top_paths(
    paths_or_journeys: Any,
    n: int = 20,
    *,
    confidence: float = 0.95,
    project: Any = None,
    **path_options: Any,
) -> TopPaths:
    """List the ``n`` most common paths with conversions, conversion rate and share.

    Parameters
    ----------
    paths_or_journeys : path table, Journeys or events
        A path table (columns ``path``, ``conversions``, ``non_conversions``,
        ``value``), journeys, or an event log (passed to
        :func:`journeylab.journeys.build.path_table` with ``path_options``).
    n : int
        How many paths to keep (by journeys, then conversions, then path).
    confidence : float
        Level of the Wilson intervals on the conversion rates.
    project : Project, optional
        The project file: its ``conversion``, ``lookback`` and ``stage_map``
        when paths are built from events here.
    **path_options
        ``level``, ``collapse_repeats``, ``include_censored``, ``stage_map``
        and the journey options (``conversion`` is required for events), when
        paths are built here.

    Returns
    -------
    TopPaths

    Examples
    --------
    >>> paths = pd.DataFrame({"path": [("email",), ("social", "email")],
    ...     "conversions": [3, 1], "value": [30.0, 10.0], "non_conversions": [7, 1]})
    >>> top_paths(paths).to_frame()[["journeys", "conversion_rate", "share"]].values.tolist()
    [[10.0, 0.3, 0.8333333333333334], [2.0, 0.5, 0.16666666666666666]]
    """
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
        raise ParameterError(f"n == {n!r}, must be a whole number.")
    check_range("n", n, low=1, low_inclusive=True)
    check_range("confidence", confidence, low=0, high=1)
    if isinstance(paths_or_journeys, pd.DataFrame) and "path" in paths_or_journeys.columns:
        if path_options or project is not None:
            raise ParameterError(
                f"{sorted(path_options)} apply only when paths are built here; this is a path table already."
            )
        missing = [
            c for c in ("conversions", "non_conversions") if c not in paths_or_journeys.columns
        ]
        if missing:
            raise SchemaError(
                f"The path table lacks column(s) {missing}.",
                missing_columns=missing,
                hint="pass a table from journeylab.journeys.build.path_table(...).",
            )
        paths = paths_or_journeys
    elif isinstance(paths_or_journeys, Journeys):
        paths = path_table(paths_or_journeys, **path_options)
    else:  # events: the same default touches as transitions() and flow()
        options = {k: v for k, v in path_options.items() if k != "stage_map"}
        stage_map, options = _journey_inputs(
            paths_or_journeys,
            path_options.get("stage_map"),
            options,
            project=project,
            func="top_paths",
        )
        options = _journey_options(options.get("level", "channel"), options)
        paths = path_table(paths_or_journeys, stage_map=stage_map, **options)
    t = pd.DataFrame(
        {
            "path": paths["path"].map(tuple),
            "conversions": paths["conversions"].astype(float),
            "non_conversions": paths["non_conversions"].astype(float),
            "value": paths["value"].astype(float) if "value" in paths else 0.0,
        }
    )
    # one row per path even if the table repeats a path
    t = t.groupby("path", as_index=False, sort=False).sum()
    t["journeys"] = t["conversions"] + t["non_conversions"]
    total = float(t["journeys"].sum())
    t["_key"] = t["path"].map(_fmt_path)
    t = t.sort_values(
        ["journeys", "conversions", "_key"], ascending=[False, False, True], kind="stable"
    ).head(int(n))
    rate = np.where(
        t["journeys"] > 0, t["conversions"] / t["journeys"].where(t["journeys"] > 0, 1), np.nan
    )
    low, high = proportion_confint(
        t["conversions"],
        t["journeys"].where(t["journeys"] > 0, 1),
        alpha=1 - confidence,
        method="wilson",
    )
    out = pd.DataFrame(
        {
            "path": t["path"].to_numpy(),
            "journeys": t["journeys"].to_numpy(),
            "conversions": t["conversions"].to_numpy(),
            "conversion_rate": rate,
            "ci_low": np.asarray(low, dtype=float),
            "ci_high": np.asarray(high, dtype=float),
            "share": t["journeys"].to_numpy() / total if total else np.nan,
            "value": t["value"].to_numpy(),
        }
    )
    for col in ("journeys", "conversions"):
        if np.all(np.mod(out[col], 1) == 0):  # whole counts stay whole (weights stay fractional)
            out[col] = out[col].astype("int64")
    return TopPaths(table=out, total_journeys=int(total), total_paths=int(len(paths)))


# ---------------------------------------------------------------------------
# transitions
# ---------------------------------------------------------------------------
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
                    f"The touch most often followed by a conversion: {b['from']} ({fmt_pct(b['probability'])} of its transitions)."
                )
        lines.append(
            f"{fmt_count(t.loc[t['from'] == START, 'count'].sum())} journeys, {len(self.states())} states; "
            f"repeats {'collapsed' if self.settings.get('collapse_repeats') else 'kept'} (level: {self.settings.get('level')})."
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
    stage_map, journey_options = _journey_inputs(
        events_or_journeys, stage_map, journey_options, project=project, func="transitions"
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
                  SELECT {quote_literal(START)} AS "from", coalesce(s.elem, {quote_literal(CONVERSION)}) AS "to", NULL::DOUBLE AS secs
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
    frame["count"] = frame["count"].astype("int64")
    frame["probability"] = frame["count"] / frame.groupby("from")["count"].transform("sum")
    frame["median_time"] = pd.to_timedelta(frame.pop("median_secs"), unit="s")
    frame = frame[["from", "to", "count", "probability", "median_time"]].reset_index(drop=True)
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


# ---------------------------------------------------------------------------
# step-by-step flow (Sankey / alluvial)
# ---------------------------------------------------------------------------
@dataclass(repr=False, eq=False)
class Flow(Result):
    """Journeys step by step: nodes per step and links between consecutive steps.

    ``nodes``: ``step`` (1 = first touch), ``node``, ``journeys``,
    ``conversions``. ``links``: ``source_step``, ``source``, ``target_step``,
    ``target``, ``journeys``, ``conversions``. Outcome nodes (CONVERSION,
    NULL, END) follow a journey's last shown touch, so a journey longer than
    ``steps`` touches is drawn by its first ``steps`` touches and its outcome
    (at step ``steps + 1``). At each step only the ``top`` most frequent
    touch states keep their name; the rest are ``"other"``.
    """

    nodes: pd.DataFrame
    links: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)
    title: str = "Journey flow"

    def to_frame(self) -> pd.DataFrame:
        """Return the links (the numbers behind the diagram)."""
        return self.links

    def summary(self) -> str:
        """Describe the journeys drawn and where they go after the first touch."""
        n = self.nodes
        first = n[n["step"] == 1].sort_values("journeys", ascending=False)
        total = int(first["journeys"].sum())
        if total == 0:
            return "No journeys."
        conv = int(n.loc[n["node"] == CONVERSION, "journeys"].sum())
        top = first.iloc[0]
        return (
            f"{fmt_count(total)} journeys, first {self.settings['steps']} touches shown "
            f"(top {self.settings['top']} states per step, the rest as '{OTHER}'); "
            f"{fmt_count(conv)} convert ({fmt_pct(conv / total)}). Most journeys start with {top['node']} "
            f"({fmt_pct(top['journeys'] / total)}, converting {fmt_pct(top['conversions'] / top['journeys'])})."
        )

    def _colours(self) -> dict[str, Any]:
        names = (
            self.nodes[~self.nodes["node"].isin([*OUTCOMES, OTHER])]
            .groupby("node")["journeys"]
            .sum()
            .sort_values(ascending=False, kind="stable")
            .index
        )
        # green and grey mean CONVERSION and NULL, so touch states use the other colours
        touch_palette = [c for i, c in enumerate(PALETTE) if i not in (2, 7)]
        colours: dict[str, Any] = {
            name: touch_palette[i % len(touch_palette)] for i, name in enumerate(names)
        }
        colours.update(_OUTCOME_COLOURS)
        colours[OTHER] = "#7f7f7f"
        return colours

    def _layout(self, gap: float = 0.02) -> pd.DataFrame:
        """Node rectangles: x (step), y0/y1 (bottom/top, total height 1)."""
        n = self.nodes.copy()
        order = {
            name: i
            for i, name in enumerate(
                n.groupby("node")["journeys"]
                .sum()
                .sort_values(ascending=False, kind="stable")
                .index
            )
        }
        if self.settings.get("stage_order"):  # stages keep journey order, top to bottom
            stages = list(self.settings["stage_order"])
            order = {
                name: i for i, name in enumerate(stages + [v for v in order if v not in stages])
            }
        rank = n["node"].map(
            lambda v: (
                (2, OUTCOMES.index(v)) if v in OUTCOMES else (1, 0) if v == OTHER else (0, order[v])
            )
        )
        n["_rank"] = rank
        n = n.sort_values(["step", "_rank"], kind="stable")
        totals = n.groupby("step")["journeys"].sum()
        counts = n.groupby("step").size()
        scale = min((1 - gap * (counts[s] - 1)) / totals[s] for s in totals.index if totals[s] > 0)
        n["height"] = n["journeys"] * scale
        n["y1"] = (
            1
            - (n.groupby("step")["height"].cumsum() - n["height"])
            - n.groupby("step").cumcount() * gap
        )
        n["y0"] = n["y1"] - n["height"]
        n.attrs["scale"] = scale
        return n.drop(columns="_rank")

    def plot(self, ax=None, min_label: float = 0.025):
        """Draw a static alluvial (Sankey) diagram with matplotlib.

        Node labels show the state and its journeys; nodes thinner than
        ``min_label`` of the height stay unlabelled to keep the figure legible.
        """
        steps = self.settings["steps"]
        ax = new_axes(ax, figsize=(3.0 + 2.2 * (steps + 1), 6.5))
        if self.nodes.empty:
            ax.set_title("No journeys")
            ax.set_axis_off()
            return ax
        layout = self._layout()
        scale = layout.attrs["scale"]
        colours = self._colours()
        width = 0.12
        pos = {(r.step, r.node): r for r in layout.itertuples()}
        out_offset = {k: r.y1 for k, r in pos.items()}
        in_offset = {k: r.y1 for k, r in pos.items()}
        links = self.links.copy()
        links["_src_y"] = [
            pos[(s, n)].y1 for s, n in zip(links["source_step"], links["source"], strict=True)
        ]
        links["_tgt_y"] = [
            pos[(s, n)].y1 for s, n in zip(links["target_step"], links["target"], strict=True)
        ]
        # Bands leave a node in the order of their targets and enter in the order of their sources.
        out_order = links.sort_values(
            ["source_step", "source", "_tgt_y"], ascending=[True, True, False]
        ).index
        in_order = links.sort_values(
            ["target_step", "target", "_src_y"], ascending=[True, True, False]
        ).index
        y_out, y_in = {}, {}
        for i in out_order:
            key = (links.at[i, "source_step"], links.at[i, "source"])
            h = links.at[i, "journeys"] * scale
            y_out[i] = (out_offset[key] - h, out_offset[key])
            out_offset[key] -= h
        for i in in_order:
            key = (links.at[i, "target_step"], links.at[i, "target"])
            h = links.at[i, "journeys"] * scale
            y_in[i] = (in_offset[key] - h, in_offset[key])
            in_offset[key] -= h
        for i, link in links.iterrows():  # one band per link (a few dozen)
            x0 = link["source_step"] + width / 2
            x1 = link["target_step"] - width / 2
            (a0, a1), (b0, b1) = y_out[i], y_in[i]
            xm = (x0 + x1) / 2
            verts = [
                (x0, a1),
                (xm, a1),
                (xm, b1),
                (x1, b1),
                (x1, b0),
                (xm, b0),
                (xm, a0),
                (x0, a0),
                (x0, a1),
            ]
            codes = [
                MplPath.MOVETO,
                MplPath.CURVE4,
                MplPath.CURVE4,
                MplPath.CURVE4,
                MplPath.LINETO,
                MplPath.CURVE4,
                MplPath.CURVE4,
                MplPath.CURVE4,
                MplPath.CLOSEPOLY,
            ]
            colour = colours.get(
                link["target"] if link["target"] in OUTCOMES else link["source"], "#999999"
            )
            ax.add_patch(
                PathPatch(
                    MplPath(verts, codes), facecolor=mcolors.to_rgba(colour, 0.35), edgecolor="none"
                )
            )
        for r in layout.itertuples():
            ax.add_patch(
                Rectangle(
                    (r.step - width / 2, r.y0),
                    width,
                    r.height,
                    facecolor=colours.get(r.node, "#999999"),
                    edgecolor="white",
                    lw=0.5,
                )
            )
            if r.height >= min_label:
                ax.text(
                    r.step + width / 2 + 0.04,
                    (r.y0 + r.y1) / 2,
                    f"{r.node}\n{fmt_count(r.journeys)}",
                    va="center",
                    ha="left",
                    fontsize=8.5,
                    linespacing=1.1,
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.75},
                )
        ax.set_xlim(1 - width, steps + 1 + 0.75)
        ax.set_ylim(min(0, float(layout["y0"].min())) - 0.01, 1.01)
        ax.set_xticks(range(1, steps + 2))
        ax.set_xticklabels([f"touch {i}" for i in range(1, steps + 1)] + ["outcome"])
        ax.set_yticks([])
        ax.grid(False)
        for side in ("left", "right", "top", "bottom"):
            ax.spines[side].set_visible(False)
        total = int(layout.loc[layout["step"] == 1, "journeys"].sum())
        ax.set_title(
            f"Journey flow: first {steps} {self.settings['level']} touches of {fmt_count(total)} journeys"
        )
        return ax

    def interactive(self):
        """Return an interactive plotly Sankey figure (renders offline in JupyterLab).

        Save it for offline reading with ``fig.write_html(path, include_plotlyjs=True)``.
        """
        try:
            import plotly.graph_objects as go
        except ImportError as exc:  # pragma: no cover - plotly is a dependency
            raise ImportError("Flow.interactive() needs plotly: pip install plotly") from exc
        layout = self._layout()
        colours = self._colours()
        index = {(r.step, r.node): i for i, r in enumerate(layout.itertuples())}
        steps = self.settings["steps"]

        def rgba(c, a):
            r, g, b, _ = mcolors.to_rgba(c)
            return f"rgba({int(r * 255)}, {int(g * 255)}, {int(b * 255)}, {a})"

        node_colour = [rgba(colours.get(n, "#999999"), 0.9) for n in layout["node"]]
        link_colour = [
            rgba(colours.get(t if t in OUTCOMES else s, "#999999"), 0.35)
            for s, t in zip(self.links["source"], self.links["target"], strict=True)
        ]
        fig = go.Figure(
            go.Sankey(
                arrangement="snap",
                node={
                    "label": [f"{n}" for n in layout["node"]],
                    "x": [(s - 1) / steps * 0.98 + 0.01 for s in layout["step"]],
                    "y": [
                        min(max(1 - (y0 + y1) / 2, 0.01), 0.99)
                        for y0, y1 in zip(layout["y0"], layout["y1"], strict=True)
                    ],
                    "color": node_colour,
                    "pad": 12,
                    "customdata": [
                        f"touch {s}" if s <= steps else "outcome" for s in layout["step"]
                    ],
                    "hovertemplate": "%{label} (%{customdata})<br>%{value:,} journeys<extra></extra>",
                },
                link={
                    "source": [
                        index[(s, n)]
                        for s, n in zip(
                            self.links["source_step"], self.links["source"], strict=True
                        )
                    ],
                    "target": [
                        index[(s, n)]
                        for s, n in zip(
                            self.links["target_step"], self.links["target"], strict=True
                        )
                    ],
                    "value": self.links["journeys"].astype(int).tolist(),
                    "customdata": self.links["conversions"].astype(int).tolist(),
                    "color": link_colour,
                    "hovertemplate": "%{source.label} → %{target.label}<br>%{value:,} journeys, %{customdata:,} convert<extra></extra>",
                },
            )
        )
        fig.update_layout(
            title=f"Journey flow ({self.settings['level']})", font_size=12, height=520
        )
        return fig


def flow(
    events_or_journeys: Any,
    *,
    steps: int = 4,
    top: int = 6,
    level: Level = "channel",
    collapse_repeats: bool = True,
    include_censored: bool = False,
    stage_map: Any = None,
    project: Any = None,
    **journey_options: Any,
) -> Flow:
    """Build step-by-step flow data (a Sankey / alluvial diagram) of the journeys.

    Parameters
    ----------
    events_or_journeys : DataFrame, DuckDB relation, Parquet path(s) or Journeys
        Events (journeys are built with ``journey_options``) or journeys.
    steps : int
        Touches shown per journey (then its outcome).
    top : int
        Touch states named per step; the others are grouped as ``"other"``.
    level : {"channel", "event", "stage"}
        What a node names.
    collapse_repeats : bool
        Merge consecutive identical touches first.
    include_censored : bool
        Show still-open journeys (outcome ``END``).
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
    Flow
        ``.nodes``, ``.links``, ``.plot(ax)`` (static) and ``.interactive()`` (plotly).

    Examples
    --------
    >>> from journeylab.core.stages import StageMap
    >>> stages = StageMap.from_dict({"stages": [{"name": "consideration", "events": ["visit"]},
    ...                                          {"name": "purchase", "events": ["purchase"]}]})
    >>> ev = pd.DataFrame({"user_id": ["a", "a", "b"],
    ...     "timestamp": pd.to_datetime(["2026-05-01", "2026-05-02", "2026-05-01"], utc=True),
    ...     "event": ["visit", "purchase", "visit"],
    ...     "channel": ["email", None, "email"]})
    >>> f = flow(ev, conversion="purchase", stage_map=stages, period_end="2026-07-01")
    >>> f.links[["source", "target", "journeys"]].values.tolist()
    [['email', 'CONVERSION', 1], ['email', 'NULL', 1]]
    """
    for name, value in (("steps", steps), ("top", top)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise ParameterError(f"{name} == {value!r}, must be a whole number.")
        check_range(name, value, low=1, low_inclusive=True)
    check_in("level", level, ["channel", "event", "stage"])
    stage_map, journey_options = _journey_inputs(
        events_or_journeys, stage_map, journey_options, project=project, func="flow"
    )
    k, m = int(steps), int(top)
    views = _open(
        events_or_journeys, level=level, stage_map=stage_map, options=journey_options, func="flow"
    )
    with views as (con, touches, journeys, left_out, settings):
        element, join = _element_sql(level, stage_map, con, touches)
        outcome = (
            f"CASE WHEN j.converted THEN {quote_literal(CONVERSION)} WHEN j.censored THEN {quote_literal(END)} "
            f"ELSE {quote_literal(NULL)} END"
        )
        where = "TRUE" if include_censored else "NOT j.censored"
        result = fetch_df(
            con.execute(
                f"""
                WITH {_sequence_sql(touches, element, join, collapse_repeats)},
                jj AS (SELECT j.journey_id, j.converted, {outcome} AS outcome FROM {journeys} j WHERE {where}),
                lens AS (SELECT journey_id, max(pos) AS n FROM c GROUP BY journey_id),
                seq AS (  -- touches shown (a conversion with no touch shows the direct path)
                  SELECT c.journey_id, c.pos AS step, c.elem AS node FROM c JOIN jj USING (journey_id) WHERE c.pos <= {k}
                  UNION ALL
                  SELECT jj.journey_id, 1, {quote_literal(DIRECT)} FROM jj LEFT JOIN lens USING (journey_id) WHERE lens.n IS NULL
                ),
                ranked AS (
                  SELECT step, node, row_number() OVER (PARTITION BY step ORDER BY count(*) DESC, node) AS r
                  FROM seq GROUP BY step, node
                ),
                named AS (
                  SELECT s.journey_id, s.step, CASE WHEN r.r <= {m} THEN s.node ELSE {quote_literal(OTHER)} END AS node
                  FROM seq s JOIN ranked r USING (step, node)
                ),
                ends AS (  -- the outcome follows the last shown touch
                  SELECT jj.journey_id, least(coalesce(lens.n, 1), {k}) + 1 AS step, jj.outcome AS node
                  FROM jj LEFT JOIN lens USING (journey_id)
                ),
                allnodes AS (SELECT * FROM named UNION ALL SELECT * FROM ends),
                linked AS (
                  SELECT a.journey_id, a.step AS source_step, a.node AS source, b.step AS target_step, b.node AS target
                  FROM allnodes a JOIN allnodes b ON a.journey_id = b.journey_id AND b.step = a.step + 1
                )
                SELECT 'link' AS kind, l.source_step, l.source, l.target_step, l.target,
                       count(*) AS journeys, sum(jj.converted::BIGINT) AS conversions
                FROM linked l JOIN jj USING (journey_id) GROUP BY ALL
                UNION ALL
                SELECT 'node', a.step, a.node, NULL, NULL, count(*), sum(jj.converted::BIGINT)
                FROM allnodes a JOIN jj USING (journey_id) GROUP BY ALL
                """
            )
        )
    result["journeys"] = result["journeys"].astype("int64")
    result["conversions"] = result["conversions"].fillna(0).astype("int64")
    nodes = (
        result[result["kind"] == "node"]
        .rename(columns={"source_step": "step", "source": "node"})[
            ["step", "node", "journeys", "conversions"]
        ]
        .astype({"step": "int64"})
        .sort_values(["step", "journeys", "node"], ascending=[True, False, True], kind="stable")
        .reset_index(drop=True)
    )
    links = (
        result[result["kind"] == "link"][
            ["source_step", "source", "target_step", "target", "journeys", "conversions"]
        ]
        .astype({"source_step": "int64", "target_step": "int64"})
        .sort_values(
            ["source_step", "source", "journeys", "target"],
            ascending=[True, True, False, True],
            kind="stable",
        )
        .reset_index(drop=True)
    )
    return Flow(
        nodes=nodes,
        links=links,
        settings={
            **settings,
            "steps": k,
            "top": m,
            "level": level,
            "collapse_repeats": collapse_repeats,
            "stage_order": StageMap.coerce(stage_map).names if level == "stage" else None,
            "include_censored": include_censored,
            "left_out": left_out,
        },
    )
