"""The journey canvas: the customer journey map as a diagram, one column per stage.

A customer journey map is "a diagram that shows the stages customers go
through". :func:`journey_canvas` draws it for one period (a month, or any
``start``/``end`` window) from the event log and the stage map: the stages as
columns, in order, with their display labels, and seven rows:

a. **customers do** — the stage's top events by count;
b. **touchpoints & channels** — the top channels by share of the stage's
   touches that carry a channel (touches without one are counted in
   ``to_frame()`` and named in the footnote);
c. **KPIs** — every KPI of the stage map (:meth:`JourneyMapResult.kpi_frame`)
   with its value and change against the previous period, ``↑``/``↓`` and the %
   change, ``*`` when the change is significant (see 6.);
d. **purchase journey** — conversion from each stage to the next, as an arrow
   band: among the users who reached stage *k* in the period, the share who
   reached stage *k + 1* at or after it (the journey map's ``conversion``,
   Wilson interval), with its change against the previous period (Newcombe
   interval, pooled z-test);
e. **experience journey** — the emotion curve: NPS per stage (adjusted Wald
   interval, :func:`journeylab.voice.emotion_curve`) or, without NPS answers,
   mean comment sentiment (t interval), from the feedback answered in the period;
f. **pain points** — the top 1–2 pain points per stage by value at stake, from
   :func:`journeylab.maps.pain_points` (sized rows whose gap interval excludes
   zero) or a plain table with columns ``stage``, ``title``,
   ``value_at_stake``, ``opportunity``;
g. **opportunities** — what each pain point suggests (short text).

Rules:

1. Inputs are explicit: the events, the stage map and the period; feedback
   and pains are optional. A row (or a stage's cell) without data says so in
   the cell (``no feedback data``) rather than disappearing.
2. Names are shown through display labels: ``labels[name]`` when given (a
   project file's ``labels``), else the name with underscores as spaces,
   capitalised. Every value is drawn as plain text, never as mathtext, so a
   ``$`` in an event or channel name appears as typed.
3. The canvas is laid out for A4 landscape (11.69 × 8.27 in) at 2–10 stages:
   long labels wrap, each cell holds at most four lines (items that do not fit
   are counted in a ``+k more`` line) and no two texts overlap.
4. Korean (CJK) labels draw with the bundled fallback font
   (:mod:`journeylab.core.fonts`).
5. ``to_frame()`` holds the numbers behind every cell, one row per item, with
   the notes of the cells that have no data.
6. A KPI change is tested as the difference of two compound-Poisson totals
   over users, which allows for heavy users
   (:func:`journeylab.maps.canvas_cells.kpi_change_test`).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from journeylab.core.errors import (
    NotComputableError,
    ParameterError,
    check_in,
)
from journeylab.core.results import Result, fmt_ci, fmt_money, fmt_pct
from journeylab.core.stages import StageMap
from journeylab.maps.canvas_cells import CANVAS_ROWS, build_cells, kpi_change_test
from journeylab.maps.canvas_text import fmt_change, fmt_compact
from journeylab.maps.journey_map_result import JourneyMapResult
from journeylab.maps.journey_maps import journey_map
from journeylab.maps.periods import Period, prepare_events
from journeylab.maps.progress import fmt_count

#: Answers a stage needs before the summary calls its score the lowest.
MIN_ANSWERS_FOR_LOWEST = 30

__all__ = [
    "journey_canvas",
    "canvas_of",
    "JourneyCanvasResult",
    "kpi_change_test",
    "fmt_change",
    "fmt_compact",
    "CANVAS_ROWS",
]

#: The most stages a canvas lays out legibly on one A4 landscape page.
MAX_STAGES = 10


class JourneyCanvasResult(Result):
    """The journey map drawn as a canvas: stages as columns, seven rows of numbers and words.

    Attributes
    ----------
    cells : pandas.DataFrame
        The numbers behind every cell (see :meth:`to_frame`).
    stage_map : StageMap
    period, previous : Period
        The period drawn and the one it is compared with (None without comparison).
    journey : JourneyMapResult
        The journey map the KPI and conversion rows come from.
    emotion_metric : {"nps", "sentiment", None}
        What the experience row shows.
    """

    title = "Journey canvas"

    def __init__(
        self,
        *,
        cells: pd.DataFrame,
        stage_map: StageMap,
        stage_labels: dict[str, str],
        period: Period,
        previous: Period | None,
        journey: JourneyMapResult,
        emotion_metric: str | None,
        row_notes: dict[str, str],
        notes: list[str],
        alpha: float,
        currency: str,
        canvas_title: str | None,
    ) -> None:
        self.cells = cells
        self.stage_map = stage_map
        self.stage_labels = stage_labels
        self.period = period
        self.previous = previous
        self.journey = journey
        self.emotion_metric = emotion_metric
        self.row_notes = row_notes
        self.notes = notes
        self.alpha = alpha
        self.currency = currency
        self.canvas_title = canvas_title
        self._figure = None

    # -- numbers ------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """One row per item of every cell, rows in canvas order (``row``, ``stage``, ``item`` ...).

        ``value`` is the count (events), share (channels, 0–1), KPI value,
        conversion (0–1), NPS points or mean sentiment, or value at stake;
        ``n`` its base (stage events, touches with a channel, users at the
        stage, answers). Cells without data have one row with a ``note``.
        """
        return self.cells.copy()

    def cell(self, row: str, stage: str) -> pd.DataFrame:
        """Return the rows of ``to_frame()`` behind one cell."""
        check_in("row", row, CANVAS_ROWS + ("stage",))
        self.stage_map[stage]  # raises with the stage names for an unknown stage
        c = self.cells
        return c.loc[(c["row"] == row) & (c["stage"] == stage)].reset_index(drop=True)

    def summary(self) -> str:
        """Describe the weakest step, the worst-felt stage, the biggest pain point and significant KPI changes."""
        c = self.cells
        users = (
            int(self.journey.stages["users_in_period"].iloc[0]) if len(self.journey.stages) else 0
        )
        lines = [
            f"Journey canvas, {self.period.label}: {len(self.stage_map)} stages, {fmt_count(users)} users"
            + (f", compared with {self.previous.label}." if self.previous is not None else ".")
        ]
        conv = c.loc[(c["row"] == "conversion") & c["value"].notna()]
        if len(conv):
            w = conv.loc[conv["value"].idxmin()]
            lines.append(
                f"Weakest step: {self.stage_labels[w['stage']]} → {w['label']} "
                f"{fmt_pct(w['value'])} {fmt_ci(w['ci_low'], w['ci_high'], fmt_pct)} of "
                f"{fmt_count(w['n'])} users."
            )
        emo = c.loc[(c["row"] == "emotion") & c["value"].notna()]
        # a stage with a handful of answers is no basis for "lowest": its interval spans the scale
        emo = emo.loc[emo["n"].fillna(0) >= MIN_ANSWERS_FOR_LOWEST]
        if len(emo):
            w = emo.loc[emo["value"].idxmin()]
            what = "NPS" if self.emotion_metric == "nps" else "mean sentiment"
            fmt = (
                (lambda v: f"{v:+.0f}") if self.emotion_metric == "nps" else (lambda v: f"{v:+.2f}")
            )
            lines.append(
                f"Lowest {what} at {self.stage_labels[w['stage']]}: {fmt(w['value'])} "
                f"[{fmt(w['ci_low'])}, {fmt(w['ci_high'])}] from {fmt_count(w['n'])} answers."
            )
        pains = c.loc[(c["row"] == "pains") & c["value"].notna()]
        if len(pains):
            w = pains.loc[pains["value"].idxmax()]
            lines.append(
                f"Biggest pain point: {w['label']} at {self.stage_labels[w['stage']]}, "
                f"{fmt_money(w['value'], self.currency)} at stake."
            )
        kpis = c.loc[(c["row"] == "kpis") & c["significant"].fillna(False).astype(bool)]
        if len(kpis):
            parts = [
                f"{r.label} {fmt_pct(r.change, signed=True)}" for r in kpis.itertuples(index=False)
            ]
            lines.append(
                f"KPIs that changed significantly against {self.previous.label}: "
                + ", ".join(parts)
                + "."
            )
        elif self.previous is not None:
            lines.append(
                f"No KPI changed significantly against {self.previous.label} (α = {self.alpha})."
            )
        lines += [f"Note: {text}" for text in list(self.row_notes.values()) + self.notes]
        return "\n".join(lines)

    # -- drawing ------------------------------------------------------
    def plot(self, ax=None, *, figsize: tuple[float, float] | None = None):
        """Draw the canvas on ``ax`` (its whole area) or on a new A4-landscape figure; return the axes."""
        from journeylab.maps.canvas_layout import draw_canvas

        return draw_canvas(self, ax=ax, figsize=figsize)

    @property
    def figure(self):
        """The canvas as a matplotlib Figure (drawn once, outside pyplot, so it never shows twice)."""
        if self._figure is None:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure

            from journeylab.maps.canvas_layout import canvas_size, draw_canvas

            fig = Figure(figsize=canvas_size(len(self.stage_map)))
            FigureCanvasAgg(fig)  # a canvas that can draw and measure, whatever pyplot's backend
            ax = fig.add_axes((0, 0, 1, 1))
            draw_canvas(self, ax=ax)
            self._figure = fig
        return self._figure

    def save(self, path: str | Path, *, dpi: int = 150) -> list[Path]:
        """Write the canvas: ``x.png``/``x.svg``/``x.pdf`` as named, or both PNG and SVG for a path without suffix.

        Returns the paths written.
        """
        path = Path(path)
        if path.suffix.lower() in (".png", ".svg", ".pdf"):
            targets = [path]
        elif path.suffix:
            raise ParameterError(
                f"save path {str(path)!r} has suffix {path.suffix!r}; use .png, .svg, .pdf or no suffix (PNG and SVG)."
            )
        else:
            targets = [path.with_suffix(".png"), path.with_suffix(".svg")]
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            self.figure.savefig(target, dpi=dpi, facecolor="white")
        return targets

    def to_png(self, dpi: int = 110) -> bytes:
        """Return the canvas as PNG bytes."""
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=dpi, facecolor="white")
        return buffer.getvalue()

    def _repr_html_(self) -> str:
        image = base64.b64encode(self.to_png()).decode("ascii")
        summary = html.escape(self.summary()).replace("\n", "<br>")
        alt = html.escape(f"Journey canvas, {self.period.label}")
        return (
            f'<div class="jl-result"><h4>{html.escape(self.title)}</h4>'
            f'<p class="jl-summary">{summary}</p>'
            f'<img src="data:image/png;base64,{image}" alt="{alt}" style="max-width:100%"></div>'
        )


# ---------------------------------------------------------------------------
# Building the cells
# ---------------------------------------------------------------------------
def journey_canvas(
    events: pd.DataFrame,
    stage_map: StageMap | Mapping | str,
    *,
    month: str | None = None,
    start: Any = None,
    end: Any = None,
    previous: bool = True,
    feedback: pd.DataFrame | None = None,
    pains: Any = None,
    labels: Mapping[str, str] | None = None,
    currency: str = "$",
    channel_column: str | None = "channel",
    emotion: Literal["auto", "nps", "sentiment"] = "auto",
    top_events: int = 3,
    top_channels: int = 3,
    pains_per_stage: int = 2,
    alpha: float = 0.05,
    title: str | None = None,
) -> JourneyCanvasResult:
    """Draw the journey map as a canvas: stages as columns; events, channels, KPIs, conversion, emotion, pains.

    Parameters
    ----------
    events : pandas.DataFrame
        Canonical event log (``user_id``, ``timestamp``, ``event``; ``value``
        for value KPIs; the channel column for row b).
    stage_map : StageMap, dict or YAML path
        The stages (2–10, in journey order) and their KPIs.
    month : str, optional
        ``"YYYY-MM"``; or ``start``/``end`` for a window ``[start, end)``.
    previous : bool
        Compare KPIs and conversion with the previous period.
    feedback : pandas.DataFrame, optional
        Survey answers with ``stage`` (or ``touchpoint`` = an event name) and
        ``score`` (NPS 0–10; rows with ``survey == "nps"`` when that column
        exists) and/or ``text``; answers with a ``timestamp`` outside the period
        are left out.
    pains : PainPointsResult or pandas.DataFrame, optional
        :func:`journeylab.maps.pain_points` output, or a table with columns
        ``stage``, ``title``, ``value_at_stake``, ``opportunity``.
    labels : mapping, optional
        Display labels of stage, event, channel, KPI and segment names.
    currency : str
        Symbol written before amounts of money.
    channel_column : str or None
        Column of the events naming the channel of each touch. When the default
        ``"channel"`` is absent the row says so; another name that is absent is
        an error; None leaves the row empty on purpose.
    emotion : {"auto", "nps", "sentiment"}
        What the experience row shows; ``"auto"`` is NPS when the feedback has
        NPS answers, else mean comment sentiment.
    top_events, top_channels, pains_per_stage : int
        How many items per cell to consider (fewer are drawn when they do not fit).
    alpha : float
        1 − confidence level of every interval and test.
    title : str, optional
        Heading of the canvas (default ``"Customer journey map, <period>"``).

    Returns
    -------
    JourneyCanvasResult
        ``to_frame()`` (numbers behind each cell), ``summary()``, ``plot()``,
        ``figure``, ``save(path)`` (PNG and SVG).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from journeylab.datasets import make_sample
    >>> sample = make_sample(n_users=1500, seed=3)
    >>> canvas = journey_canvas(
    ...     sample.events, sample.stage_map, month="2026-10", feedback=sample.feedback
    ... )
    >>> print(canvas.summary().splitlines()[0])
    Journey canvas, 2026-10: 5 stages, 354 users, compared with 2026-09.
    >>> [p.name for p in canvas.save(Path(tempfile.mkdtemp()) / "canvas")]
    ['canvas.png', 'canvas.svg']
    """
    if not isinstance(previous, bool):
        raise ParameterError(f"previous == {previous!r}, must be True or False.")
    stage_map = StageMap.coerce(stage_map) if stage_map is not None else None
    if stage_map is None:
        raise ParameterError(
            "journey_canvas needs a stage map: pass the project's stage map (or the sample's, sample.stage_map)."
        )
    events = prepare_events(events)
    jm = journey_map(
        events,
        stage_map,
        month=month,
        start=start,
        end=end,
        compare="previous" if previous else None,
        alpha=alpha,
    )
    return canvas_from_journey_map(
        jm,
        events,
        feedback=feedback,
        pains=pains,
        labels=labels,
        currency=currency,
        channel_column=channel_column,
        emotion=emotion,
        top_events=top_events,
        top_channels=top_channels,
        pains_per_stage=pains_per_stage,
        title=title,
    )


def canvas_from_journey_map(
    jm: JourneyMapResult,
    events: pd.DataFrame,
    *,
    feedback: pd.DataFrame | None = None,
    pains: Any = None,
    labels: Mapping[str, str] | None = None,
    currency: str = "$",
    channel_column: str | None = "channel",
    emotion: Literal["auto", "nps", "sentiment"] = "auto",
    top_events: int = 3,
    top_channels: int = 3,
    pains_per_stage: int = 2,
    title: str | None = None,
) -> JourneyCanvasResult:
    """Build the canvas of an unsegmented journey map over its own events (see :func:`journey_canvas`)."""
    stage_map: StageMap = jm.stage_map
    if jm.segment is not None:
        raise ParameterError(
            f"The journey map is split by {jm.segment!r}; a canvas shows all users. "
            "Use canvas_of(journey_map_result), or journey_canvas(events, stage_map, ...)."
        )
    if not 2 <= len(stage_map) <= MAX_STAGES:
        raise ParameterError(
            f"The stage map has {len(stage_map)} stages; a canvas lays out 2 to {MAX_STAGES} stages legibly. "
            "Merge stages in the stage map, or draw the journey map's table instead."
        )
    check_in("emotion", emotion, ["auto", "nps", "sentiment"])
    for name, value, low in (
        ("top_events", top_events, 1),
        ("top_channels", top_channels, 1),
        ("pains_per_stage", pains_per_stage, 1),
    ):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise ParameterError(f"{name} == {value!r}, must be a whole number >= {low}.")
    if labels is not None and not isinstance(labels, Mapping):
        raise ParameterError(
            f"labels must be a mapping of name → display label, not {type(labels).__name__}."
        )
    if not isinstance(currency, str):
        raise ParameterError(f"currency == {currency!r}, must be text such as '$' or '₩'.")
    labels = dict(labels or {})

    parts = build_cells(
        jm,
        events,
        feedback=feedback,
        pains=pains,
        labels=labels,
        currency=currency,
        channel_column=channel_column,
        emotion=emotion,
        top_events=top_events,
        top_channels=top_channels,
        pains_per_stage=pains_per_stage,
    )
    return JourneyCanvasResult(
        cells=parts["cells"],
        stage_map=stage_map,
        stage_labels=parts["stage_labels"],
        period=jm.period,
        previous=jm.previous,
        journey=jm,
        emotion_metric=parts["metric"],
        row_notes=parts["row_notes"],
        notes=parts["notes"],
        alpha=jm.alpha,
        currency=currency,
        canvas_title=title,
    )


def canvas_of(jm: JourneyMapResult, **options: Any) -> JourneyCanvasResult:
    """Draw a journey map result as a journey canvas (:func:`journey_canvas`).

    Uses the map's own events, stage map, period and comparison; ``options``
    are the canvas's (``feedback=``, ``pains=``, ``labels=``, ``currency=`` ...).
    A map split by segment is drawn for all users.

    Examples
    --------
    >>> from journeylab.datasets import make_sample
    >>> from journeylab.maps import journey_map
    >>> sample = make_sample(n_users=1500, seed=3)
    >>> jm = journey_map(sample.events, sample.stage_map, month="2026-10")
    >>> canvas = canvas_of(jm, feedback=sample.feedback)
    >>> canvas.to_frame().equals(
    ...     journey_canvas(
    ...         sample.events, sample.stage_map, month="2026-10", feedback=sample.feedback
    ...     ).to_frame()
    ... )
    True
    """
    if jm._events is None:
        raise NotComputableError(
            "This journey map does not hold its events; call journeylab.maps.journey_canvas(events, stage_map, ...)."
        )
    if jm.segment is None:
        return canvas_from_journey_map(jm, jm._events, **options)
    window = (
        {"month": jm.period.label}
        if jm.period.is_month
        else {"start": jm.period.start, "end": jm.period.end}
    )
    return journey_canvas(
        jm._events,
        jm.stage_map,
        previous=jm.previous is not None,
        alpha=jm.alpha,
        **window,
        **options,
    )
