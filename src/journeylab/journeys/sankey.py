"""Step-by-step flows of the journeys: the data and figures of a Sankey (alluvial) diagram.

The states are those of :mod:`journeylab.journeys.flow_common`; journeys are
built from events by :func:`journeylab.journeys.build.build_journeys` (or passed
in already built), and the steps are cut and counted in DuckDB SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
from matplotlib.patches import PathPatch, Rectangle
from matplotlib.path import Path as MplPath

from journeylab.core.errors import ParameterError, check_in, check_range
from journeylab.core.results import Result, fmt_pct
from journeylab.core.sql import quote_literal
from journeylab.core.stages import StageMap
from journeylab.core.viz import PALETTE, new_axes
from journeylab.journeys.build import _element_sql, fetch_df, fmt_count
from journeylab.journeys.flow_common import (
    CONVERSION,
    END,
    NULL,
    OTHER,
    OUTCOMES,
    Level,
    _journey_inputs,
    _open,
    _sequence_sql,
)
from journeylab.journeys.rules import DIRECT

__all__ = ["Flow", "flow"]

_OUTCOME_COLOURS = {CONVERSION: PALETTE[2], NULL: "#9a9a9a", END: "#c8c8c8"}


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
                    "hovertemplate": "%{source.label} → %{target.label}<br>"
                    "%{value:,} journeys, %{customdata:,} convert<extra></extra>",
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
                  SELECT c.journey_id, c.pos AS step, c.elem AS node
                  FROM c JOIN jj USING (journey_id) WHERE c.pos <= {k}
                  UNION ALL
                  SELECT jj.journey_id, 1, {quote_literal(DIRECT)}
                  FROM jj LEFT JOIN lens USING (journey_id) WHERE lens.n IS NULL
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
