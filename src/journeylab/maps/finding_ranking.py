"""Testing, ranking and wording the rows of a findings pass (see :mod:`journeylab.maps.findings`).

Every candidate row is tested as two proportions (one family: Benjamini-Hochberg
q-values), sized by its value at stake, ranked with overlaps marked, and
written as one sentence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

from journeylab.core.project import display_label
from journeylab.core.results import fmt_ci, fmt_money, fmt_num, fmt_pct, fmt_pp
from journeylab.maps.finding_steps import DAY_OF_WEEK, HOUR_OF_DAY, _Step
from journeylab.maps.periods import Period
from journeylab.maps.progress import two_proportion


def _test(table: pd.DataFrame, *, alpha: float, fdr: float, min_users: int) -> pd.DataFrame:
    table["value"] = table["made"] / table["reached"].where(table["reached"] > 0)
    table["benchmark"] = table["benchmark_made"] / table["benchmark_reached"].where(
        table["benchmark_reached"] > 0
    )
    gap = two_proportion(
        table["benchmark_made"], table["benchmark_reached"], table["made"], table["reached"], alpha
    )
    # difference = value − benchmark (negative: the segment or the month does worse)
    table["difference"] = -gap["diff"].to_numpy()
    table["difference_ci_low"] = -gap["diff_ci_high"].to_numpy()
    table["difference_ci_high"] = -gap["diff_ci_low"].to_numpy()
    table["p_value"] = gap["p_value"].to_numpy()
    tested = (
        (table["reached"] >= min_users)
        & (table["benchmark_reached"] >= min_users)
        & table["p_value"].notna()
    )
    table["tested"] = tested
    table["q_value"] = np.nan
    if tested.any():
        table.loc[tested, "q_value"] = multipletests(
            table.loc[tested, "p_value"], alpha=fdr, method="fdr_bh"
        )[1]
    table["is_finding"] = tested & (table["q_value"] < fdr) & (table["difference"] < 0)
    loss = np.clip(-table["difference"], 0, None)
    loss_low = np.clip(-table["difference_ci_high"], 0, None)
    loss_high = np.clip(-table["difference_ci_low"], 0, None)
    table["value_at_stake"] = table["reached"] * loss * table["value_per_success"]
    table["value_at_stake_ci_low"] = table["reached"] * loss_low * table["value_per_success"]
    table["value_at_stake_ci_high"] = table["reached"] * loss_high * table["value_per_success"]
    table["id"] = [
        _slug(
            f"{r.kind}:{r.step_from}→{r.step_to}:{r.dimension}={r.segment if r.kind != 'change_vs_previous' else ''}"
        )
        for r in table.itertuples()
    ]
    return table


def _rank(table: pd.DataFrame) -> pd.DataFrame:
    table = table.sort_values(
        ["is_finding", "value_at_stake", "reached"], ascending=[False, False, False], kind="stable"
    ).reset_index(drop=True)
    table["counted"] = False
    table["overlaps"] = None
    lead: dict[tuple[str, str], str] = {}
    for i, row in table.loc[table["is_finding"]].iterrows():
        key = (
            (row["dimension"], row["segment"])
            if row["kind"] != "change_vs_previous"
            else ("month", row["step"])
        )
        if key in lead:
            table.at[i, "overlaps"] = lead[key]
        else:
            lead[key] = row["id"]
            table.at[i, "counted"] = True
    table["rank"] = np.nan
    found = table["is_finding"]
    table.loc[found, "rank"] = np.arange(1, int(found.sum()) + 1)
    return table


def _slug(text: str) -> str:
    text = text.lower().strip()
    text = re.sub(r"\s+", "_", text)
    return re.sub(r"[^\w:→=.\-]", "", text)


def _step_label(step: Any, labels: Mapping[str, str]) -> str:
    a, b = (step.a, step.b) if isinstance(step, _Step) else (step.step_from, step.step_to)
    return f"{display_label(a, labels)} → {display_label(b, labels)}"


def _short(row: Any, labels: Mapping[str, str]) -> str:
    step = _step_label(row, labels)
    if row.kind == "change_vs_previous":
        return f"{step}: vs previous month"
    return f"{step}: {display_label(row.dimension, labels)} = {display_label(row.segment, labels)}"


def _text(
    row: Any, labels: Mapping[str, str], currency: str, period: Period, *, alpha: float
) -> str:
    step = _step_label(row, labels)
    level = f"{1 - alpha:.0%}"
    money = (
        f"{fmt_money(row.value_at_stake, currency)} a month "
        f"[{fmt_money(row.value_at_stake_ci_low, currency)}, {fmt_money(row.value_at_stake_ci_high, currency)}]"
    )
    diff = (
        f"{fmt_pp(row.difference)} {fmt_ci(row.difference_ci_low, row.difference_ci_high, fmt_pp)}"
    )
    if row.kind == "change_vs_previous":
        return (
            f"{step} fell to {fmt_pct(row.value)} in {period.label} from {fmt_pct(row.benchmark)} in "
            f"{row.benchmark_label} ({diff}, {level} interval; {fmt_num(row.reached)} users); "
            f"worth {money}."
        )
    who = _who(row.dimension, row.segment, labels)
    return (
        f"{who}: {step} at {fmt_pct(row.value)} vs {fmt_pct(row.benchmark)} for other users "
        f"({diff}; {fmt_num(row.reached)} users); closing the gap is worth {money}."
    )


def _who(dimension: str, segment: str, labels: Mapping[str, str]) -> str:
    if dimension == HOUR_OF_DAY:
        return f"Users entering between {segment}"
    if dimension == DAY_OF_WEEK:
        return f"Users entering on {segment}"
    return f"{display_label(segment, labels)} ({display_label(dimension, labels).lower()})"


def _plain(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else float(value)
    return value
