"""The journey map's result object: its tables, summary and figure."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from journeylab.core.errors import ParameterError
from journeylab.core.results import (
    Result,
    fmt_ci,
    fmt_num,
    fmt_p,
    fmt_pct,
    fmt_pp,
    suppression_note,
)
from journeylab.core.safe_text import mpl
from journeylab.maps.progress import fmt_count, fmt_duration

__all__ = [
    "JourneyMapResult",
]


class JourneyMapResult(Result):
    """Stage × KPI journey map for one period, optionally by segment and against the previous period.

    Attributes
    ----------
    stages : pandas.DataFrame
        One row per (segment, stage): ``users_in_period``, ``users``,
        ``reach``, ``reached_next``, ``conversion`` with Wilson
        ``conversion_ci_low``/``_high``, ``median_hours_in_stage``; with a
        comparison also ``users_previous``, ``conversion_previous``,
        ``conversion_change`` (Newcombe interval) and ``p_value``.
    kpis : pandas.DataFrame
        One row per (segment, KPI): ``value`` (and ``previous``, ``change``).
    period, previous : Period
        The period mapped and the one it is compared with.
    notes : list of str
        What the data did not allow (a segment with one value: no comparison).
    """

    title = "Journey map"

    def __init__(
        self,
        *,
        stages,
        kpis,
        period,
        previous,
        segment,
        stage_map,
        alpha,
        min_users=0,
        suppressed_segments=0,
        events=None,
        notes=(),
    ) -> None:
        self.stages = stages
        self.kpis = kpis
        self.period = period
        self.previous = previous
        self.segment = segment
        self.stage_map = stage_map
        self.alpha = alpha
        self.min_users = min_users
        self.suppressed_segments = suppressed_segments
        self._events = events  # the mapped log, kept for canvas(); not copied
        self.notes = list(notes)

    def to_frame(self) -> pd.DataFrame:
        """One row per (segment, stage) with users, conversion, intervals and comparison."""
        return self.stages.copy()

    def kpi_frame(self, wide: bool = False) -> pd.DataFrame:
        """Return the KPIs: tidy, or ``wide=True`` for stage·KPI rows × segment columns."""
        if not wide:
            return self.kpis.copy()
        table = self.kpis.pivot_table(
            index=["stage", "label"], columns="segment", values="value", observed=True, sort=False
        )
        return table.sort_index(level=0, sort_remaining=False)

    def display_frame(self) -> pd.DataFrame:
        """Return the stage table formatted for readers."""
        s = self.stages
        out = pd.DataFrame(
            {
                "segment": s["segment"],
                "stage": s["stage"].astype(str),
                "users": s["users"].map(fmt_count),
                "reach": s["reach"].map(fmt_pct),
                "to next stage": [
                    "–" if pd.isna(c) else f"{fmt_pct(c)} {fmt_ci(lo, hi, fmt_pct)}"
                    for c, lo, hi in zip(
                        s["conversion"],
                        s["conversion_ci_low"],
                        s["conversion_ci_high"],
                        strict=True,
                    )
                ],
                "median time in stage": s["median_hours_in_stage"].map(fmt_duration),
            }
        )
        if "conversion_change" in s:
            out["vs previous"] = [
                "–" if pd.isna(d) else f"{fmt_pp(d)} (p {fmt_p(p)})"
                for d, p in zip(s["conversion_change"], s["p_value"], strict=True)
            ]
        if self.segment is None:
            out = out.drop(columns="segment")
        return out

    def summary(self) -> str:
        """Reach and conversion per stage in words, with the notable changes."""
        s = self.stages
        lines = [
            f"Journey map, {self.period.label}"
            + (f", by {self.segment}" if self.segment else "")
            + "."
        ]
        for name, group in s.groupby("segment", sort=True, observed=True):
            prefix = "" if self.segment is None else f"{name}: "
            n = int(group["users_in_period"].iloc[0])
            parts = []
            for row in group.itertuples(index=False):
                if pd.isna(row.conversion):
                    continue
                parts.append(
                    f"{row.stage} → {row.next_stage} {fmt_pct(row.conversion)} "
                    f"{fmt_ci(row.conversion_ci_low, row.conversion_ci_high, fmt_pct)}"
                )
            lines.append(f"{prefix}{fmt_count(n)} users; " + "; ".join(parts) + ".")
        if "p_value" in s and self.previous is not None:
            if int(s["users_previous"].sum()) == 0:
                lines.append(
                    f"No events in the previous period ({self.previous.label}): no comparison."
                )
            else:
                notable = s.loc[s["p_value"] < self.alpha].sort_values("p_value")
                if notable.empty:
                    lines.append(
                        f"No stage conversion changed significantly against {self.previous.label} (α = {self.alpha})."
                    )
                for row in notable.head(5).itertuples(index=False):
                    who = "" if self.segment is None else f"{row.segment}: "
                    lines.append(
                        f"{who}{row.stage} → {row.next_stage} {fmt_pp(row.conversion_change)} "
                        f"{fmt_ci(row.conversion_change_ci_low, row.conversion_change_ci_high, fmt_pp)} "
                        f"against {self.previous.label} (p {fmt_p(row.p_value)})."
                    )
        if self.suppressed_segments:
            lines.append(suppression_note(self.suppressed_segments, self.min_users))
        lines += self.notes
        return "\n".join(lines)

    def plot(self, ax=None, kind: Literal["kpis", "conversion"] = "kpis"):
        """Heatmap: KPIs (rows) × segments or periods (``kind="kpis"``), or stage conversion × segments.

        Colours are scaled within each row (KPIs differ in units); the
        annotations are the values themselves.
        """
        import seaborn as sns

        from journeylab.core.viz import SEQUENTIAL, new_axes

        if kind not in ("kpis", "conversion"):
            raise ParameterError(f"kind == {kind!r}, must be one of ['kpis', 'conversion'].")
        if self.stages.empty:
            ax = new_axes(ax, figsize=(6, 2.5))
            ax.set_axis_off()
            ax.set_title(
                f"No segment has {self.min_users:,} users or more in {self.period.label}: nothing to show"
            )
            return ax
        if kind == "conversion":
            s = self.stages.loc[self.stages["next_stage"].notna()]
            if self.segment is None and "conversion_previous" in s:
                names = [f"previous ({self.previous.label})", self.period.label]
                index = s["stage"].astype(str)
                values = pd.DataFrame(
                    dict(
                        zip(
                            names,
                            [s["conversion_previous"].to_numpy(), s["conversion"].to_numpy()],
                            strict=True,
                        )
                    ),
                    index=index,
                )
                trials = pd.DataFrame(
                    dict(
                        zip(
                            names,
                            [s["users_previous"].to_numpy(), s["users"].to_numpy()],
                            strict=True,
                        )
                    ),
                    index=index,
                )
            else:
                table = s.assign(stage=s["stage"].astype(str))
                values = table.pivot(index="stage", columns="segment", values="conversion")
                trials = table.pivot(index="stage", columns="segment", values="users")
                order = list(dict.fromkeys(table["stage"]))
                values, trials = values.loc[order], trials.loc[order]
            following = dict(zip(s["stage"].astype(str), s["next_stage"], strict=False))
            values.index = trials.index = [f"{a} → {following[str(a)]}" for a in values.index]
            colour = values.fillna(0.0)
            # Show the base of each rate: a 50% from 2 users is not a 50% from 2,000.
            annot = pd.DataFrame(
                [
                    [
                        f"{fmt_pct(v)}\nn={fmt_count(n)}" if pd.notna(v) else "–"
                        for v, n in zip(vrow, nrow, strict=True)
                    ]
                    for vrow, nrow in zip(values.to_numpy(), trials.to_numpy(), strict=True)
                ],
                index=values.index,
                columns=values.columns,
            )
            title = "Stage-to-stage conversion"
        else:
            values = self.kpi_frame(wide=True)
            values.index = [f"{stage}: {label}" for stage, label in values.index]
            if self.segment is None and "previous" in self.kpis:
                k = self.kpis
                values = pd.DataFrame(
                    {
                        f"previous ({self.previous.label})": k["previous"].to_numpy(),
                        self.period.label: k["value"].to_numpy(),
                    },
                    index=[f"{s}: {lab}" for s, lab in zip(k["stage"], k["label"], strict=True)],
                )
            row_max = values.abs().max(axis=1).replace(0, np.nan)
            colour = values.div(row_max, axis=0).fillna(0.0)
            measure = {
                f"{a}: {b}": m
                for a, b, m in zip(
                    self.kpis["stage"], self.kpis["label"], self.kpis["measure"], strict=True
                )
            }
            is_count = [measure[name] in ("count", "users") for name in values.index]
            annot = pd.DataFrame(
                [
                    [fmt_count(v) if c else fmt_num(v) for v in row]
                    for row, c in zip(values.to_numpy(), is_count, strict=True)
                ],
                index=values.index, columns=values.columns,
            )  # fmt: skip
            title = "Journey map: KPIs"
        row_height = 0.75 if kind == "conversion" else 0.45
        ax = new_axes(
            ax, figsize=(max(5.0, 1.6 * values.shape[1] + 3.5), row_height * values.shape[0] + 1.6)
        )
        # Stage, KPI and segment names come from data or the project file: never mathtext.
        colour = colour.set_axis([mpl(i) for i in colour.index], axis=0)
        colour = colour.set_axis([mpl(c) for c in colour.columns], axis=1)
        sns.heatmap(
            colour.astype(float), annot=annot.to_numpy(), fmt="", cmap=SEQUENTIAL, cbar=False,
            linewidths=0.5, linecolor="white", ax=ax, vmin=0, vmax=1, annot_kws={"fontsize": 9},
        )  # fmt: skip
        ax.grid(False)
        ax.set_title(mpl(f"{title}, {self.period.label}"))
        ax.set_xlabel(mpl(self.segment or ""))
        ax.set_ylabel("")
        ax.tick_params(axis="x", rotation=0)
        ax.tick_params(axis="y", rotation=0)
        return ax
