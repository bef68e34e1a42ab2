"""The numbers behind each cell of the journey canvas (:mod:`journeylab.maps.canvas`).

:func:`build_cells` turns a journey map, its events and the optional feedback
and pain points into one tidy table: one row per item of every cell, and one
row with a ``note`` for a cell without data.

A KPI change is tested as the difference of two compound-Poisson totals
(:func:`kpi_change_test`): a KPI is a sum over users of each user's
contribution ``x`` (events, 1 for a distinct user, or value), and
``z = (T − T_prev) / sqrt(Σx² + Σx_prev²)``. For distinct users (``x = 1``) this
is the Wald test of two Poisson counts (statsmodels
``test_poisson_2indep(method="wald")``); for event counts and values it allows
for heavy users (overdispersion), which a plain Poisson test ignores. The
interval of the relative change is the delta-method interval of the log ratio
(statsmodels ``confint_poisson_2indep(method="wald-log", compare="ratio")``
for distinct users).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from journeylab.core.errors import (
    DataError,
    ParameterError,
    SchemaError,
    check_range,
    did_you_mean,
    require_columns,
)
from journeylab.core.project import display_label
from journeylab.core.results import fmt_pct
from journeylab.core.stages import StageMap
from journeylab.maps.journey_map_result import JourneyMapResult
from journeylab.maps.periods import ALL_USERS, Period, in_period
from journeylab.maps.progress import events_matching

__all__ = [
    "build_cells",
    "kpi_change_test",
    "kpi_moments",
    "CANVAS_ROWS",
    "PAIN_COLUMNS",
    "FRAME_COLUMNS",
]

#: The rows of the canvas, top to bottom, as named in ``to_frame()["row"]``.
CANVAS_ROWS = ("events", "channels", "kpis", "conversion", "emotion", "pains", "opportunities")
PAIN_COLUMNS = ("stage", "title", "value_at_stake", "opportunity")

FRAME_COLUMNS = [
    "row", "stage", "item", "label", "value", "ci_low", "ci_high", "previous", "change",
    "change_ci_low", "change_ci_high", "p_value", "significant", "n", "note",
]  # fmt: skip


def kpi_change_test(
    total: Any, sum_sq: Any, previous: Any, previous_sum_sq: Any, alpha: float = 0.05
) -> pd.DataFrame:
    """Relative change of compound-Poisson totals with a delta-method interval and a z-test.

    Parameters
    ----------
    total, previous : array-like
        The KPI in the period and in the previous period (sums over users).
    sum_sq, previous_sum_sq : array-like
        The sums over users of each user's squared contribution.
    alpha : float
        1 − confidence level.

    Returns
    -------
    pandas.DataFrame
        ``change`` (``total / previous − 1``), ``change_ci_low``,
        ``change_ci_high``, ``z`` and two-sided ``p_value``; NaN where the
        previous total is 0 (no relative change), ``p_value`` 1 where both are 0.

    Examples
    --------
    >>> kpi_change_test([120], [120], [100], [100]).round(4)[["change", "p_value"]]
       change  p_value
    0     0.2   0.1775
    """
    t1, s1, t0, s0 = (
        np.atleast_1d(np.asarray(x, dtype=float))
        for x in (total, sum_sq, previous, previous_sum_sq)
    )
    check_range("alpha", alpha, low=0, high=1)
    z_crit = stats.norm.ppf(1 - alpha / 2)
    with np.errstate(all="ignore"):
        var = s1 + s0
        z = np.where(var > 0, (t1 - t0) / np.sqrt(var), 0.0)
        p = np.where(var > 0, 2 * stats.norm.sf(np.abs(z)), 1.0)
        ok = (t0 > 0) & (t1 > 0)
        change = np.where(t0 > 0, t1 / t0 - 1, np.nan)
        se_log = np.sqrt(s1 / t1**2 + s0 / t0**2)
        log_ratio = np.log(t1 / t0)
        low = np.where(ok, np.exp(log_ratio - z_crit * se_log) - 1, np.nan)
        high = np.where(ok, np.exp(log_ratio + z_crit * se_log) - 1, np.nan)
    return pd.DataFrame(
        {"change": change, "change_ci_low": low, "change_ci_high": high, "z": z, "p_value": p}
    )


def kpi_moments(frame: pd.DataFrame, stage_map: StageMap) -> pd.DataFrame:
    """Return per KPI the total and the sum over users of squared per-user contributions."""
    rows = []
    has_value = "value" in frame.columns
    read = ["user_id", "value"] if has_value else ["user_id"]  # the only columns a KPI reads
    for kpi in stage_map.kpis().itertuples(index=False):
        sub = frame.loc[events_matching(frame, kpi.events), read] if len(frame) else frame
        if kpi.measure == "count":
            per_user = sub.groupby("user_id").size().astype(float)
        elif kpi.measure == "users":
            per_user = pd.Series(1.0, index=pd.unique(sub["user_id"]))
        else:
            values = sub["value"].fillna(0.0) if has_value else pd.Series(0.0, index=sub.index)
            per_user = values.groupby(sub["user_id"]).sum().astype(float)
        rows.append(
            {"kpi": kpi.kpi, "total": float(per_user.sum()), "sum_sq": float((per_user**2).sum())}
        )
    return pd.DataFrame(rows, columns=["kpi", "total", "sum_sq"])


def _empty_row(row: str, stage: str, note: str) -> dict[str, Any]:
    return {"row": row, "stage": stage, "note": note}


def build_cells(
    jm: JourneyMapResult,
    events: pd.DataFrame,
    *,
    feedback: pd.DataFrame | None,
    pains: Any,
    labels: dict[str, str],
    currency: str,
    channel_column: str | None,
    emotion: str,
    top_events: int,
    top_channels: int,
    pains_per_stage: int,
) -> dict[str, Any]:
    """Compute every cell of the canvas of an unsegmented journey map over its (prepared) events.

    Returns ``cells`` (the tidy table), ``stage_labels``, ``metric`` (what the
    experience row shows), ``row_notes`` (rows without data) and ``notes``.
    """
    stage_map: StageMap = jm.stage_map

    def label(name: object) -> str:
        return display_label(name, labels)

    period: Period = jm.period
    alpha = jm.alpha
    # The cells read these columns only: the period is copied without the others.
    read = ["user_id", "timestamp", "event", "value", *([channel_column] if channel_column else [])]
    frame = in_period(events, period, read)
    stage_of_row = stage_map.assign(frame)
    names = stage_map.names
    stage_labels = {s: label(s) for s in names}
    rows: list[dict[str, Any]] = []
    row_notes: dict[str, str] = {}
    notes: list[str] = []

    stage_table = jm.stages.loc[jm.stages["segment"] == ALL_USERS].copy()
    stage_table["stage"] = stage_table["stage"].astype(str)
    stage_table = stage_table.set_index("stage")
    for s in names:
        rec = stage_table.loc[s]
        rows.append(
            {"row": "stage", "stage": s, "item": s, "label": stage_labels[s], "value": float(rec["reach"]),
             "n": float(rec["users"])}
        )  # fmt: skip

    # (a) what customers do: top events by count
    counts = (
        pd.DataFrame({"stage": stage_of_row.astype(object), "event": frame["event"]})
        .dropna()
        .value_counts()
        .loc[lambda n: n > 0]  # a categorical column counts its absent categories as zeros
        .rename("count")
        .reset_index()
    )
    for s in names:
        part = counts.loc[counts["stage"] == s].sort_values(
            ["count", "event"], ascending=[False, True]
        )
        total = float(part["count"].sum())
        if part.empty:
            rows.append(_empty_row("events", s, f"no events in {period.label}"))
            continue
        for rec in part.head(top_events).itertuples(index=False):
            rows.append(
                {"row": "events", "stage": s, "item": rec.event, "label": label(rec.event),
                 "value": float(rec.count), "n": total}
            )  # fmt: skip

    # (b) touchpoints and channels: share of the stage's touches that carry a channel
    if channel_column is None:
        row_notes["channels"] = "no channel column chosen (channel_column=None)"
    elif channel_column not in frame.columns:
        if channel_column != "channel":
            raise SchemaError(
                f"channel_column {channel_column!r} is not a column of the events"
                f"{did_you_mean(channel_column, [str(c) for c in events.columns])}.",
                source="events",
                column=channel_column,
                hint="name the column that holds each touch's channel, or pass channel_column=None.",
            )
        row_notes["channels"] = "the events have no 'channel' column"
    else:
        touches = pd.DataFrame(
            {"stage": stage_of_row.astype(object), "channel": frame[channel_column]}
        )
        touches = touches.loc[touches["stage"].notna()]
        per_stage = touches.groupby("stage")["channel"].agg(["size", "count"])
        shares = touches.dropna().value_counts().loc[lambda n: n > 0]
        shares = shares.rename("touches").reset_index()
        untracked = []
        for s in names:
            n_all = int(per_stage["size"].get(s, 0))
            n_with = int(per_stage["count"].get(s, 0))
            if n_all == 0:
                rows.append(_empty_row("channels", s, f"no touches in {period.label}"))
                continue
            if n_with == 0:
                rows.append(_empty_row("channels", s, "no channel recorded"))
                untracked.append((s, 1.0))
                continue
            if n_with < n_all:
                untracked.append((s, 1 - n_with / n_all))
            part = shares.loc[shares["stage"] == s].sort_values(
                ["touches", "channel"], ascending=[False, True]
            )
            for rec in part.head(top_channels).itertuples(index=False):
                rows.append(
                    {"row": "channels", "stage": s, "item": rec.channel, "label": label(rec.channel),
                     "value": rec.touches / n_with, "n": float(n_with)}
                )  # fmt: skip
        partial = [(s, share) for s, share in untracked if share < 1]
        if partial:
            notes.append(
                "Channel shares are of the touches that carry a channel; without one: "
                + ", ".join(
                    f"{fmt_pct(share, 0)} of {stage_labels[s].lower()}" for s, share in partial
                )
                + "."
            )

    # (c) KPIs with change against the previous period
    kpis = jm.kpi_frame()
    kpis = kpis.loc[kpis["segment"] == ALL_USERS].reset_index(drop=True)
    now = kpi_moments(frame, stage_map).set_index("kpi") if len(kpis) else None
    del frame, stage_of_row  # the previous period is copied after this one is let go
    if now is not None:
        kpis["sum_sq"] = kpis["kpi"].map(now["sum_sq"]).to_numpy()
        if jm.previous is not None:
            before = kpi_moments(in_period(events, jm.previous, read), stage_map).set_index("kpi")
            test = kpi_change_test(
                kpis["value"],
                kpis["sum_sq"],
                kpis["previous"],
                kpis["kpi"].map(before["sum_sq"]),
                alpha,
            )
            kpis = pd.concat([kpis, test[["change_ci_low", "change_ci_high", "p_value"]]], axis=1)
            kpis["change"] = test["change"].to_numpy()
    for s in names:
        part = kpis.loc[kpis["stage"].astype(str) == s]
        if part.empty:
            rows.append(_empty_row("kpis", s, "no KPI defined for this stage in the stage map"))
            continue
        for rec in part.to_dict("records"):
            out = {"row": "kpis", "stage": s, "item": rec["kpi"], "value": float(rec["value"]),
                   "label": labels.get(rec["kpi"], rec["label"]), "measure": rec["measure"]}  # fmt: skip
            if jm.previous is not None:
                out.update(
                    previous=float(rec["previous"]), change=rec["change"], change_ci_low=rec["change_ci_low"],
                    change_ci_high=rec["change_ci_high"], p_value=rec["p_value"],
                    significant=bool(rec["p_value"] < alpha) if pd.notna(rec["change"]) else False,
                )  # fmt: skip
            rows.append(out)

    # (d) purchase journey: conversion to the next stage
    for k, s in enumerate(names):
        rec = stage_table.loc[s]
        if k == len(names) - 1:
            rows.append(_empty_row("conversion", s, "last stage"))
            continue
        if rec["users"] == 0:
            rows.append(
                _empty_row("conversion", s, f"no users reached this stage in {period.label}")
            )
            continue
        out = {"row": "conversion", "stage": s, "item": names[k + 1], "label": stage_labels[names[k + 1]],
               "value": float(rec["conversion"]), "ci_low": float(rec["conversion_ci_low"]),
               "ci_high": float(rec["conversion_ci_high"]), "n": float(rec["users"])}  # fmt: skip
        if jm.previous is not None and "conversion_change" in stage_table:
            out.update(
                previous=rec["conversion_previous"], change=rec["conversion_change"],
                change_ci_low=rec["conversion_change_ci_low"], change_ci_high=rec["conversion_change_ci_high"],
                p_value=rec["p_value"],
                significant=bool(rec["p_value"] < alpha) if pd.notna(rec["p_value"]) else False,
            )  # fmt: skip
        rows.append(out)

    # (e) experience journey: the emotion curve
    metric = None
    if feedback is None:
        row_notes["emotion"] = "no feedback data"
    else:
        emotion_rows, metric, emotion_notes = _emotion_rows(
            feedback, stage_map, period, emotion, alpha=alpha
        )
        rows += emotion_rows
        notes += emotion_notes
        if metric is None:
            row_notes["emotion"] = emotion_notes[0] if emotion_notes else "no feedback data"

    # (f) pain points and (g) the opportunity each suggests
    if pains is None:
        row_notes["pains"] = "no pain-point data"
        row_notes["opportunities"] = "no pain-point data"
    else:
        pain_table = _pain_table(pains, stage_map, labels, currency)
        for s in names:
            part = pain_table.loc[pain_table["stage"] == s].sort_values(
                "value_at_stake", ascending=False, kind="stable"
            )
            if part.empty:
                rows.append(_empty_row("pains", s, "no sized pain point"))
                rows.append(_empty_row("opportunities", s, "–"))
                continue
            for rank, rec in enumerate(part.head(pains_per_stage).to_dict("records"), 1):
                rows.append(
                    {"row": "pains", "stage": s, "item": rank, "label": rec["title"],
                     "value": float(rec["value_at_stake"]), "ci_low": rec.get("value_at_stake_ci_low", np.nan),
                     "ci_high": rec.get("value_at_stake_ci_high", np.nan), "n": rec.get("reached", np.nan)}
                )  # fmt: skip
                rows.append(
                    {"row": "opportunities", "stage": s, "item": rank, "label": rec["opportunity"]}
                )

    cells = pd.DataFrame(rows)
    for col in FRAME_COLUMNS + ["measure"]:
        if col not in cells:
            cells[col] = np.nan
    cells = cells[FRAME_COLUMNS + ["measure"]]
    order = {r: i for i, r in enumerate(("stage",) + CANVAS_ROWS)}
    cells["_row"] = cells["row"].map(order)
    cells["_stage"] = cells["stage"].map({s: i for i, s in enumerate(names)})
    cells = cells.sort_values(["_row", "_stage"], kind="stable").drop(columns=["_row", "_stage"])
    cells["significant"] = (
        cells["significant"].astype(object).where(cells["significant"].notna(), None)
    )
    return {
        "cells": cells.reset_index(drop=True),
        "stage_labels": stage_labels,
        "metric": metric,
        "row_notes": row_notes,
        "notes": notes,
    }


def _emotion_rows(
    feedback: pd.DataFrame, stage_map: StageMap, period: Period, emotion: str, *, alpha: float
) -> tuple[list[dict[str, Any]], str | None, list[str]]:
    """Rows of the experience journey from the feedback answered in the period."""
    from journeylab.voice.emotion import emotion_curve

    if not isinstance(feedback, pd.DataFrame):
        raise ParameterError(f"feedback must be a pandas DataFrame, not {type(feedback).__name__}.")
    fb = feedback
    if "stage" not in fb.columns:
        if "touchpoint" not in fb.columns:
            require_columns(fb, ["stage"], what="feedback")
        # Answers tied to a touchpoint (an event name) belong to that event's stage.
        fb = fb.assign(
            stage=fb["touchpoint"].map(
                lambda t: stage_map.stage_of(str(t)) if pd.notna(t) else None
            )
        )
    if "timestamp" in fb.columns:
        ts = pd.to_datetime(fb["timestamp"], utc=True, errors="coerce")
        fb = fb.loc[(ts >= period.start) & (ts < period.end)]
    notes: list[str] = []
    if fb.empty:
        return [], None, [f"no feedback answered in {period.label}"]
    known = fb["stage"].astype("string").isin(stage_map.names)
    if not known.any():
        present = sorted(fb["stage"].dropna().astype(str).unique())
        first = present[0] if present else ""
        raise SchemaError(
            f"No feedback answer names a stage of the stage map; stages in the feedback: {present[:8]}"
            f"{did_you_mean(first, stage_map.names) if first else ''}.",
            source="feedback",
            column="stage",
            rows=list(np.flatnonzero(fb["stage"].notna().to_numpy())[:5] + 1),
            hint=f"write the stage names of the map ({stage_map.names}) in the feedback's stage column.",
        )
    if (~known).any():
        notes.append(
            f"{int((~known).sum()):,} feedback answers name no stage of the map and are left out."
        )
        fb = fb.loc[known]
    curve = emotion_curve(fb, stage_map, alpha=alpha).to_frame()
    curve["stage"] = curve["stage"].astype(str)
    has_nps = curve["nps"].notna().any()
    has_sentiment = curve["mean_sentiment"].notna().any()
    if emotion == "nps" and not has_nps:
        return [], None, [f"no NPS answers in {period.label}"]
    if emotion == "sentiment" and not has_sentiment:
        return [], None, [f"no comment text in {period.label}"]
    metric = "nps" if emotion == "nps" or (emotion == "auto" and has_nps) else "sentiment"
    if metric == "sentiment" and not has_sentiment:
        return [], None, [f"no NPS answers or comments in {period.label}"]
    cols = {"nps": ("nps", "nps_ci_low", "nps_ci_high", "nps_answers"),
            "sentiment": ("mean_sentiment", "sentiment_ci_low", "sentiment_ci_high", "comments")}[metric]  # fmt: skip
    curve = curve.set_index("stage")
    rows = []
    for s in stage_map.names:
        if s not in curve.index or pd.isna(curve.at[s, cols[0]]):
            rows.append(_empty_row("emotion", s, "no answers at this stage"))
            continue
        rows.append(
            {"row": "emotion", "stage": s, "item": metric, "label": "NPS" if metric == "nps" else "mean sentiment",
             "value": float(curve.at[s, cols[0]]), "ci_low": float(curve.at[s, cols[1]]),
             "ci_high": float(curve.at[s, cols[2]]), "n": float(curve.at[s, cols[3]])}
        )  # fmt: skip
    return rows, metric, notes


def _pain_table(
    pains: Any, stage_map: StageMap, labels: Mapping[str, str], currency: str
) -> pd.DataFrame:
    """Pain points as (stage, title, value_at_stake, opportunity), from a pain_points result or a table."""
    from journeylab.maps.pains import PainPointsResult

    if isinstance(pains, PainPointsResult):
        return _from_pain_points(pains, stage_map, labels)
    if not isinstance(pains, pd.DataFrame):
        raise ParameterError(
            "pains must be a journeylab.maps.pain_points result or a DataFrame with columns "
            f"{list(PAIN_COLUMNS)}, not {type(pains).__name__}."
        )
    require_columns(pains, PAIN_COLUMNS, what="pains")
    table = pains.reset_index(drop=True)
    stage = table["stage"].astype("string")
    unknown = ~stage.isin(stage_map.names)
    if unknown.any():
        first = str(stage[unknown].iloc[0])
        raise SchemaError(
            f"Pain point stage {first!r} is not a stage of the stage map{did_you_mean(first, stage_map.names)}.",
            source="pains",
            column="stage",
            rows=list(np.flatnonzero(unknown.to_numpy()) + 1),
            hint=f"use one of the stage names {stage_map.names}.",
        )
    value = pd.to_numeric(table["value_at_stake"], errors="coerce")
    bad = value.isna() | (value < 0) | ~np.isfinite(value.fillna(0))
    if bad.any():
        raise DataError(
            "Pain point values at stake must be numbers >= 0.",
            source="pains",
            column="value_at_stake",
            rows=list(np.flatnonzero(bad.to_numpy()) + 1),
            hint="write each value at stake as a plain number of money per period, without the currency sign.",
        )
    for column in ("title", "opportunity"):
        blank = table[column].isna() | (table[column].astype("string").str.strip() == "")
        if blank.any():
            raise DataError(
                f"Every pain point needs a {column}.",
                source="pains",
                column=column,
                rows=list(np.flatnonzero(blank.to_numpy()) + 1),
                hint=f"write a short {column} in each row, or drop the row.",
            )
    out = pd.DataFrame(
        {"stage": stage.astype(str), "title": table["title"].astype(str),
         "value_at_stake": value.astype(float), "opportunity": table["opportunity"].astype(str)}
    )  # fmt: skip
    for extra in ("value_at_stake_ci_low", "value_at_stake_ci_high", "reached"):
        if extra in table:
            out[extra] = pd.to_numeric(table[extra], errors="coerce").to_numpy()
    return out


def _from_pain_points(pains: Any, stage_map: StageMap, labels: Mapping[str, str]) -> pd.DataFrame:
    """One row per sized pain point whose gap interval excludes zero, placed at the stage its step starts in."""
    top = pains.top(len(pains.table), clear=True)
    rows = []
    for rec in top.to_dict("records"):
        start, _, finish = str(rec["step"]).partition(" → ")
        stage = start if start in stage_map.names else stage_map.stage_of(start)
        if stage is None:
            continue
        if rec["dimension"] == "all users":
            title = "All users"
        else:
            title = f"{display_label(rec['dimension'], labels)}: {display_label(rec['segment'], labels)}"
        if pains.benchmark == "best_segment":
            bench = f"as for {display_label(rec['benchmark'], labels)}"
        else:
            bench = f"as in {rec['benchmark']}"
        opportunity = (
            f"Lift {display_label(start, labels)} → {display_label(finish, labels)} "
            f"from {fmt_pct(rec['conversion'], 0)} to {fmt_pct(rec['benchmark_conversion'], 0)}, {bench}"
        )
        rows.append(
            {"stage": stage, "title": title, "value_at_stake": float(rec["value_at_stake"]),
             "opportunity": opportunity, "value_at_stake_ci_low": rec["value_at_stake_ci_low"],
             "value_at_stake_ci_high": rec["value_at_stake_ci_high"], "reached": float(rec["reached"])}
        )  # fmt: skip
    return pd.DataFrame(
        rows,
        columns=["stage", "title", "value_at_stake", "opportunity", "value_at_stake_ci_low",
                 "value_at_stake_ci_high", "reached"],
    )  # fmt: skip
