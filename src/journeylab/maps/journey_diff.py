"""Journey differences: two segments or two periods compared step by step and edge by edge.

:func:`compare_journeys` contrasts group *a* with group *b* (two values of a
segment such as ``platform``, or two periods) on

- **reach**: share of the group's users who reach each stage;
- **step conversion**: among users who reached stage *k*, the share reaching
  stage *k + 1* afterwards (as in :func:`journeylab.maps.journey_maps.journey_map`);
- **edges**: first-order transition probabilities ``P(next = y | current = x)``
  between consecutive events (``level="event"``) or stages
  (``level="stage"``) of each user's sequence, with ``(start)`` and ``(end)``
  states and consecutive repeats collapsed.

Each difference ``a − b`` gets a pooled two-proportion z-test (statsmodels
``test_proportions_2indep(method="score", correction=False)``, i.e. R
``prop.test(correct=FALSE)``) and a Newcombe interval; all p-values together
are adjusted with Benjamini–Hochberg (statsmodels ``multipletests(method=
"fdr_bh")``). The summary names only the differences that survive FDR control.

The segment column and its two values are the caller's (there is no default
comparison); a column that does not exist, a value no user has, or a segment
with a single value is an error that says so.

Caveats, stated in the result: transitions of one user are not independent
(the edge tests treat them as if they were, so they are optimistic for heavy
users); two periods may share users; intervals are per comparison (not
FDR-adjusted).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

from journeylab.core.errors import (
    NotComputableError,
    ParameterError,
    check_in,
    check_range,
    require_names,
)
from journeylab.core.results import Result, fmt_ci, fmt_p, fmt_pct, fmt_pp
from journeylab.core.stages import StageMap
from journeylab.maps.journey_maps import stage_table
from journeylab.maps.periods import in_period, prepare_events, resolve_period, user_segment
from journeylab.maps.progress import fmt_count, two_proportion

__all__ = ["compare_journeys", "transition_counts", "JourneyDiffResult"]

START, END = "(start)", "(end)"


def transition_counts(
    frame: pd.DataFrame, states: pd.Series, collapse_repeats: bool = True
) -> pd.DataFrame:
    """Count first-order transitions ``from → to`` over each user's time-ordered states.

    Rows with a missing state are dropped; each user's sequence starts at
    ``(start)`` and ends at ``(end)``. Ties in time keep the input order.

    Returns columns ``from``, ``to``, ``count``.
    """
    keep = states.notna().to_numpy()
    seq = pd.DataFrame(
        {
            "user_id": frame["user_id"].to_numpy()[keep],
            "ts": frame["timestamp"].to_numpy()[keep],
            "state": states.to_numpy()[keep].astype(str),
        }
    )
    if seq.empty:
        return pd.DataFrame(columns=["from", "to", "count"])
    seq = seq.sort_values(["user_id", "ts"], kind="stable")
    user = seq["user_id"].to_numpy()
    state = seq["state"].to_numpy(dtype=object)
    new_user = np.r_[True, user[1:] != user[:-1]]
    if collapse_repeats:
        keep = new_user | np.r_[True, state[1:] != state[:-1]]
        user, state, new_user = user[keep], state[keep], new_user[keep]
    last_of_user = np.r_[new_user[1:], True]
    prev = np.where(new_user, START, np.concatenate([[START], state[:-1]]))
    n_end = int(last_of_user.sum())
    pairs = pd.DataFrame(
        {
            "from": np.concatenate([prev, state[last_of_user]]),
            "to": np.concatenate([state, np.full(n_end, END, dtype=object)]),
        }
    )
    return pairs.value_counts(["from", "to"], sort=False).rename("count").reset_index()


def _edges(
    frame: pd.DataFrame, level: str, stage_map: StageMap, collapse_repeats: bool
) -> pd.DataFrame:
    states = (
        stage_map.assign(frame).astype(object)
        if level == "stage"
        else frame["event"].astype(object)
    )
    counts = transition_counts(frame, states, collapse_repeats)
    counts["out_of"] = counts.groupby("from")["count"].transform("sum")
    return counts


def compare_journeys(
    events: pd.DataFrame,
    stage_map: StageMap | Mapping | str | None = None,
    *,
    by: str | pd.Series | None = None,
    a: Any = None,
    b: Any = None,
    periods: Sequence[tuple[Any, Any]] | None = None,
    month: str | None = None,
    start: Any = None,
    end: Any = None,
    level: Literal["stage", "event"] = "event",
    users: pd.DataFrame | None = None,
    alpha: float = 0.05,
    min_count: int = 5,
    collapse_repeats: bool = True,
    project: Any = None,
) -> JourneyDiffResult:
    """Compare the journeys of two segments (or two periods) with FDR-controlled tests.

    Parameters
    ----------
    events : pandas.DataFrame
        Canonical event log.
    stage_map : StageMap, dict or YAML path
        Stages for reach and step conversion (and ``level="stage"`` edges);
        required, unless ``project`` gives them.
    by, a, b
        Compare users whose segment ``by`` (a column of the events or of
        ``users``, or a Series user → segment) equals ``a`` with those equal
        to ``b``. Required unless ``periods`` is given.
    periods : ((start, end), (start, end)), optional
        Compare two periods instead: differences are second − first (the
        change), so ``a`` is the second period and ``b`` the first.
    month, start, end
        The period of a segment comparison (default all data).
    level : {"event", "stage"}
        States of the transition edges.
    alpha : float
        FDR level (Benjamini–Hochberg) and 1 − confidence of the intervals.
    min_count : int
        Edges with fewer transitions than this in both groups together are not tested.
    collapse_repeats : bool
        Merge consecutive identical states before counting transitions.
    project : Project, optional
        The project file, whose ``stage_map`` is used when ``stage_map`` is None.

    Returns
    -------
    JourneyDiffResult

    Raises
    ------
    UnknownNameError
        ``by`` is not a column, or ``a``/``b`` is a value no user has in the period.
    NotComputableError
        The segment has a single value in the period, or a group has no events.

    Examples
    --------
    >>> import pandas as pd
    >>> stages = {"stages": [{"name": "visit", "events": ["home", "product"]},
    ...                      {"name": "cart", "events": ["cart"]},
    ...                      {"name": "purchase", "events": ["buy"]}]}
    >>> def journey(i):  # app users (odd i) buy one time in two, web users one in four
    ...     steps = ["home", "product", "cart"] + (["buy"] if i % 4 == 1 or i % 8 == 0 else [])
    ...     return [(f"u{i:02d}", pd.Timestamp("2026-10-01") + pd.Timedelta(hours=5 * i + k),
    ...              step, "app" if i % 2 else "web") for k, step in enumerate(steps)]
    >>> events = pd.DataFrame([row for i in range(40) for row in journey(i)],
    ...                       columns=["user_id", "timestamp", "event", "platform"])
    >>> diff = compare_journeys(events, stages, by="platform", a="app", b="web", month="2026-10")
    >>> cols = ["kind", "item", "count_a", "n_a", "count_b", "n_b"]
    >>> print(diff.to_frame().loc[[0], cols].to_string(index=False))
     kind     item  count_a  n_a  count_b  n_b
    reach purchase       10   20        5   20
    >>> print(diff.summary().splitlines()[1])
    No difference survives FDR control (smallest adjusted p 0.282).

    Two periods instead of two segments: the same users a month later, none of them
    buying; differences are second period − first.

    >>> later = events.assign(timestamp=events["timestamp"] + pd.Timedelta(days=31))
    >>> both = pd.concat([events, later[later["event"] != "buy"]], ignore_index=True)
    >>> by_month = compare_journeys(both, stages, periods=(("2026-10-01", "2026-11-01"),
    ...                                                    ("2026-11-01", "2026-12-01")))
    >>> print(by_month.summary().splitlines()[2])
    - reach of purchase: 0.0% vs 37.5% (-37.5 pp [-53.0 pp, -21.6 pp], adjusted p < 0.0001)
    """
    check_in("level", level, ["event", "stage"])
    check_range("alpha", alpha, low=0, high=1)
    if periods is None and (by is None or a is None or b is None):
        raise ParameterError(
            "Say what to compare: a segment and two of its values (by='platform', a='app', b='web'), "
            "or two periods (periods=((start, end), (start, end)))."
        )
    events = prepare_events(events)
    if stage_map is None and project is not None:
        stage_map = project.stage_map
    stage_map = StageMap.coerce(stage_map)
    if periods is not None:
        if len(periods) != 2:
            raise ParameterError(f"periods must hold two (start, end) pairs, not {len(periods)}.")
        p_b, p_a = (resolve_period(events["timestamp"], start=s, end=e) for s, e in periods)
        frame_a, frame_b = in_period(events, p_a), in_period(events, p_b)
        label_a, label_b, what = p_a.label, p_b.label, "period"
        context = ""
    else:
        period = resolve_period(events["timestamp"], month=month, start=start, end=end)
        frame = in_period(events, period)
        if frame.empty:
            raise NotComputableError(
                f"No events in the period {period.label}; choose a period with events."
            )
        segment = user_segment(frame, by, users)
        seen = segment.loc[segment.index.isin(frame["user_id"].unique())].dropna().astype(str)
        values = sorted(set(seen))
        if len(values) == 1:
            raise NotComputableError(
                f"Only one value of {segment.name} ({values[0]}) in {period.label}: no comparison."
            )
        require_names(
            [str(a), str(b)], values, what="value", absent=f"of {segment.name!r} belongs to no user in {period.label}",
            column=None, patterns=False, present_label="values",
            hint="compare two of the values present.",
        )  # fmt: skip
        seg_of_row = frame["user_id"].map(segment).astype(object).astype(str)
        frame_a, frame_b = frame.loc[seg_of_row == str(a)], frame.loc[seg_of_row == str(b)]
        label_a, label_b, what = str(a), str(b), str(segment.name)
        context = period.label
    for label, part in ((label_a, frame_a), (label_b, frame_b)):
        if part.empty:
            raise NotComputableError(f"No events for {label}; nothing to compare.")

    rows = []
    st_a, st_b = stage_table(frame_a, stage_map, None), stage_table(frame_b, stage_map, None)
    for kind in ("reach", "step"):
        both = st_a.merge(st_b, on="stage", suffixes=("_a", "_b"))
        if kind == "reach":
            rows.append(pd.DataFrame({
                "kind": kind, "item": both["stage"].astype(str), "from": None, "to": both["stage"].astype(str),
                "count_a": both["users_a"], "n_a": both["users_in_period_a"],
                "count_b": both["users_b"], "n_b": both["users_in_period_b"],
            }))  # fmt: skip
        else:
            both = both.loc[both["next_stage_a"].notna()]
            rows.append(pd.DataFrame({
                "kind": kind, "item": both["stage"].astype(str) + " → " + both["next_stage_a"].astype(str),
                "from": both["stage"].astype(str), "to": both["next_stage_a"].astype(str),
                "count_a": both["reached_next_a"], "n_a": both["users_a"],
                "count_b": both["reached_next_b"], "n_b": both["users_b"],
            }))  # fmt: skip
    e_a, e_b = (
        _edges(frame_a, level, stage_map, collapse_repeats),
        _edges(frame_b, level, stage_map, collapse_repeats),
    )
    edges = e_a.merge(e_b, on=["from", "to"], how="outer", suffixes=("_a", "_b"))
    out_a = e_a.drop_duplicates("from").set_index("from")["out_of"]
    out_b = e_b.drop_duplicates("from").set_index("from")["out_of"]
    edges["count_a"] = edges["count_a"].fillna(0)
    edges["count_b"] = edges["count_b"].fillna(0)
    edges["out_of_a"] = edges["from"].map(out_a).fillna(0)
    edges["out_of_b"] = edges["from"].map(out_b).fillna(0)
    rows.append(pd.DataFrame({
        "kind": "edge", "item": edges["from"] + " → " + edges["to"], "from": edges["from"], "to": edges["to"],
        "count_a": edges["count_a"], "n_a": edges["out_of_a"], "count_b": edges["count_b"], "n_b": edges["out_of_b"],
    }))  # fmt: skip
    table = pd.concat(rows, ignore_index=True)
    for col in ("count_a", "n_a", "count_b", "n_b"):
        table[col] = table[col].astype(int)
    with np.errstate(all="ignore"):
        table["rate_a"] = np.where(
            table["n_a"] > 0, table["count_a"] / table["n_a"].where(table["n_a"] > 0), np.nan
        )
        table["rate_b"] = np.where(
            table["n_b"] > 0, table["count_b"] / table["n_b"].where(table["n_b"] > 0), np.nan
        )
    test = two_proportion(table["count_a"], table["n_a"], table["count_b"], table["n_b"], alpha)
    for col in ("diff", "diff_ci_low", "diff_ci_high", "p_value"):
        table[col] = test[col].to_numpy()
    small = (table["kind"] == "edge") & (table["count_a"] + table["count_b"] < min_count)
    table.loc[small, "p_value"] = np.nan
    table["tested"] = table["p_value"].notna()
    table["p_adjusted"] = np.nan
    table["significant"] = False
    if table["tested"].any():
        reject, adjusted, _, _ = multipletests(
            table.loc[table["tested"], "p_value"], alpha=alpha, method="fdr_bh"
        )
        table.loc[table["tested"], "p_adjusted"] = adjusted
        table.loc[table["tested"], "significant"] = reject
    return JourneyDiffResult(
        table=table,
        label_a=label_a,
        label_b=label_b,
        what=what,
        context=context,
        users_a=int(frame_a["user_id"].nunique()),
        users_b=int(frame_b["user_id"].nunique()),
        level=level,
        alpha=alpha,
    )


class JourneyDiffResult(Result):
    """Step-by-step and edge-by-edge differences between two journeys, FDR-controlled.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per comparison: ``kind`` (reach | step | edge), ``item``,
        ``count_a``/``n_a``/``rate_a``, ``count_b``/``n_b``/``rate_b``,
        ``diff`` = rate_a − rate_b with Newcombe ``diff_ci_low``/``_high``,
        ``p_value``, ``p_adjusted`` (Benjamini–Hochberg), ``significant``.
    """

    title = "Journey differences"

    def __init__(
        self, *, table, label_a, label_b, what, context, users_a, users_b, level, alpha
    ) -> None:
        self.table = table
        self.label_a = label_a
        self.label_b = label_b
        self.what = what
        self.context = context
        self.users_a = users_a
        self.users_b = users_b
        self.level = level
        self.alpha = alpha

    def to_frame(self) -> pd.DataFrame:
        """Every comparison with its test, significant ones first."""
        return self.table.sort_values(
            ["significant", "p_adjusted"], ascending=[False, True], kind="stable"
        ).reset_index(drop=True)

    def significant(self) -> pd.DataFrame:
        """Return the differences that survive Benjamini–Hochberg control, largest first."""
        t = self.table.loc[self.table["significant"]]
        return t.reindex(t["diff"].abs().sort_values(ascending=False).index)

    @property
    def _names(self) -> tuple[str, str]:
        if self.what == "period":
            return self.label_a, self.label_b
        return f"{self.label_a}", f"{self.label_b}"

    def _line(self, row: pd.Series) -> str:
        kind = {"reach": "reach of", "step": "step", "edge": "transition"}[row["kind"]]
        return (
            f"{kind} {row['item']}: {fmt_pct(row['rate_a'])} vs {fmt_pct(row['rate_b'])} "
            f"({fmt_pp(row['diff'])} {fmt_ci(row['diff_ci_low'], row['diff_ci_high'], fmt_pp)}, "
            f"adjusted p {fmt_p(row['p_adjusted'])})"
        )

    def summary(self, n: int = 8) -> str:
        """Describe the differences that survive FDR control (at most ``n``)."""
        a, b = self._names
        where = f" ({self.context})" if self.context else ""
        tested = self.table["tested"]
        counts = self.table.loc[tested, "kind"].value_counts()
        head = (
            f"{self.what} {a} ({fmt_count(self.users_a)} users) vs {b} ({fmt_count(self.users_b)} users){where}: "
            f"{int(tested.sum())} comparisons ({counts.get('reach', 0)} reach, {counts.get('step', 0)} step, "
            f"{counts.get('edge', 0)} {self.level} transitions), Benjamini–Hochberg FDR {fmt_pct(self.alpha, 0)}."
        )
        sig = self.significant()
        if sig.empty:
            smallest = self.table["p_adjusted"].min()
            return (
                head
                + f"\nNo difference survives FDR control (smallest adjusted p {fmt_p(smallest)})."
            )
        lines = [
            head,
            f"{len(sig)} differences survive ({a} vs {b}; 95% intervals per comparison):",
        ]
        lines += [f"- {self._line(row)}" for _, row in sig.head(n).iterrows()]
        if len(sig) > n:
            lines.append(f"... and {len(sig) - n} more (see to_frame()).")
        return "\n".join(lines)

    def display_frame(self) -> pd.DataFrame:
        """Return the significant differences formatted for readers."""
        s = self.significant()
        a, b = self._names
        return pd.DataFrame(
            {
                "kind": s["kind"],
                "item": s["item"],
                a: s["rate_a"].map(fmt_pct),
                b: s["rate_b"].map(fmt_pct),
                "difference": [
                    f"{fmt_pp(d)} {fmt_ci(lo, hi, fmt_pp)}"
                    for d, lo, hi in zip(
                        s["diff"], s["diff_ci_low"], s["diff_ci_high"], strict=True
                    )
                ],
                "adjusted p": s["p_adjusted"].map(fmt_p),
            }
        ).reset_index(drop=True)

    def plot(self, ax=None, n: int = 15):
        """Dot-and-interval chart of the (up to ``n`` largest) differences that survive FDR."""
        from journeylab.core.viz import PALETTE, new_axes

        s = self.significant().head(n).iloc[::-1]
        ax = new_axes(ax, figsize=(9, 0.42 * max(len(s), 3) + 1.6))
        a, b = self._names
        title = f"{a} − {b}: differences surviving FDR ({fmt_pct(self.alpha, 0)})"
        if s.empty:
            ax.text(
                0.5,
                0.5,
                "No difference survives FDR control",
                ha="center",
                va="center",
                transform=ax.transAxes,
            )
            ax.set_title(title)
            ax.set_axis_off()
            return ax
        y = np.arange(len(s))
        colours = [PALETTE[0] if d > 0 else PALETTE[3] for d in s["diff"]]
        ax.hlines(y, s["diff_ci_low"] * 100, s["diff_ci_high"] * 100, color=colours, lw=2)
        ax.scatter(s["diff"] * 100, y, color=colours, zorder=3, s=30)
        ax.axvline(0, color="0.4", lw=1)
        for yi, hi, ra, rb in zip(y, s["diff_ci_high"], s["rate_a"], s["rate_b"], strict=True):
            ax.text(
                hi * 100,
                yi,
                f"  {fmt_pct(ra)} vs {fmt_pct(rb)}",
                va="center",
                fontsize=8,
                color="0.3",
            )
        labels = [f"{k}: {item}" for k, item in zip(s["kind"], s["item"], strict=True)]
        ax.set_yticks(y, labels, fontsize=9)
        ax.set_xlabel(f"difference {a} − {b} (percentage points, 95% interval; text: {a} vs {b})")
        ax.margins(x=0.15)
        ax.set_title(title)
        ax.grid(axis="y", visible=False)
        return ax
