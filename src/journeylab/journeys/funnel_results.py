"""The funnel's result: its table, summary, display table and figures."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from journeylab.core.project import display_label
from journeylab.core.results import Result, fmt_ci, fmt_pct, suppression_note
from journeylab.core.safe_text import mpl
from journeylab.core.viz import PALETTE, new_axes, percent_axis
from journeylab.journeys.funnel_counts import _fmt_duration

__all__ = ["FunnelResult"]


@dataclass(repr=False, eq=False)
class FunnelResult(Result):
    """Per-step counts, conversion rates with Wilson intervals, drop-off and time to convert.

    ``to_frame()`` has one row per (segment, step): ``segment`` ("all" without
    segments), ``step`` (1-based), ``label``, ``entrants``,
    ``conversion_from_previous`` and ``conversion_from_first`` with
    ``*_ci_low``/``*_ci_high``, ``drop_off`` (units lost since the previous
    step) and ``time_q25``/``time_median``/``time_q75`` (Timedelta, from the
    previous step; from the first step with ``order="any"``). ``notes`` says
    what the data did not allow (a segment with one value: no comparison).
    ``with_labels(project.labels)`` (or ``with_labels(project)``) shows the steps
    by their project labels in the summary, the table and the figures.
    """

    table: pd.DataFrame
    settings: dict[str, Any]
    left_out: dict[str, int] = field(default_factory=dict)
    confidence: float = 0.95
    suppressed_segments: int = 0
    notes: list[str] = field(default_factory=list)
    title: str = "Funnel"
    #: event/step name -> reader-facing label (None: names as given)
    labels: dict[str, str] | None = None

    def with_labels(self, labels: Mapping[str, str] | Any) -> FunnelResult:
        """Return the result showing steps by their labels (a mapping, or a project's ``labels``).

        Examples
        --------
        >>> res = FunnelResult(table=pd.DataFrame(), settings={"steps": ["add_to_cart"]})
        >>> res.with_labels({"add_to_cart": "Added to cart"})._shown("add_to_cart")
        'Added to cart'
        """
        labels = getattr(labels, "labels", labels)
        return replace(self, labels={str(k): str(v) for k, v in dict(labels or {}).items()})

    def _shown(self, step: Any) -> str:
        return str(step) if self.labels is None else display_label(step, self.labels)

    def to_frame(self) -> pd.DataFrame:
        """Return the per-step table."""
        return self.table

    @property
    def segments(self) -> list[str]:
        """Segment values, in table order."""
        return list(dict.fromkeys(self.table["segment"]))

    def summary(self) -> str:
        """Describe overall conversion, the biggest drop and segment differences."""
        t = self.table
        steps = [self._shown(s) for s in self.settings["steps"]]
        unit = "users" if self.settings["grain"] == "user" else "sessions"
        lines = []
        for seg in self.segments:
            s = t[t["segment"] == seg].reset_index(drop=True)
            n0, n_last = int(s["entrants"].iloc[0]), int(s["entrants"].iloc[-1])
            prefix = "" if seg == "all" else f"{seg}: "
            if n0 == 0:
                lines.append(f"{prefix}no {unit} entered the funnel at '{steps[0]}'.")
                continue
            last = s.iloc[-1]
            worst = s.iloc[1:].sort_values(["conversion_from_previous", "step"]).iloc[0]
            lines.append(
                f"{prefix}{n0:,} {unit} did '{steps[0]}'; {n_last:,} reached '{steps[-1]}' "
                f"({fmt_pct(last['conversion_from_first'])} "
                f"{fmt_ci(last['from_first_ci_low'], last['from_first_ci_high'], fmt_pct)}). "
                f"Biggest drop: '{steps[int(worst['step']) - 2]}' → '{self._shown(worst['label'])}' keeps "
                f"{fmt_pct(worst['conversion_from_previous'])} "
                f"{fmt_ci(worst['from_previous_ci_low'], worst['from_previous_ci_high'], fmt_pct)}, "
                f"losing {int(worst['drop_off']):,}."
            )
        ci = f"{self.confidence:.0%}"
        lines.append(
            f"Window {self.settings['window']} from entry, {self.settings['order']} order; "
            f"intervals are {ci} Wilson intervals."
        )
        if self.left_out.get("events_without_session"):
            lines.append(
                f"{self.left_out['events_without_session']:,} step events without a session id were left out."
            )
        if self.suppressed_segments:
            lines.append(suppression_note(self.suppressed_segments, self.settings["min_users"]))
        lines += self.notes
        return "\n".join(lines)

    def display_frame(self) -> pd.DataFrame:
        """Return the table with rates, intervals and times formatted for reading."""
        t = self.table
        out = pd.DataFrame(
            {
                "step": t["label"].map(self._shown),
                "entrants": t["entrants"].map(lambda n: f"{n:,}"),
                "from previous": [
                    f"{fmt_pct(r)} {fmt_ci(lo, hi, fmt_pct)}"
                    for r, lo, hi in zip(
                        t["conversion_from_previous"],
                        t["from_previous_ci_low"],
                        t["from_previous_ci_high"],
                        strict=True,
                    )
                ],
                "from first": [
                    f"{fmt_pct(r)} {fmt_ci(lo, hi, fmt_pct)}"
                    for r, lo, hi in zip(
                        t["conversion_from_first"],
                        t["from_first_ci_low"],
                        t["from_first_ci_high"],
                        strict=True,
                    )
                ],
                "drop-off": t["drop_off"].map(lambda n: f"{n:,}"),
                "median time": t["time_median"].map(_fmt_duration),
            }
        )
        if len(self.segments) > 1 or self.suppressed_segments:
            out.insert(0, "segment", t["segment"])
        return out

    def plot(self, ax=None):
        """Draw a horizontal funnel: share of entrants reaching each step, with intervals."""
        t = self.table
        steps = self.settings["steps"]
        segs = self.segments
        if not segs:
            return _nothing_shown(new_axes(ax, figsize=(9, 3)), self.settings["min_users"])
        ax = new_axes(ax, figsize=(9, 1.0 + 0.9 * len(steps) * max(1, len(segs) * 0.6)))
        height = 0.8 / len(segs)
        for j, seg in enumerate(segs):
            s = t[t["segment"] == seg]
            y = np.arange(len(steps)) + (j - (len(segs) - 1) / 2) * height
            rate = s["conversion_from_first"].to_numpy(dtype=float)
            err = np.vstack(
                [
                    rate - s["from_first_ci_low"].to_numpy(dtype=float),
                    s["from_first_ci_high"].to_numpy(dtype=float) - rate,
                ]
            )
            err = np.clip(np.nan_to_num(err), 0, None)  # rounding can leave -1e-17
            colour = PALETTE[0] if len(segs) == 1 else PALETTE[j % len(PALETTE)]
            label = None if len(segs) == 1 and not self.suppressed_segments else mpl(seg)
            ax.barh(
                y, np.nan_to_num(rate), height=height * 0.9, color=colour, alpha=0.85, label=label
            )
            ax.errorbar(
                np.nan_to_num(rate), y, xerr=err, fmt="none", ecolor="#333333", capsize=3, lw=1
            )
            for yi, (r, hi, n, prev) in enumerate(
                zip(
                    rate,
                    s["from_first_ci_high"],
                    s["entrants"],
                    s["conversion_from_previous"],
                    strict=True,
                )
            ):
                text = f"{fmt_pct(r)} ({n:,})"
                if yi > 0:
                    text += f"  · {fmt_pct(prev)} of previous"
                ax.text(
                    np.nan_to_num(max(r, hi if not np.isnan(hi) else r)) + 0.01,
                    y[yi],
                    text,
                    va="center",
                    fontsize=9,
                )
        ax.set_yticks(np.arange(len(steps)))
        ax.set_yticklabels([mpl(self._shown(step)) for step in steps])
        ax.invert_yaxis()
        ax.set_xlim(0, 1.45)
        ax.set_xticks(np.linspace(0, 1, 6))
        percent_axis(ax, "x")
        ax.set_xlabel(
            f"share of entrants reaching the step ({self.confidence:.0%} Wilson interval)"
        )
        unit = "users" if self.settings["grain"] == "user" else "sessions"
        ax.set_title(f"Funnel ({unit}, window {self.settings['window']})")
        ax.grid(axis="y", visible=False)
        if len(segs) > 1 or self.suppressed_segments:
            ax.legend(title=mpl(self.settings["segment"]), loc="lower right")
        return ax

    def plot_time_to_convert(self, ax=None):
        """Draw the median and interquartile range of the time to convert per step (log time axis)."""
        t = self.table[self.table["step"] > 1]
        segs = self.segments
        steps = self.settings["steps"]
        if not segs:
            return _nothing_shown(new_axes(ax, figsize=(9, 3)), self.settings["min_users"])
        ax = new_axes(ax, figsize=(9, 1.2 + 0.8 * (len(steps) - 1) * max(1, len(segs) * 0.6)))
        height = 0.8 / len(segs)
        strict = self.settings["order"] == "strict"
        named = [self._shown(step) for step in steps]
        labels = [
            mpl(f"{named[i - 1]} → {named[i]}" if strict else f"→ {named[i]}")
            for i in range(1, len(steps))
        ]
        lows, highs = [], []
        for j, seg in enumerate(segs):
            s = t[t["segment"] == seg]
            y = np.arange(len(steps) - 1) + (j - (len(segs) - 1) / 2) * height
            q25, med, q75 = (
                s[c].dt.total_seconds().to_numpy(dtype=float)
                for c in ("time_q25", "time_median", "time_q75")
            )
            q25 = np.maximum(q25, 1.0)  # log axis: sub-second spans drawn at 1 s
            colour = PALETTE[0] if len(segs) == 1 else PALETTE[j % len(PALETTE)]
            ax.hlines(y, q25, np.maximum(q75, q25), color=colour, lw=7, alpha=0.45)
            ax.plot(
                np.maximum(med, 1.0),
                y,
                "o",
                color=colour,
                ms=7,
                label=None if len(segs) == 1 else mpl(seg),
            )
            for yi, m in enumerate(med):
                if not np.isnan(m):
                    ax.annotate(
                        f"median {_fmt_duration(pd.Timedelta(seconds=m))}",
                        (max(q75[yi], m, 1.0), y[yi]),
                        xytext=(6, 0),
                        textcoords="offset points",
                        va="center",
                        fontsize=9,
                    )
            lows.append(np.nanmin(q25) if np.isfinite(q25).any() else np.nan)
            highs.append(np.nanmax(q75) if np.isfinite(q75).any() else np.nan)
        ax.set_xscale("log")
        lo = np.nanmin(lows) if np.isfinite(lows).any() else 60.0
        hi = np.nanmax(highs) if np.isfinite(highs).any() else 86400.0
        ticks = [
            (1, "1 s"),
            (10, "10 s"),
            (60, "1 min"),
            (600, "10 min"),
            (3600, "1 h"),
            (6 * 3600, "6 h"),
            (86400, "1 day"),
            (7 * 86400, "1 week"),
            (30 * 86400, "30 days"),
            (365 * 86400, "1 year"),
        ]
        shown = [(v, text) for v, text in ticks if lo / 3 <= v <= hi * 6] or ticks[2:7]
        ax.set_xticks([v for v, _ in shown], [text for _, text in shown])
        ax.minorticks_off()
        ax.set_xlim(min(lo / 2, shown[0][0]), max(hi * 8, shown[-1][0]))
        ax.set_yticks(np.arange(len(steps) - 1))
        ax.set_yticklabels(labels)
        ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
        ref = "previous step" if strict else "first step"
        ax.set_xlabel(f"time from the {ref} (log scale); bar = quartiles, dot = median")
        ax.set_title("Time to convert")
        if len(segs) > 1:
            ax.legend(title=mpl(self.settings["segment"]), loc="lower right")
        return ax


def _nothing_shown(ax, min_users: int):
    ax.set_axis_off()
    ax.set_title(f"No segment has {min_users:,} users or more: nothing to show")
    return ax
