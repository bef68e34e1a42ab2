"""Segments and personas: rule-based user segments and behavioural clusters.

- :func:`user_features` turns the event log into one row per user: touches,
  sessions, channel mix, whether and how fast the user converted, and the
  user's value of each segment column the caller names (``platform``, ``region``).
- :func:`segment_users` assigns each user to the first of a list of named
  rules (pandas query strings or callables over those features) that matches.
- :func:`journey_personas` clusters users on standardised journey features
  with k-means (``scipy.cluster.vq.kmeans2``, k-means++ seeding, several
  seeded restarts; ``k=None`` picks k by the mean silhouette on a seeded
  subsample) and describes each cluster in words and numbers
  ("Email-first planners: 18% of users, 3.1 touches, 62% convert, mostly web").

What counts as a conversion and which columns are segments are the caller's
(``conversion=``, ``segments=``, or ``project=`` for the project file's);
names the data do not carry are an error naming the closest ones present.
Both results carry ``assignments`` (a Series user → segment) that
:func:`journeylab.maps.journey_maps.journey_map` accepts as ``segment=``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.cluster.vq import kmeans2
from scipy.spatial.distance import cdist

from journeylab.core.errors import (
    NotComputableError,
    ParameterError,
    check_range,
    did_you_mean,
    require_names,
)
from journeylab.core.results import Result, fmt_num, fmt_pct
from journeylab.core.timeparse import parse_duration
from journeylab.maps.journey_maps import (
    epoch_ns,
    fmt_duration,
    in_period,
    prepare_events,
    resolve_period,
    run_sql,
)

__all__ = [
    "user_features",
    "segment_users",
    "journey_personas",
    "SegmentsResult",
    "PersonasResult",
    "DEFAULT_FEATURES",
]

#: Feature groups used for personas: counts, timing, outcome, channel mix (segments are added).
DEFAULT_FEATURES: tuple[str, ...] = (
    "touches",
    "sessions",
    "journey_days",
    "converted",
    "channel_mix",
)
_LOG_SCALED = ("touches", "sessions", "journey_days")

_CHANNEL_WORDS = {
    "phone": "Phone",
    "paid_search": "Paid-search",
    "organic_search": "Search",
    "social": "Social",
    "display": "Display",
    "email": "Email",
    "sms": "SMS",
    "referral": "Referral",
    "direct": "Direct",
}


def _conversions(conversion: str | Sequence[str] | None, project: Any) -> list[str]:
    if conversion is None:
        if project is None:
            raise ParameterError(
                "Name the conversion: conversion='purchase' (the event, or list of events, that "
                "counts as one), or pass project=."
            )
        conversion = list(project.conversion)
    return [conversion] if isinstance(conversion, str) else [str(c) for c in conversion]


def user_features(
    events: pd.DataFrame,
    *,
    conversion: str | Sequence[str] | None = None,
    segments: Sequence[str] = (),
    users: pd.DataFrame | None = None,
    month: str | None = None,
    start: Any = None,
    end: Any = None,
    session_gap: str | pd.Timedelta = "30min",
    project: Any = None,
) -> pd.DataFrame:
    """One row per user with journey features (index ``user_id``).

    Columns: ``touches`` (events with a channel before the first conversion),
    ``sessions`` (distinct ``session_id``; without that column, runs of events
    separated by more than ``session_gap``), ``converted`` (0/1),
    ``days_to_convert`` (NaN for non-converters), ``journey_days`` (days to
    convert, or days from first to last event), ``value`` (sum of ``value`` on
    conversions), ``top_channel``, ``share_<channel>`` (share of touches per
    channel), each column of ``segments`` found in the events (the user's first
    value), and the columns of ``users`` when given.

    Parameters
    ----------
    events : pandas.DataFrame
        Canonical event log.
    conversion : str or sequence of str
        The conversion event(s) (default: the project's).
    segments : sequence of str
        Segment columns of the events (or of ``users``) to describe users by.
    users : pandas.DataFrame, optional
        One row per user; its columns are added.
    month, start, end
        Restrict to a period (default all data).
    session_gap : str or Timedelta
        The inactivity that starts a new session, for logs without ``session_id``.
    project : Project, optional
        The project file: its ``conversion`` and ``session_gap``.

    Examples
    --------
    >>> t = pd.Timestamp("2026-10-01", tz="UTC")
    >>> ev = pd.DataFrame({"user_id": ["a", "a", "b"], "event": ["view", "purchase", "view"],
    ...     "timestamp": [t, t + pd.Timedelta("2h"), t], "channel": ["email", None, "social"],
    ...     "platform": ["app", "app", "web"]})
    >>> f = user_features(ev, conversion="purchase", segments=["platform"])
    >>> f[["touches", "sessions", "converted", "platform"]].to_dict("index")
    {'a': {'touches': 1, 'sessions': 2, 'converted': 1, 'platform': 'app'}, 'b': {'touches': 1, 'sessions': 1, 'converted': 0, 'platform': 'web'}}
    """
    conversions = _conversions(conversion, project)
    if project is not None and session_gap == "30min":
        session_gap = project.session_gap
    gap = parse_duration(session_gap, "session_gap")
    events = prepare_events(events)
    require_names(
        conversions, pd.unique(events["event"].dropna()), what="conversion event", patterns=False
    )
    segments = [str(c) for c in segments]
    require_names(
        segments, [*events.columns, *(users.columns if users is not None else [])], what="segment",
        absent=f"is not a column of the events{' or the users table' if users is not None else ''}",
        column=None, patterns=False,
    )  # fmt: skip
    if month is not None or start is not None or end is not None:
        events = in_period(
            events, resolve_period(events["timestamp"], month=month, start=start, end=end)
        )
    if events.empty:
        raise NotComputableError("No events to describe users with; choose a period with events.")
    out = _features_sql(events, conversions, [c for c in segments if c in events.columns], gap)
    if users is not None:
        extra = users.drop_duplicates("user_id").set_index("user_id")
        extra.index = extra.index.astype(str)
        for column in extra.columns:
            if column not in out:
                out[column] = extra[column].reindex(out.index)
    return out


def _features_sql(
    events: pd.DataFrame, conversions: list[str], segments: list[str], gap: pd.Timedelta
) -> pd.DataFrame:
    """Compute the per-user aggregates of :func:`user_features`, grouped in DuckDB."""
    cols = {
        "user_id": events["user_id"].astype(str),
        "ts": epoch_ns(events["timestamp"]),
        "event": events["event"].astype(str),
    }
    for name in ("channel", "session_id"):
        cols[name] = (
            events[name].astype(object).where(events[name].notna(), None)
            if name in events
            else None
        )
    seg_cols = {f"seg_{i}": name for i, name in enumerate(segments)}
    for alias, name in seg_cols.items():
        cols[alias] = events[name].astype(str).where(events[name].notna(), None)
    cols["value"] = events["value"].astype(float) if "value" in events else np.nan
    ev = pd.DataFrame(cols)
    sessions = (
        "count(DISTINCT session_id)" if "session_id" in events else "sum(new_session::INTEGER)"
    )
    firsts = "".join(
        f", arg_min({alias}, ts) FILTER (WHERE {alias} IS NOT NULL) AS {alias}"
        for alias in seg_cols
    )
    per_user = f"""
        WITH conv AS (SELECT user_id, min(ts) AS conv_ts FROM ev WHERE list_contains($conv, event) GROUP BY user_id),
        g AS (SELECT ev.*, (lag(ts) OVER (PARTITION BY user_id ORDER BY ts) IS NULL
                            OR ts - lag(ts) OVER (PARTITION BY user_id ORDER BY ts) > $gap) AS new_session
              FROM ev),
        e AS (SELECT g.*, conv.conv_ts, (channel IS NOT NULL AND (conv_ts IS NULL OR ts < conv_ts)) AS touch
              FROM g LEFT JOIN conv USING (user_id))
        SELECT user_id, min(ts) AS first_ts, max(ts) AS last_ts, any_value(e.conv_ts) AS conv_ts,
               count(*) FILTER (WHERE touch) AS touches, {sessions} AS sessions,
               coalesce(sum(value) FILTER (WHERE list_contains($conv, event)), 0) AS value{firsts}
        FROM e GROUP BY user_id ORDER BY user_id
    """
    mix_sql = """
        WITH conv AS (SELECT user_id, min(ts) AS conv_ts FROM ev WHERE list_contains($conv, event) GROUP BY user_id)
        SELECT ev.user_id, channel, count(*) AS n FROM ev LEFT JOIN conv USING (user_id)
        WHERE channel IS NOT NULL AND (conv_ts IS NULL OR ts < conv_ts) GROUP BY ALL
    """
    gap_ns = int(gap.value)
    agg = run_sql(per_user, ev, {"conv": conversions, "gap": gap_ns})
    mix = run_sql(mix_sql, ev, {"conv": conversions})
    out = agg.set_index("user_id")
    out.index.name = "user_id"
    day = pd.Timedelta(days=1)
    table = pd.DataFrame(index=out.index)
    table["touches"] = out["touches"].astype(int)
    table["sessions"] = out["sessions"].astype(int)
    table["converted"] = out["conv_ts"].notna().astype(int)
    table["days_to_convert"] = (out["conv_ts"] - out["first_ts"]) / day
    table["journey_days"] = table["days_to_convert"].fillna(
        (out["last_ts"] - out["first_ts"]) / day
    )
    if "value" in events:
        table["value"] = out["value"].astype(float)
    for alias, name in seg_cols.items():
        table[name] = out[alias]
    if len(mix):
        shares = mix.pivot_table(
            index="user_id", columns="channel", values="n", aggfunc="sum", fill_value=0
        )
        shares = shares.div(shares.sum(axis=1), axis=0).reindex(table.index, fill_value=0.0)
        table["top_channel"] = shares.idxmax(axis=1).where(table["touches"] > 0)
        for channel in sorted(shares.columns):
            table[f"share_{channel}"] = shares[channel].to_numpy()
    return table


# ----------------------------------------------------------------------------
# Rule-based segments
# ----------------------------------------------------------------------------
class SegmentsResult(Result):
    """Users assigned to named rule-based segments.

    Attributes
    ----------
    assignments : pandas.Series
        user → segment name (first matching rule, else ``default``).
    table : pandas.DataFrame
        One row per segment: users, share, conversion, touches, sessions.
    """

    title = "Segments"

    def __init__(self, assignments: pd.Series, table: pd.DataFrame, rules: list[str]) -> None:
        self.assignments = assignments
        self.table = table
        self.rules = rules

    def to_frame(self) -> pd.DataFrame:
        """One row per segment with its size and journey figures."""
        return self.table.copy()

    def summary(self) -> str:
        """Each segment's size and conversion in words."""
        parts = [
            f"{row.segment}: {fmt_pct(row.share)} of users ({row.users:,}), {fmt_pct(row.conversion)} convert, "
            f"{fmt_num(row.touches)} touches"
            for row in self.table.itertuples(index=False)
        ]
        return (
            f"{len(self.assignments):,} users in {len(self.table)} segments (first matching rule wins).\n"
            + "\n".join(parts)
        )

    def plot(self, ax=None):
        """Bars of segment sizes, annotated with their conversion."""
        from journeylab.core.viz import PALETTE, new_axes, percent_axis

        t = self.table.iloc[::-1]
        ax = new_axes(ax, figsize=(8, 0.5 * len(t) + 1.5))
        ax.barh(t["segment"], t["share"], color=PALETTE[0])
        for y, (share, conv) in enumerate(zip(t["share"], t["conversion"], strict=True)):
            ax.text(
                share,
                y,
                f"  {fmt_pct(share)} of users · {fmt_pct(conv)} convert",
                va="center",
                fontsize=9,
            )
        percent_axis(ax, "x")
        ax.set_xlim(0, min(1.0, t["share"].max() * 1.6))
        ax.set_xlabel("share of users")
        ax.set_title("Segments")
        ax.grid(axis="y", visible=False)
        return ax


def _profile(
    features: pd.DataFrame, labels: pd.Series, segments: Sequence[str] = ()
) -> pd.DataFrame:
    grouped = features.groupby(labels, sort=False)
    table = pd.DataFrame(
        {
            "users": grouped.size(),
            "touches": grouped["touches"].mean(),
            "sessions": grouped["sessions"].mean(),
            "conversion": grouped["converted"].mean(),
            "median_days_to_convert": grouped["days_to_convert"].median(),
        }
    )
    table["share"] = table["users"] / table["users"].sum()
    for column in segments:
        if column in features and features[column].notna().any():
            counts = pd.crosstab(labels, features[column], normalize="index")
            table[f"main_{column}"] = counts.idxmax(axis=1)
            table[f"main_{column}_share"] = counts.max(axis=1)
    return table


def segment_users(
    events: pd.DataFrame,
    rules: Mapping[str, str | Callable[[pd.DataFrame], Any]],
    *,
    users: pd.DataFrame | None = None,
    default: str = "other",
    features: pd.DataFrame | None = None,
    conversion: str | Sequence[str] | None = None,
    segments: Sequence[str] = (),
    project: Any = None,
) -> SegmentsResult:
    """Assign every user to the first named rule that matches, else ``default``.

    Parameters
    ----------
    events : pandas.DataFrame
        Canonical event log.
    rules : mapping of name → rule
        A rule is a pandas query string over the user features (see
        :func:`user_features`, plus the columns of ``users``), e.g.
        ``"platform == 'app' and touches >= 3"``, or a callable taking the
        feature table and returning a boolean Series.
    users : pandas.DataFrame, optional
        User attributes (``acquisition_channel``, ``persona`` ...) usable in rules.
    default : str
        Segment of users no rule matches.
    features : pandas.DataFrame, optional
        Precomputed :func:`user_features` (to reuse across calls).
    conversion : str or sequence of str
        The conversion event(s), for the features (default: the project's).
    segments : sequence of str
        Segment columns of the events to add to the features (usable in rules).
    project : Project, optional
        The project file: its ``conversion``.

    Returns
    -------
    SegmentsResult

    Examples
    --------
    >>> seg = segment_users(events, {"email leads": "share_email > 0",
    ...                              "app browsers": "platform == 'app' and converted == 0"},
    ...                     conversion="purchase", segments=["platform"])  # doctest: +SKIP
    >>> journey_map(events, stages, month="2026-10", segment=seg.assignments)  # doctest: +SKIP
    """
    if not rules:
        raise ParameterError("rules is empty; give at least one {'name': 'query'} rule.")
    if features is None:
        features = user_features(
            events, users=users, conversion=conversion, segments=segments, project=project
        )
    assigned = pd.Series(pd.NA, index=features.index, dtype=object)
    for name, rule in rules.items():
        try:
            matched = rule(features) if callable(rule) else features.eval(rule)
        except Exception as exc:  # pandas raises several types for a bad expression
            word = str(exc).split("'")[1] if "'" in str(exc) else ""
            hint = did_you_mean(word, features.columns) if word else ""
            raise ParameterError(
                f"Rule {name!r} ({rule!r}) cannot be evaluated: {exc}{hint}. Columns available: {list(features.columns)}."
            ) from exc
        matched = pd.Series(np.asarray(matched, dtype=bool), index=features.index)
        assigned = assigned.where(assigned.notna() | ~matched, name)
    assigned = assigned.fillna(default).astype(str).rename("segment")
    table = _profile(features, assigned, segments).reset_index(names="segment")
    order = list(rules) + [default]
    table["segment"] = pd.Categorical(table["segment"], categories=order, ordered=True)
    table = table.sort_values("segment").reset_index(drop=True)
    table["segment"] = table["segment"].astype(str)
    return SegmentsResult(assigned, table, list(rules))


# ----------------------------------------------------------------------------
# Behavioural personas
# ----------------------------------------------------------------------------
def _design_matrix(features: pd.DataFrame, wanted: Sequence[str]) -> pd.DataFrame:
    """Return the columns to cluster on.

    Numbers as they are (counts and days log1p-scaled), the channel shares for
    ``"channel_mix"``, and categories one-hot as ``<column>=<value>``.
    """
    columns: dict[str, pd.Series] = {}
    for name in wanted:
        if name == "channel_mix":
            columns.update({c: features[c] for c in features.columns if c.startswith("share_")})
        elif name in features and not pd.api.types.is_numeric_dtype(features[name]):
            dummies = pd.get_dummies(features[name], prefix=name, prefix_sep="=", dtype=float)
            columns.update({c: dummies[c] for c in dummies.columns})
        elif name in features:
            values = features[name].astype(float)
            columns[name] = np.log1p(values.clip(lower=0)) if name in _LOG_SCALED else values
        else:
            known = list(features.columns) + ["channel_mix"]
            raise ParameterError(
                f"Unknown feature {name!r}{did_you_mean(name, known)}; features are {known}."
            )
    matrix = pd.DataFrame(columns, index=features.index).fillna(0.0)
    spread = matrix.std(ddof=0)
    return matrix.loc[:, spread > 0]


def _group(column: str) -> str:
    """Return the feature group of a design column: the channel mix, a category's column, or itself."""
    if column.startswith("share_"):
        return "channel_mix"
    return column.split("=", 1)[0]


def _kmeans(x: np.ndarray, k: int, seed: int, restarts: int) -> tuple[np.ndarray, np.ndarray]:
    """Best of ``restarts`` seeded k-means++ runs (lowest within-cluster sum of squares)."""
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for child in np.random.SeedSequence(seed).spawn(restarts):
        centroids, labels = kmeans2(x, k, iter=20, minit="++", seed=np.random.default_rng(child))
        inertia = float(((x - centroids[labels]) ** 2).sum())
        if len(np.unique(labels)) == k and (best is None or inertia < best[0]):
            best = (inertia, centroids, labels)
    if best is None:
        raise NotComputableError(f"k-means could not form {k} non-empty clusters; try a smaller k.")
    return best[1], best[2]


def silhouette(x: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette width (Rousseeuw 1987), Euclidean; singletons score 0."""
    d = cdist(x, x)
    clusters = np.unique(labels)
    onehot = (labels[:, None] == clusters[None, :]).astype(float)
    sizes = onehot.sum(axis=0)
    sums = d @ onehot  # distance of each point to each cluster, summed
    own = np.searchsorted(clusters, labels)
    own_size = sizes[own]
    a = np.where(own_size > 1, sums[np.arange(len(x)), own] / np.maximum(own_size - 1, 1), 0.0)
    mean_other = sums / sizes[None, :]
    mean_other[np.arange(len(x)), own] = np.inf
    b = mean_other.min(axis=1)
    s = np.where(own_size > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-12), 0.0)
    return float(s.mean())


def _persona_name(row: pd.Series, overall: dict, mix: pd.DataFrame) -> str:
    """'<Top channel>-first <planners|quick bookers|shoppers|browsers>' from conversion and touches vs all users."""
    lead = ""
    if not mix.empty:
        shares = mix.loc[row.name]
        channel = str(shares.idxmax()).removeprefix("share_") if shares.max() > 0 else ""
        lead = (
            _CHANNEL_WORDS.get(channel, channel.replace("_", " ").capitalize()) + "-first "
            if channel
            else ""
        )
    conv, touches = row["conversion"], row["touches"]
    if conv >= 1.25 * overall["conversion"]:
        noun = "planners" if touches >= overall["touches"] else "quick bookers"
    elif conv <= 0.6 * overall["conversion"]:
        noun = "browsers"
    else:
        noun = "shoppers"
    return (lead + noun).capitalize() if not lead else lead + noun


def journey_personas(
    events: pd.DataFrame,
    k: int | None = 4,
    seed: int = 0,
    features: Sequence[str] = DEFAULT_FEATURES,
    *,
    users: pd.DataFrame | None = None,
    month: str | None = None,
    start: Any = None,
    end: Any = None,
    k_range: Sequence[int] = range(2, 9),
    restarts: int = 3,
    silhouette_sample: int = 2000,
    conversion: str | Sequence[str] | None = None,
    segments: Sequence[str] | None = None,
    session_gap: str | pd.Timedelta = "30min",
    project: Any = None,
) -> PersonasResult:
    """Cluster users into behavioural personas and describe each one.

    Parameters
    ----------
    events : pandas.DataFrame
        Canonical event log.
    k : int or None
        Number of personas; None chooses k in ``k_range`` by mean silhouette.
    seed : int
        Seed of the k-means++ restarts and the silhouette subsample.
    features : sequence of str
        Feature names of :func:`user_features` and the group ``"channel_mix"``
        (share of touches per channel); a text column (such as a segment) is
        one-hot encoded. Counts and days are log1p-scaled; all are
        standardised, and the columns of a group are weighted by 1/sqrt(size)
        so each group weighs as one feature in the distance.
    users : pandas.DataFrame, optional
        Extra user columns, usable in ``features``.
    month, start, end
        Restrict to a period (default all data).
    k_range : sequence of int
        Candidate k when ``k=None``.
    restarts : int
        Seeded k-means++ restarts per k (the lowest within-cluster sum of squares wins).
    silhouette_sample : int
        Users drawn (seeded) to compute the silhouette; with ``k=None`` the
        candidate k are also fitted on this subsample, and the chosen k on everyone.
    conversion : str or sequence of str
        The conversion event(s) (default: the project's).
    segments : sequence of str, optional
        Segment columns (of the events or ``users``) clustered on, one-hot, and
        used to describe each persona ("mostly app"). Default: the project's
        segments (other than ``channel``, which the channel mix covers), else none.
    session_gap : str or Timedelta
        The inactivity that starts a new session, for logs without ``session_id``.
    project : Project, optional
        The project file: its ``conversion``, ``segments`` and ``session_gap``.

    Returns
    -------
    PersonasResult

    Examples
    --------
    >>> personas = journey_personas(events, k=4, seed=0, conversion="purchase", segments=["platform"])  # doctest: +SKIP
    >>> print(personas.summary())  # doctest: +SKIP
    """
    if k is not None:
        check_range("k", k, low=2, low_inclusive=True)
    if segments is None:
        segments = [c for c in project.segments if c != "channel"] if project is not None else []
    segments = list(segments)
    table = user_features(
        events, users=users, conversion=conversion, segments=segments, month=month, start=start,
        end=end, session_gap=session_gap, project=project,
    )  # fmt: skip
    design = _design_matrix(table, [*features, *(c for c in segments if c not in features)])
    if design.empty:
        raise NotComputableError("No feature varies across users; personas cannot be formed.")
    standardised = (design - design.mean()) / design.std(ddof=0)
    # A group of columns (channel shares, one segment's dummies) weighs as one
    # feature in the distance, so three dummies of one column do not outvote the behaviour.
    group = pd.Series([_group(c) for c in design.columns], index=design.columns)
    weight = 1 / np.sqrt(group.map(group.value_counts()))
    x = (standardised * weight).to_numpy()
    n = len(x)
    rng = np.random.default_rng(seed)
    pick = rng.choice(n, size=min(n, silhouette_sample), replace=False)
    scores: dict[int, float] = {}
    if k is None:
        candidates = [c for c in k_range if 2 <= c < len(pick)]
        if not candidates:
            raise NotComputableError(f"Too few users ({n}) to choose k among {list(k_range)}.")
        # Choose k on the seeded subsample (silhouette is quadratic), then fit it on everyone.
        sub = x[pick]
        for c in candidates:
            scores[c] = silhouette(sub, _kmeans(sub, c, seed, restarts)[1])
        k = max(scores, key=scores.get)
        centroids, labels = _kmeans(x, k, seed, restarts)
    else:
        if k >= n:
            raise ParameterError(f"k == {k}, must be < the number of users ({n}).")
        centroids, labels = _kmeans(x, k, seed, restarts)
        scores[k] = silhouette(x[pick], labels[pick])
    # Order clusters by size so names and colours are stable across runs.
    sizes = np.bincount(labels, minlength=k)
    rank = np.empty(k, dtype=int)
    rank[np.argsort(-sizes, kind="stable")] = np.arange(k)
    labels = rank[labels]
    label_series = pd.Series(labels, index=table.index)
    profile = _profile(table, label_series, segments).sort_index()
    mix_cols = [c for c in table.columns if c.startswith("share_")]
    mix = table[mix_cols].groupby(label_series).mean().sort_index() if mix_cols else pd.DataFrame()
    overall = {
        "conversion": table["converted"].mean(),
        "touches": table["touches"].mean(),
        "mix": table[mix_cols].mean(),
    }
    names = [_persona_name(row, overall, mix) for _, row in profile.iterrows()]
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            names[i] = f"{name} ({seen[name]})"
    profile.insert(0, "persona", names)
    profile["top_channel"] = mix.idxmax(axis=1).str.removeprefix("share_") if len(mix) else None
    profile["description"] = [_describe(row, segments) for _, row in profile.iterrows()]
    profile.index.name = "cluster"
    assignments = pd.Series(
        np.asarray(names, dtype=object)[labels], index=table.index, name="persona"
    )
    z = standardised.groupby(label_series).mean().sort_index()
    raw = design.groupby(label_series).mean().sort_index()
    for col in _LOG_SCALED:
        if col in raw:
            raw[col] = table[col].groupby(label_series).mean().sort_index()
    return PersonasResult(
        profiles=profile.reset_index(),
        assignments=assignments,
        features=table,
        centroids_z=z,
        centroids_raw=raw,
        k=k,
        silhouette_scores=scores,
        chosen=len(scores) > 1,
        seed=seed,
        segments=segments,
    )


def _describe(row: pd.Series, segments: Sequence[str] = ()) -> str:
    mostly = ""
    for column in segments[:1]:  # the first segment describes; the table has them all
        if pd.notna(row.get(f"main_{column}")):
            mostly = (
                f", mostly {row[f'main_{column}']}"
                if row[f"main_{column}_share"] > 0.5
                else f", mixed {column}"
            )
    days = (
        ""
        if pd.isna(row["median_days_to_convert"])
        else f", {fmt_duration(24 * row['median_days_to_convert'])} to convert (median)"
    )
    return (
        f"{row['persona']}: {fmt_pct(row['share'], 0)} of users, {fmt_num(row['touches'], 2)} touches, "
        f"{fmt_pct(row['conversion'], 0)} convert{days}{mostly}"
    )


class PersonasResult(Result):
    """Behavioural personas from k-means on journey features.

    Attributes
    ----------
    profiles : pandas.DataFrame
        One row per persona: name, users, share, touches, sessions, conversion,
        median days to convert, the main value of each segment (``main_<column>``
        and its share), top channel, description.
    assignments : pandas.Series
        user → persona name.
    features : pandas.DataFrame
        The user feature table clustered.
    centroids_z, centroids_raw : pandas.DataFrame
        Cluster means of the standardised and the raw features.
    silhouette_scores : dict
        k → mean silhouette (on a seeded subsample).
    segments : list of str
        The segment columns clustered on and described.
    """

    title = "Journey personas"

    def __init__(
        self,
        *,
        profiles,
        assignments,
        features,
        centroids_z,
        centroids_raw,
        k,
        silhouette_scores,
        chosen,
        seed,
        segments=(),
    ) -> None:
        self.profiles = profiles
        self.assignments = assignments
        self.features = features
        self.centroids_z = centroids_z
        self.centroids_raw = centroids_raw
        self.k = k
        self.silhouette_scores = silhouette_scores
        self.chosen = chosen
        self.seed = seed
        self.segments = list(segments)

    def to_frame(self) -> pd.DataFrame:
        """One row per persona with its size and journey figures."""
        return self.profiles.copy()

    def summary(self) -> str:
        """Each persona in words and numbers, and how k was chosen."""
        how = (
            f"k = {self.k} chosen by mean silhouette ("
            + ", ".join(f"k={k}: {s:.2f}" for k, s in sorted(self.silhouette_scores.items()))
            + ")"
            if self.chosen
            else f"k = {self.k} (mean silhouette {self.silhouette_scores[self.k]:.2f})"
        )
        head = f"{len(self.assignments):,} users in {self.k} personas, k-means on standardised journey features, seed {self.seed}; {how}."
        notes = []
        if self.chosen and self.k == max(self.silhouette_scores):
            notes.append(
                "k is the largest tried and the silhouette may still rise: try a wider k_range."
            )
        if self.silhouette_scores[self.k] < 0.25:
            # Kaufman & Rousseeuw's rule of thumb: below 0.25 there is no substantial structure.
            notes.append(
                f"Mean silhouette {self.silhouette_scores[self.k]:.2f} < 0.25: the clusters are weak, "
                "read the personas as a partition of a continuum rather than distinct groups."
            )
        return "\n".join([head] + list(self.profiles["description"]) + notes)

    def display_frame(self) -> pd.DataFrame:
        """Return the profiles formatted for readers."""
        p = self.profiles
        out = pd.DataFrame(
            {
                "persona": p["persona"],
                "share": p["share"].map(lambda v: fmt_pct(v, 0)),
                "touches": p["touches"].map(lambda v: fmt_num(v, 2)),
                "sessions": p["sessions"].map(lambda v: fmt_num(v, 2)),
                "convert": p["conversion"].map(lambda v: fmt_pct(v, 0)),
            }
        )
        for column in self.segments:
            out[f"main {column}"] = p.get(f"main_{column}", pd.Series("–", index=p.index))
        out["top channel"] = p["top_channel"]
        return out

    def plot(self, ax=None):
        """Heatmap of personas × features: colour = standardised mean, text = raw mean."""
        import seaborn as sns

        from journeylab.core.viz import DIVERGING, new_axes

        z = self.centroids_z.copy()
        raw = self.centroids_raw.copy()
        z.index = raw.index = list(self.profiles["persona"])
        pretty = {
            c: c.removeprefix("share_").replace("_", " ")
            + (" share" if c.startswith("share_") else "")
            for c in z.columns
        }
        # one-hot columns "<column>=<value>" read "<value> <column>"
        pretty.update({c: " ".join(reversed(c.split("=", 1))) for c in z.columns if "=" in c})
        as_pct = {
            pretty[c]: c.startswith("share_") or "=" in c or c == "converted" for c in z.columns
        }
        z, raw = z.rename(columns=pretty), raw.rename(columns=pretty)
        annot = raw.copy().astype(object)
        for col in raw.columns:
            annot[col] = raw[col].map(
                lambda v, p=as_pct[col]: fmt_pct(v, 0) if p else fmt_num(v, 2)
            )
        ax = new_axes(ax, figsize=(0.75 * z.shape[1] + 3.5, 0.6 * z.shape[0] + 2.2))
        limit = max(1.0, float(np.nanmax(np.abs(z.to_numpy()))))
        sns.heatmap(
            z, annot=annot.to_numpy(), fmt="", cmap=DIVERGING, center=0, vmin=-limit, vmax=limit, ax=ax,
            cbar_kws={"label": "standardised mean (0 = all users)", "shrink": 0.8}, linewidths=0.5, linecolor="white",
            annot_kws={"fontsize": 8},
        )  # fmt: skip
        ax.set_title("Journey personas: feature profile")
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(axis="x", rotation=45)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
        ax.tick_params(axis="y", rotation=0)
        return ax
