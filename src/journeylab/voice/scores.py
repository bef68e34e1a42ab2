"""The voice of the customer: NPS and CSAT per stage, and the emotion curve.

Survey answers (the ``feedback`` table of the data contract: ``score`` plus
optional ``survey``, ``stage``, ``touchpoint``, ``text``, ``language``) are
summarised per journey stage and touchpoint, always with intervals:

- :func:`nps` — promoters (9–10), passives (7–8), detractors (0–6) and the
  Net Promoter Score in points (−100 … +100). The interval uses the
  multinomial variance of NPS, ``var = (p_pro + p_det − (p_pro − p_det)²) / n``,
  either as a plain Wald interval or (default) the adjusted Wald interval of
  Rocks (2016, *The American Statistician* 70(4)), which adds 3/4 of an answer
  to promoters and detractors (3 to ``n``) before applying the same formula and
  keeps its coverage close to nominal for small groups and extreme scores.
- :func:`csat` — mean CSAT score (t interval) and the share of satisfied
  answers (4–5) with a Wilson interval.
- :func:`~journeylab.voice.comments.sentiment` — comment sentiment in −1 … +1, offline: English with the
  VADER lexicon shipped by the ``vaderSentiment`` package (MIT), Korean with
  the lexicon shipped in ``journeylab/lexicons/ko_sentiment.tsv`` (stems,
  negation such as 안/못/않/없, intensifiers, contrast words); the scorers live
  in :mod:`journeylab.voice.lexicons`. The language of each text is detected from its
  Hangul characters.
- :func:`~journeylab.voice.comments.themes` — recurring themes per stage from a bilingual theme dictionary
  (:data:`~journeylab.voice.comments.THEMES`), or plain keyword/bigram counts, with mean sentiment.
- :func:`emotion_curve` — mean sentiment and NPS per stage beside the funnel's
  drop-off per stage: where customers feel worst and where they leave.

Sentiment and themes live in :mod:`journeylab.voice.comments`; every public
name of both modules is importable from :mod:`journeylab.voice`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from journeylab.core.errors import (
    DataError,
    NotComputableError,
    ParameterError,
    SchemaError,
    check_in,
    check_range,
    require_columns,
)
from journeylab.core.results import Result, fmt_ci, fmt_num, fmt_pct
from journeylab.core.stages import StageMap
from journeylab.voice.comments import sentiment
from journeylab.voice.feedback import By, _by_columns, _label, _ordered, _stage_categories

__all__ = [
    "nps",
    "csat",
    "emotion_curve",
    "nps_interval",
    "NPSResult",
    "CSATResult",
    "EmotionCurveResult",
]

NPSMethod = Literal["adjusted-wald", "wald"]


# ---------------------------------------------------------------------------
# Survey helpers
# ---------------------------------------------------------------------------
def _survey_rows(
    feedback: pd.DataFrame, survey: str, *, low: int, high: int, by: list[str]
) -> tuple[pd.DataFrame, int]:
    """Return the answers of one survey with valid scores, and the count of blank scores."""
    if not isinstance(feedback, pd.DataFrame):
        raise ParameterError(f"feedback must be a pandas DataFrame, not {type(feedback).__name__}.")
    require_columns(feedback, ["score", *by], what="feedback")
    rows = feedback
    if "survey" in rows.columns:
        rows = rows[rows["survey"].astype("string").str.lower() == survey]
        if rows.empty:
            raise NotComputableError(
                f"The feedback table has no {survey.upper()} answers (no rows with survey == {survey!r}); "
                f"surveys present: {sorted(feedback['survey'].dropna().astype(str).unique())}."
            )
    score = pd.to_numeric(rows["score"], errors="coerce")
    bad_type = score.isna() & rows["score"].notna()
    if bad_type.any():
        raise DataError(
            "Feedback scores must be numbers.",
            column="score",
            rows=list(np.flatnonzero(bad_type.to_numpy())),
            hint="convert the score column to numbers, or drop the text answers.",
        )
    out_of_range = score.notna() & ((score < low) | (score > high) | (score != np.round(score)))
    if out_of_range.any():
        first = score[out_of_range].iloc[0]
        raise DataError(
            f"{survey.upper()} scores must be whole numbers from {low} to {high}; found {first:g}.",
            column="score",
            rows=list(np.flatnonzero(out_of_range.to_numpy())),
            hint=f"check the survey scale ({survey.upper()} is {low}–{high}) or filter the survey column.",
        )
    blank = int(score.isna().sum())
    rows = rows.assign(score=score).loc[score.notna()]
    if rows.empty:
        raise NotComputableError(f"No {survey.upper()} answer has a score.")
    return rows, blank


def _group(frame: pd.DataFrame, by: list[str]):
    if by:
        return frame.groupby(by, observed=True, sort=True, dropna=False)
    return frame.assign(_all=0).groupby("_all")


def _z(alpha: float) -> float:
    check_range("alpha", alpha, low=0, high=1)
    return float(stats.norm.ppf(1 - alpha / 2))


# ---------------------------------------------------------------------------
# NPS
# ---------------------------------------------------------------------------
def nps_interval(
    promoters: Any,
    detractors: Any,
    n: Any,
    *,
    method: NPSMethod = "adjusted-wald",
    alpha: float = 0.05,
) -> tuple[np.ndarray, np.ndarray]:
    """Confidence interval of NPS (as a proportion, −1 … +1) from counts.

    ``wald``: ``d ± z·sqrt((p_pro + p_det − d²) / n)`` with ``d = p_pro − p_det``
    (the multinomial variance of a difference of two shares of one sample).
    ``adjusted-wald`` (Rocks 2016): the same with ``n + 3`` answers,
    ``promoters + 3/4`` and ``detractors + 3/4``. Both are clipped to [−1, 1].

    Examples
    --------
    >>> lo, hi = nps_interval(5, 2, 10, method="wald")
    >>> round(float(lo), 4), round(float(hi), 4)
    (-0.1841, 0.7841)
    """
    check_in("method", method, ["adjusted-wald", "wald"])
    z = _z(alpha)
    pro = np.asarray(promoters, dtype=float)
    det = np.asarray(detractors, dtype=float)
    n = np.asarray(n, dtype=float)
    if method == "adjusted-wald":
        pro, det, n = pro + 0.75, det + 0.75, n + 3.0
    with np.errstate(invalid="ignore", divide="ignore"):
        p_pro, p_det = pro / n, det / n
        centre = p_pro - p_det
        se = np.sqrt(np.maximum(p_pro + p_det - centre**2, 0.0) / n)
    return np.clip(centre - z * se, -1, 1), np.clip(centre + z * se, -1, 1)


@dataclass(repr=False, eq=False)
class NPSResult(Result):
    """NPS per group: shares of promoters/passives/detractors and NPS with its interval.

    ``table`` has one row per group: the ``by`` columns, ``n``, ``promoters``,
    ``passives``, ``detractors`` (counts), their ``*_share``, ``nps`` (points,
    −100 … +100), ``nps_ci_low``, ``nps_ci_high``.
    """

    table: pd.DataFrame
    by: list[str]
    method: str
    alpha: float
    blank_scores: int = 0
    title: str = "Net Promoter Score"

    def to_frame(self) -> pd.DataFrame:
        """Return the NPS table, one row per group."""
        return self.table.copy()

    def display_frame(self) -> pd.DataFrame:
        """Format for readers: counts, shares as %, NPS with its interval."""
        t = self.table
        out = t[self.by].astype(str).copy() if self.by else pd.DataFrame(index=t.index)
        out["answers"] = t["n"].map(lambda v: f"{v:,}")
        out["promoters"] = t["promoter_share"].map(fmt_pct)
        out["passives"] = t["passive_share"].map(fmt_pct)
        out["detractors"] = t["detractor_share"].map(fmt_pct)
        out["NPS"] = t["nps"].map(lambda v: f"{v:+.1f}")
        out[f"{1 - self.alpha:.0%} CI"] = [
            f"[{lo:+.1f}, {hi:+.1f}]"
            for lo, hi in zip(t["nps_ci_low"], t["nps_ci_high"], strict=True)
        ]
        return out

    def summary(self) -> str:
        """Describe the overall picture, then the lowest and highest groups."""
        t = self.table
        level = f"{1 - self.alpha:.0%}"
        lines = []
        if not self.by:
            r = t.iloc[0]
            lines.append(
                f"NPS {r['nps']:+.1f} [{r['nps_ci_low']:+.1f}, {r['nps_ci_high']:+.1f}] from {int(r['n']):,} answers "
                f"({fmt_pct(r['promoter_share'])} promoters, {fmt_pct(r['detractor_share'])} detractors)."
            )
        else:
            labels = _label(t, self.by)
            lo, hi = t["nps"].idxmin(), t["nps"].idxmax()
            lines.append(
                f"NPS by {' and '.join(self.by)} over {int(t['n'].sum()):,} answers in {len(t)} groups."
            )
            lines.append(
                f"Lowest: {labels[lo]} {t.at[lo, 'nps']:+.1f} [{t.at[lo, 'nps_ci_low']:+.1f}, "
                f"{t.at[lo, 'nps_ci_high']:+.1f}] (n = {int(t.at[lo, 'n']):,}); highest: {labels[hi]} "
                f"{t.at[hi, 'nps']:+.1f} [{t.at[hi, 'nps_ci_low']:+.1f}, {t.at[hi, 'nps_ci_high']:+.1f}]."
            )
        lines.append(
            f"Intervals: {level}, {self.method} (multinomial variance of promoters − detractors)."
        )
        if self.blank_scores:
            lines.append(f"{self.blank_scores:,} answers without a score were left out.")
        return "\n".join(lines)

    def plot(self, ax=None):
        """Dot-and-whisker chart of NPS per group (points, with intervals)."""
        from journeylab.core.viz import PALETTE, new_axes

        t = self.table
        labels = list(_label(t, self.by))
        ax = new_axes(ax, figsize=(7, 0.45 * len(t) + 1.6))
        y = np.arange(len(t))[::-1]
        colours = [PALETTE[3] if v < 0 else PALETTE[2] for v in t["nps"]]
        ax.hlines(y, t["nps_ci_low"], t["nps_ci_high"], color="0.55", lw=2)
        ax.scatter(t["nps"], y, color=colours, zorder=3, s=45)
        for yi, v in zip(y, t["nps"], strict=True):
            ax.annotate(
                f"{v:+.0f}",
                (v, yi),
                xytext=(0, 7),
                textcoords="offset points",
                ha="center",
                fontsize=9,
            )
        ax.axvline(0, color="0.3", lw=0.8)
        ax.set_yticks(y, labels)
        ax.set_xlim(-100, 100)
        ax.set_xlabel(f"NPS (points) with {1 - self.alpha:.0%} interval")
        ax.set_title("Net Promoter Score" + (f" by {' and '.join(self.by)}" if self.by else ""))
        return ax


def nps(
    feedback: pd.DataFrame,
    by: By = ("stage",),
    *,
    method: NPSMethod = "adjusted-wald",
    alpha: float = 0.05,
    stage_map: StageMap | None = None,
) -> NPSResult:
    """Net Promoter Score per stage and/or touchpoint, with confidence intervals.

    Parameters
    ----------
    feedback : pandas.DataFrame
        Survey answers with ``score`` (0–10). When a ``survey`` column is present
        only rows with ``survey == "nps"`` are used.
    by : str, sequence of str or None
        Grouping columns, e.g. ``"stage"``, ``"touchpoint"``, ``("stage", "touchpoint")``;
        None for one overall score.
    method : {"adjusted-wald", "wald"}
        Interval method (see :func:`nps_interval`).
    alpha : float
        1 − confidence level.
    stage_map : StageMap, optional
        Orders stages along the journey (without one, in order of appearance).

    Returns
    -------
    NPSResult

    Examples
    --------
    >>> fb = pd.DataFrame({"score": [10, 9, 9, 8, 7, 6, 3, 10, 9, 0]})
    >>> nps(fb, by=None).to_frame()["nps"].item()
    20.0
    """
    by_cols = _by_columns(by)
    check_in("method", method, ["adjusted-wald", "wald"])
    rows, blank = _survey_rows(feedback, "nps", low=0, high=10, by=by_cols)
    rows = _ordered(rows, by_cols, stage_map)
    rows = rows.assign(
        _pro=(rows["score"] >= 9).astype(int),
        _pas=rows["score"].between(7, 8).astype(int),
        _det=(rows["score"] <= 6).astype(int),
    )
    agg = _group(rows, by_cols).agg(
        n=("score", "size"),
        promoters=("_pro", "sum"),
        passives=("_pas", "sum"),
        detractors=("_det", "sum"),
    )
    table = agg.reset_index(drop=not by_cols)
    n = table["n"].to_numpy(float)
    table["promoter_share"] = table["promoters"] / n
    table["passive_share"] = table["passives"] / n
    table["detractor_share"] = table["detractors"] / n
    table["nps"] = 100 * (table["promoter_share"] - table["detractor_share"])
    lo, hi = nps_interval(table["promoters"], table["detractors"], n, method=method, alpha=alpha)
    table["nps_ci_low"] = 100 * lo
    table["nps_ci_high"] = 100 * hi
    return NPSResult(table=table, by=by_cols, method=method, alpha=alpha, blank_scores=blank)


# ---------------------------------------------------------------------------
# CSAT
# ---------------------------------------------------------------------------
@dataclass(repr=False, eq=False)
class CSATResult(Result):
    """CSAT per group: mean score (t interval) and share satisfied (4–5, Wilson interval)."""

    table: pd.DataFrame
    by: list[str]
    alpha: float
    blank_scores: int = 0
    title: str = "Customer satisfaction (CSAT)"

    def to_frame(self) -> pd.DataFrame:
        """One row per group: ``n``, ``mean_score`` with CI, ``satisfied`` and its share with CI."""
        return self.table.copy()

    def display_frame(self) -> pd.DataFrame:
        """Format the table for readers."""
        t = self.table
        out = t[self.by].astype(str).copy() if self.by else pd.DataFrame(index=t.index)
        out["answers"] = t["n"].map(lambda v: f"{v:,}")
        out["mean score"] = t["mean_score"].map(lambda v: f"{v:.2f}")
        out["mean CI"] = [
            f"[{a:.2f}, {b:.2f}]" for a, b in zip(t["mean_ci_low"], t["mean_ci_high"], strict=True)
        ]
        out["satisfied (4–5)"] = t["satisfied_share"].map(fmt_pct)
        out["satisfied CI"] = [
            fmt_ci(a, b, fmt_pct)
            for a, b in zip(t["satisfied_ci_low"], t["satisfied_ci_high"], strict=True)
        ]
        return out

    def summary(self) -> str:
        """Describe the overall picture and the least satisfied group."""
        t = self.table
        total = int(t["n"].sum())
        share = t["satisfied"].sum() / total
        lines = [f"{fmt_pct(share)} of {total:,} CSAT answers are satisfied (4–5)."]
        if self.by and len(t) > 1:
            labels = _label(t, self.by)
            lo = t["satisfied_share"].idxmin()
            lines.append(
                f"Least satisfied: {labels[lo]} {fmt_pct(t.at[lo, 'satisfied_share'])} "
                f"{fmt_ci(t.at[lo, 'satisfied_ci_low'], t.at[lo, 'satisfied_ci_high'], fmt_pct)}, "
                f"mean {t.at[lo, 'mean_score']:.2f} (n = {int(t.at[lo, 'n']):,})."
            )
        lines.append(f"Intervals: {1 - self.alpha:.0%}; Wilson for shares, t for means.")
        if self.blank_scores:
            lines.append(f"{self.blank_scores:,} answers without a score were left out.")
        return "\n".join(lines)

    def plot(self, ax=None):
        """Share satisfied per group with Wilson intervals."""
        from journeylab.core.viz import PALETTE, new_axes, percent_axis

        t = self.table
        labels = list(_label(t, self.by))
        ax = new_axes(ax, figsize=(7, 0.45 * len(t) + 1.6))
        y = np.arange(len(t))[::-1]
        ax.barh(y, t["satisfied_share"], color=PALETTE[0], alpha=0.8)
        ax.errorbar(
            t["satisfied_share"],
            y,
            xerr=[
                t["satisfied_share"] - t["satisfied_ci_low"],
                t["satisfied_ci_high"] - t["satisfied_share"],
            ],
            fmt="none",
            ecolor="0.25",
            capsize=3,
        )
        ax.set_yticks(y, labels)
        ax.set_xlim(0, 1)
        percent_axis(ax, "x")
        ax.set_xlabel(f"Share satisfied (CSAT 4–5) with {1 - self.alpha:.0%} Wilson interval")
        ax.set_title("CSAT" + (f" by {' and '.join(self.by)}" if self.by else ""))
        return ax


def csat(
    feedback: pd.DataFrame,
    by: By = ("stage",),
    *,
    alpha: float = 0.05,
    stage_map: StageMap | None = None,
) -> CSATResult:
    """CSAT per stage and/or touchpoint: mean score and share satisfied (4–5).

    Parameters
    ----------
    feedback : pandas.DataFrame
        Survey answers with ``score`` (1–5). When a ``survey`` column is present
        only rows with ``survey == "csat"`` are used.
    by : str, sequence of str or None
        Grouping columns; None for one overall figure.
    alpha : float
        1 − confidence level (Wilson interval for the share, t interval for the mean).
    stage_map : StageMap, optional
        Orders stages along the journey.

    Returns
    -------
    CSATResult

    Examples
    --------
    >>> fb = pd.DataFrame({"score": [5, 4, 4, 3, 1]})
    >>> csat(fb, by=None).to_frame()["satisfied_share"].item()
    0.6
    """
    from statsmodels.stats.proportion import proportion_confint

    by_cols = _by_columns(by)
    check_range("alpha", alpha, low=0, high=1)
    rows, blank = _survey_rows(feedback, "csat", low=1, high=5, by=by_cols)
    rows = _ordered(rows, by_cols, stage_map).assign(_sat=lambda f: (f["score"] >= 4).astype(int))
    agg = _group(rows, by_cols).agg(
        n=("score", "size"),
        mean_score=("score", "mean"),
        sd=("score", "std"),
        satisfied=("_sat", "sum"),
    )
    table = agg.reset_index(drop=not by_cols)
    n = table["n"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = (
            stats.t.ppf(1 - alpha / 2, np.maximum(n - 1, 1))
            * table["sd"].to_numpy(float)
            / np.sqrt(n)
        )
    table["mean_ci_low"] = table["mean_score"] - half
    table["mean_ci_high"] = table["mean_score"] + half
    table["satisfied_share"] = table["satisfied"] / n
    lo, hi = proportion_confint(table["satisfied"].to_numpy(), n, alpha=alpha, method="wilson")
    table["satisfied_ci_low"], table["satisfied_ci_high"] = lo, hi
    table = table.drop(columns="sd")
    return CSATResult(table=table, by=by_cols, alpha=alpha, blank_scores=blank)


# ---------------------------------------------------------------------------
# Emotion curve
# ---------------------------------------------------------------------------
@dataclass(repr=False, eq=False)
class EmotionCurveResult(Result):
    """Mean sentiment and NPS per stage along the journey, beside the funnel's drop-off.

    ``table`` has one row per stage: ``comments``, ``mean_sentiment`` with
    ``sentiment_ci_low/high`` (t interval), ``nps_answers``, ``nps`` with
    ``nps_ci_low/high`` (adjusted Wald), and when a funnel was given
    ``users`` (reaching the stage) and ``drop_off`` (share of the previous
    stage's users who did not reach this one).
    """

    table: pd.DataFrame
    alpha: float
    title: str = "Emotion curve along the journey"

    @property
    def worst_stage(self) -> str | None:
        """Stage with the lowest mean comment sentiment (NPS when there are no comments)."""
        col = "mean_sentiment" if self.table["mean_sentiment"].notna().any() else "nps"
        if self.table[col].notna().any():
            return str(self.table.loc[self.table[col].idxmin(), "stage"])
        return None

    @property
    def worst_nps_stage(self) -> str | None:
        """Stage with the lowest NPS."""
        if self.table["nps"].notna().any():
            return str(self.table.loc[self.table["nps"].idxmin(), "stage"])
        return None

    @property
    def leakiest_stage(self) -> str | None:
        """Stage with the largest drop-off from the stage before it."""
        if "drop_off" in self.table and self.table["drop_off"].notna().any():
            return str(self.table.loc[self.table["drop_off"].idxmax(), "stage"])
        return None

    def to_frame(self) -> pd.DataFrame:
        """One row per stage, in journey order."""
        return self.table.copy()

    def display_frame(self) -> pd.DataFrame:
        """Format the table for readers."""
        t = self.table
        out = pd.DataFrame({"stage": t["stage"].astype(str)})
        out["comments"] = t["comments"].map(lambda v: f"{int(v):,}")
        out["sentiment"] = [
            f"{m:+.2f} [{a:+.2f}, {b:+.2f}]" if pd.notna(m) else "–"
            for m, a, b in zip(
                t["mean_sentiment"], t["sentiment_ci_low"], t["sentiment_ci_high"], strict=True
            )
        ]
        out["NPS"] = [
            f"{m:+.1f} [{a:+.1f}, {b:+.1f}]" if pd.notna(m) else "–"
            for m, a, b in zip(t["nps"], t["nps_ci_low"], t["nps_ci_high"], strict=True)
        ]
        if "users" in t:
            out["users"] = t["users"].map(lambda v: "–" if pd.isna(v) else f"{int(v):,}")
            out["drop-off"] = t["drop_off"].map(fmt_pct)
        return out

    def summary(self) -> str:
        """Say where customers feel worst and where they leave."""
        t = self.table.set_index("stage")
        lines = []
        worst = self.worst_stage
        if worst is not None and pd.notna(t.at[worst, "mean_sentiment"]):
            lines.append(
                f"Customers feel worst at {worst}: mean comment sentiment {t.at[worst, 'mean_sentiment']:+.2f} "
                f"[{t.at[worst, 'sentiment_ci_low']:+.2f}, {t.at[worst, 'sentiment_ci_high']:+.2f}] "
                f"against {fmt_num(self.table['mean_sentiment'].median())} at the median stage."
            )
        worst_nps = self.worst_nps_stage
        if worst_nps is not None:
            lines.append(
                f"Lowest NPS at {worst_nps}: {t.at[worst_nps, 'nps']:+.1f} "
                f"[{t.at[worst_nps, 'nps_ci_low']:+.1f}, {t.at[worst_nps, 'nps_ci_high']:+.1f}]."
            )
        leak = self.leakiest_stage
        if leak is not None:
            lines.append(
                f"Largest drop-off before {leak}: {fmt_pct(t.at[leak, 'drop_off'])} of the previous stage's users "
                f"do not reach it."
            )
            if worst is not None and worst == leak:
                lines.append("The worst-felt stage is also where most customers leave.")
        lines.append(f"Intervals: {1 - self.alpha:.0%} (t for sentiment, adjusted Wald for NPS).")
        return "\n".join(lines)

    def plot(self, ax=None):
        """Sentiment and NPS per stage (top) above users and drop-off per stage (bottom).

        With ``ax=None`` draws two aligned panels and returns both axes; with
        one ``ax`` draws the emotion curve there, writes each stage's drop-off
        under its name, and returns ``ax``.
        """
        import matplotlib.pyplot as plt

        from journeylab.core.viz import PALETTE

        t = self.table
        has_funnel = "users" in t and t["users"].notna().any()
        x = np.arange(len(t))
        if ax is None:
            if has_funnel:
                fig, (top, bottom) = plt.subplots(
                    2, 1, figsize=(8.5, 6.8), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
                )
            else:
                fig, top = plt.subplots(figsize=(8.5, 4.2))
                bottom = None
            axes_out = np.array([top, bottom]) if bottom is not None else top
        else:
            # One axes: the funnel's drop-off goes into the stage labels instead of a second panel.
            top, bottom = ax, None
            axes_out = ax

        # Emotion: sentiment (−1 … +1) on the left, NPS (−100 … +100) on a linked right axis.
        lines = []
        if t["mean_sentiment"].notna().any():
            err = [
                t["mean_sentiment"] - t["sentiment_ci_low"],
                t["sentiment_ci_high"] - t["mean_sentiment"],
            ]
            lines.append(
                top.errorbar(
                    x - 0.06,
                    t["mean_sentiment"],
                    yerr=err,
                    marker="o",
                    color=PALETTE[0],
                    capsize=4,
                    lw=2,
                    label="mean comment sentiment (left)",
                )
            )
        nps_axis = top.twinx()
        nps_axis.grid(False)
        if t["nps"].notna().any():
            err = [t["nps"] - t["nps_ci_low"], t["nps_ci_high"] - t["nps"]]
            lines.append(
                nps_axis.errorbar(
                    x + 0.06,
                    t["nps"],
                    yerr=err,
                    marker="s",
                    color=PALETTE[1],
                    capsize=4,
                    lw=2,
                    ls="--",
                    label="NPS (right)",
                )
            )
        lows = pd.concat([t["sentiment_ci_low"], t["nps_ci_low"] / 100]).dropna()
        highs = pd.concat([t["sentiment_ci_high"], t["nps_ci_high"] / 100]).dropna()
        low = min(-0.1, float(lows.min()) - 0.1) if len(lows) else -1
        high = max(0.1, float(highs.max()) + 0.1) if len(highs) else 1
        top.set_ylim(low, high)
        nps_axis.set_ylim(100 * low, 100 * high)
        top.axhline(0, color="0.3", lw=0.8)
        top.set_ylabel("mean sentiment (−1 … +1)")
        nps_axis.set_ylabel("NPS (−100 … +100)")
        worst = self.worst_stage
        if worst is not None:
            k = list(t["stage"].astype(str)).index(worst)
            top.axvspan(k - 0.4, k + 0.4, color=PALETTE[3], alpha=0.12, lw=0)
            top.annotate(
                "feels worst",
                (k, high),
                xytext=(0, -14),
                textcoords="offset points",
                ha="center",
                color=PALETTE[3],
                fontsize=9,
                fontweight="bold",
            )
        top.legend(handles=lines, loc="lower left", fontsize=9)
        top.set_title(
            "Where customers feel worst, and where they leave"
            if has_funnel
            else "Emotion curve along the journey"
        )
        if has_funnel and bottom is None:
            labels = [
                f"{st}\n−{d:.0%} drop-off" if pd.notna(d) else str(st)
                for st, d in zip(t["stage"].astype(str), t["drop_off"], strict=True)
            ]
        else:
            labels = list(t["stage"].astype(str))
        top.set_xticks(x, labels)

        if bottom is not None:
            users = t["users"].to_numpy(float)
            bars = bottom.bar(x, users, color=PALETTE[0], alpha=0.75, width=0.6)
            leak = self.leakiest_stage
            for k, (b, d) in enumerate(zip(bars, t["drop_off"], strict=True)):
                if pd.notna(d):
                    bottom.annotate(
                        f"−{d:.0%}",
                        (b.get_x() + b.get_width() / 2, b.get_height()),
                        xytext=(0, 3),
                        textcoords="offset points",
                        ha="center",
                        fontsize=9,
                        color=PALETTE[3] if t["stage"].iloc[k] == leak else "0.2",
                        fontweight="bold" if t["stage"].iloc[k] == leak else "normal",
                    )
            bottom.set_ylabel("users reaching the stage")
            bottom.set_ylim(0, np.nanmax(users) * 1.15)
            bottom.yaxis.set_major_formatter(lambda v, _: f"{v:,.0f}")
            bottom.set_xticks(x, t["stage"].astype(str))
            bottom.set_xlabel(
                "journey stage (number above a bar = drop-off from the previous stage)"
            )
        return axes_out


def _funnel_table(funnel: Any, stage_map: StageMap | None) -> pd.DataFrame:
    """Count users per stage from a (stage, users) table, a result with ``to_frame()`` or an event log."""
    if hasattr(funnel, "to_frame") and not isinstance(funnel, pd.DataFrame):
        funnel = funnel.to_frame()
    if {"label", "entrants"} <= set(funnel.columns) and "users" not in funnel.columns:
        # A journeylab.journeys.funnels result whose steps are labelled with stage names.
        counts = funnel.groupby("label", sort=False)["entrants"].sum()
        funnel = pd.DataFrame({"stage": counts.index.astype(str), "users": counts.to_numpy(float)})
    if not isinstance(funnel, pd.DataFrame):
        raise ParameterError(
            f"funnel must be a DataFrame with columns stage and users (or an event log), not {type(funnel).__name__}."
        )
    if {"user_id", "event"} <= set(funnel.columns) and "users" not in funnel.columns:
        # A user reaches a stage when their furthest stage is that one or a later one, so a
        # customer who books without seeing an ad still counts at awareness (a monotone funnel).
        stage_map = StageMap.coerce(stage_map)  # an event log needs the map to find stages
        codes = stage_map.assign(funnel).cat.codes.to_numpy()
        furthest = pd.Series(codes).groupby(funnel["user_id"].to_numpy()).max()
        furthest = furthest[furthest >= 0].to_numpy()
        counts = np.bincount(furthest, minlength=len(stage_map))
        reached = counts[::-1].cumsum()[::-1]
        return pd.DataFrame({"stage": stage_map.names, "users": reached.astype(float)})
    require_columns(funnel, ["stage", "users"], what="funnel")
    return funnel[["stage", "users"]].assign(
        stage=lambda f: f["stage"].astype(str), users=lambda f: f["users"].astype(float)
    )


def emotion_curve(
    feedback: pd.DataFrame,
    stage_map: StageMap | None = None,
    funnel: pd.DataFrame | Any | None = None,
    *,
    alpha: float = 0.05,
) -> EmotionCurveResult:
    """Mean comment sentiment and NPS per stage, beside the funnel's drop-off.

    Parameters
    ----------
    feedback : pandas.DataFrame
        Needs ``stage`` and ``score`` and/or ``text`` (NPS rows are those with
        ``survey == "nps"`` when the column exists).
    stage_map : StageMap, optional
        The journey order of stages (without one, the order they first appear
        in); required when ``funnel`` is an event log.
    funnel : pandas.DataFrame or result, optional
        Users reaching each stage: a table with columns ``stage`` and ``users``,
        a result whose ``to_frame()`` has them (or ``label`` and ``entrants``, as a
        :func:`journeylab.journeys.funnels.funnel` with stage-named steps), or an event log (``user_id``,
        ``event``): a user reaches a stage when their furthest stage in the
        map is that stage or a later one.
    alpha : float
        1 − confidence level.

    Returns
    -------
    EmotionCurveResult
        ``.worst_stage``, ``.leakiest_stage``, ``.plot()`` (two aligned panels).

    Examples
    --------
    >>> fb = pd.DataFrame({"stage": ["consideration", "purchase"] * 2,
    ...                    "text": ["Very helpful", "The form was awful", "Great", "Terrible form"]})
    >>> emotion_curve(fb).worst_stage
    'purchase'
    """
    check_range("alpha", alpha, low=0, high=1)
    sm = StageMap.coerce(stage_map) if stage_map is not None else None
    if not isinstance(feedback, pd.DataFrame):
        raise ParameterError(f"feedback must be a pandas DataFrame, not {type(feedback).__name__}.")
    require_columns(feedback, ["stage"], what="feedback")
    if "text" not in feedback.columns and "score" not in feedback.columns:
        raise SchemaError(
            "The feedback table needs comment text ('text') or survey scores ('score') for an emotion curve.",
            missing_columns=["text", "score"],
        )
    stages = _stage_categories(feedback["stage"], sm)
    funnel_table = _funnel_table(funnel, sm) if funnel is not None else None
    if funnel_table is not None:
        order = sm.names if sm is not None else list(funnel_table["stage"])
        stages = stages + [s for s in order if s in set(funnel_table["stage"]) and s not in stages]
        stages = [s for s in order if s in stages] + [s for s in stages if s not in order]
    table = pd.DataFrame({"stage": stages})

    if "text" in feedback.columns:
        texts = feedback[feedback["text"].notna()]
        scores = sentiment(texts["text"].astype(str)).scores.to_numpy()
        g = pd.DataFrame({"stage": texts["stage"].astype(str).to_numpy(), "s": scores}).dropna()
        agg = g.groupby("stage")["s"].agg(["size", "mean", "std"])
        half = (
            stats.t.ppf(1 - alpha / 2, np.maximum(agg["size"] - 1, 1))
            * agg["std"]
            / np.sqrt(agg["size"])
        )
        agg = agg.assign(lo=agg["mean"] - half, hi=agg["mean"] + half)
        table = table.join(
            agg.rename(
                columns={
                    "size": "comments",
                    "mean": "mean_sentiment",
                    "lo": "sentiment_ci_low",
                    "hi": "sentiment_ci_high",
                }
            )[["comments", "mean_sentiment", "sentiment_ci_low", "sentiment_ci_high"]],
            on="stage",
        )
    else:
        table = table.assign(
            comments=0, mean_sentiment=np.nan, sentiment_ci_low=np.nan, sentiment_ci_high=np.nan
        )
    table["comments"] = table["comments"].fillna(0).astype(int)

    has_nps = "score" in feedback.columns and (
        "survey" not in feedback.columns
        or feedback["survey"].astype("string").str.lower().eq("nps").any()
    )
    if has_nps:
        res = nps(feedback, by="stage", alpha=alpha, stage_map=sm).to_frame()
        res = res.assign(stage=res["stage"].astype(str)).set_index("stage")
        table = table.join(
            res[["n", "nps", "nps_ci_low", "nps_ci_high"]].rename(columns={"n": "nps_answers"}),
            on="stage",
        )
        table["nps_answers"] = table["nps_answers"].fillna(0).astype(int)
    else:
        table = table.assign(nps_answers=0, nps=np.nan, nps_ci_low=np.nan, nps_ci_high=np.nan)

    if funnel_table is not None:
        users = funnel_table.groupby("stage")["users"].sum()
        table["users"] = table["stage"].map(users)
        table["drop_off"] = 1 - table["users"] / table["users"].shift(1)
    return EmotionCurveResult(table=table, alpha=alpha)
