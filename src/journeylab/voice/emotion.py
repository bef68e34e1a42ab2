"""The emotion curve: mean sentiment and NPS per stage beside the funnel's drop-off per stage.

Where customers feel worst and where they leave; the scores are those of
:mod:`journeylab.voice.scores` and the sentiment that of :mod:`journeylab.voice.comments`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from journeylab.core.errors import ParameterError, SchemaError, check_range, require_columns
from journeylab.core.results import Result, fmt_num, fmt_pct
from journeylab.core.stages import StageMap
from journeylab.voice.comments import sentiment
from journeylab.voice.feedback import _stage_categories
from journeylab.voice.scores import nps

__all__ = [
    "emotion_curve",
    "EmotionCurveResult",
]


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
