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
- :func:`~journeylab.voice.comment_themes.themes` — recurring themes per stage from a bilingual theme dictionary
  (:data:`~journeylab.voice.comment_themes.THEMES`), or plain keyword/bigram counts, with mean sentiment.
- :func:`~journeylab.voice.emotion.emotion_curve` — mean sentiment and NPS per stage beside the funnel's
  drop-off per stage: where customers feel worst and where they leave.

Sentiment lives in :mod:`journeylab.voice.comments`, themes in
:mod:`journeylab.voice.comment_themes`, the emotion curve in
:mod:`journeylab.voice.emotion`; every public name of these modules is importable from
:mod:`journeylab.voice`.
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
    check_in,
    check_range,
    require_columns,
)
from journeylab.core.results import Result, fmt_ci, fmt_pct
from journeylab.core.stages import StageMap
from journeylab.voice.feedback import By, _by_columns, _label, _ordered

__all__ = [
    "nps",
    "csat",
    "nps_interval",
    "NPSResult",
    "CSATResult",
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
