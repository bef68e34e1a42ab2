"""Segments and personas: rule-based user segments and behavioural clusters.

- :func:`user_features` turns the event log into one row per user: touches,
  sessions, channel mix, device, whether and how fast the user converted.
- :func:`segment_users` assigns each user to the first of a list of named
  rules (pandas query strings or callables over those features) that matches.
- :func:`journey_personas` clusters users on standardised journey features
  with k-means (``scipy.cluster.vq.kmeans2``, k-means++ seeding, several
  seeded restarts; ``k=None`` picks k by the mean silhouette on a seeded
  subsample) and describes each cluster in words and numbers
  ("Phone-first planners: 18% of users, 3.1 touches, 62% convert, mostly desktop").

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

from journeylab.core.errors import NotComputableError, ParameterError, check_range, did_you_mean
from journeylab.core.results import Result, fmt_num, fmt_pct
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

#: Feature groups used for personas: counts, timing, outcome, channel mix, device.
DEFAULT_FEATURES: tuple[str, ...] = (
    "touches",
    "sessions",
    "journey_days",
    "converted",
    "channel_mix",
    "device",
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


def user_features(
    events: pd.DataFrame,
    *,
    conversion_event: str = "booking_completed",
    users: pd.DataFrame | None = None,
    month: str | None = None,
    start: Any = None,
    end: Any = None,
) -> pd.DataFrame:
    """One row per user with journey features (index ``user_id``).

    Columns: ``touches`` (events with a channel before the first conversion),
    ``sessions`` (distinct ``session_id``, else ``site_visit`` events),
    ``converted`` (0/1), ``days_to_convert`` (NaN for non-converters),
    ``journey_days`` (days to convert, or days from first to last event),
    ``value`` (sum of ``value`` on conversions), ``device`` (first device),
    ``top_channel``, ``share_<channel>`` (share of touches per channel), and
    the columns of ``users`` when given.

    Examples
    --------
    >>> user_features(sample.events).head()  # doctest: +SKIP
    """
    events = prepare_events(events)
    if month is not None or start is not None or end is not None:
        events = in_period(
            events, resolve_period(events["timestamp"], month=month, start=start, end=end)
        )
    if events.empty:
        raise NotComputableError("No events to describe users with; choose a period with events.")
    out = _features_sql(events, conversion_event)
    if users is not None:
        extra = users.drop_duplicates("user_id").set_index("user_id")
        extra.index = extra.index.astype(str)
        for column in extra.columns:
            if column not in out:
                out[column] = extra[column].reindex(out.index)
    return out


def _features_sql(events: pd.DataFrame, conversion_event: str) -> pd.DataFrame:
    """Compute the per-user aggregates of :func:`user_features`, grouped in DuckDB."""
    cols = {
        "user_id": events["user_id"].astype(str),
        "ts": epoch_ns(events["timestamp"]),
        "event": events["event"].astype(str),
    }
    for name in ("channel", "session_id", "device"):
        cols[name] = (
            events[name].astype(object).where(events[name].notna(), None)
            if name in events
            else None
        )
    cols["value"] = events["value"].astype(float) if "value" in events else np.nan
    ev = pd.DataFrame(cols)
    sessions = (
        "count(DISTINCT session_id)"
        if "session_id" in events
        else "count(*) FILTER (WHERE event = 'site_visit')"
    )
    per_user = f"""
        WITH conv AS (SELECT user_id, min(ts) AS conv_ts FROM ev WHERE event = $conv GROUP BY user_id),
        e AS (SELECT ev.*, conv.conv_ts, (channel IS NOT NULL AND (conv_ts IS NULL OR ts < conv_ts)) AS touch
              FROM ev LEFT JOIN conv USING (user_id))
        SELECT user_id, min(ts) AS first_ts, max(ts) AS last_ts, any_value(e.conv_ts) AS conv_ts,
               count(*) FILTER (WHERE touch) AS touches, {sessions} AS sessions,
               coalesce(sum(value) FILTER (WHERE event = $conv), 0) AS value,
               arg_min(device, ts) FILTER (WHERE device IS NOT NULL) AS device
        FROM e GROUP BY user_id ORDER BY user_id
    """
    mix_sql = """
        WITH conv AS (SELECT user_id, min(ts) AS conv_ts FROM ev WHERE event = $conv GROUP BY user_id)
        SELECT ev.user_id, channel, count(*) AS n FROM ev LEFT JOIN conv USING (user_id)
        WHERE channel IS NOT NULL AND (conv_ts IS NULL OR ts < conv_ts) GROUP BY ALL
    """
    agg = run_sql(per_user, ev, {"conv": conversion_event})
    mix = run_sql(mix_sql, ev, {"conv": conversion_event})
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
    if "device" in events:
        table["device"] = out["device"]
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


def _profile(features: pd.DataFrame, labels: pd.Series) -> pd.DataFrame:
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
    if "device" in features:
        counts = pd.crosstab(labels, features["device"], normalize="index")
        table["main_device"] = counts.idxmax(axis=1)
        table["main_device_share"] = counts.max(axis=1)
    return table


def segment_users(
    events: pd.DataFrame,
    rules: Mapping[str, str | Callable[[pd.DataFrame], Any]],
    *,
    users: pd.DataFrame | None = None,
    default: str = "other",
    features: pd.DataFrame | None = None,
    conversion_event: str = "booking_completed",
) -> SegmentsResult:
    """Assign every user to the first named rule that matches, else ``default``.

    Parameters
    ----------
    events : pandas.DataFrame
        Canonical event log.
    rules : mapping of name → rule
        A rule is a pandas query string over the user features (see
        :func:`user_features`, plus the columns of ``users``), e.g.
        ``"device == 'mobile' and touches >= 3"``, or a callable taking the
        feature table and returning a boolean Series.
    users : pandas.DataFrame, optional
        User attributes (``acquisition_channel``, ``persona`` ...) usable in rules.
    default : str
        Segment of users no rule matches.
    features : pandas.DataFrame, optional
        Precomputed :func:`user_features` (to reuse across calls).

    Returns
    -------
    SegmentsResult

    Examples
    --------
    >>> seg = segment_users(sample.events, {"phone leads": "share_phone > 0",
    ...                                     "mobile browsers": "device == 'mobile' and converted == 0"})  # doctest: +SKIP
    >>> journey_map(sample.events, month="2026-10", segment=seg.assignments)  # doctest: +SKIP
    """
    if not rules:
        raise ParameterError("rules is empty; give at least one {'name': 'query'} rule.")
    if features is None:
        features = user_features(events, users=users, conversion_event=conversion_event)
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
    table = _profile(features, assigned).reset_index(names="segment")
    order = list(rules) + [default]
    table["segment"] = pd.Categorical(table["segment"], categories=order, ordered=True)
    table = table.sort_values("segment").reset_index(drop=True)
    table["segment"] = table["segment"].astype(str)
    return SegmentsResult(assigned, table, list(rules))


# ----------------------------------------------------------------------------
# Behavioural personas
# ----------------------------------------------------------------------------
def _design_matrix(features: pd.DataFrame, wanted: Sequence[str]) -> pd.DataFrame:
    columns: dict[str, pd.Series] = {}
    for name in wanted:
        if name == "channel_mix":
            columns.update({c: features[c] for c in features.columns if c.startswith("share_")})
        elif name == "device":
            if "device" in features:
                dummies = pd.get_dummies(features["device"], prefix="device", dtype=float)
                columns.update({c: dummies[c] for c in dummies.columns})
        elif name in features:
            values = features[name].astype(float)
            columns[name] = np.log1p(values.clip(lower=0)) if name in _LOG_SCALED else values
        else:
            known = list(features.columns) + ["channel_mix", "device"]
            raise ParameterError(
                f"Unknown feature {name!r}{did_you_mean(name, known)}; features are {known}."
            )
    matrix = pd.DataFrame(columns, index=features.index).fillna(0.0)
    spread = matrix.std(ddof=0)
    return matrix.loc[:, spread > 0]


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
    conversion_event: str = "booking_completed",
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
        Feature names of :func:`user_features` and the groups
        ``"channel_mix"`` (share of touches per channel) and ``"device"``
        (one-hot). Counts and days are log1p-scaled; all are standardised, and
        the columns of a group are weighted by 1/sqrt(size) so each group
        weighs as one feature in the distance.
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

    Returns
    -------
    PersonasResult

    Examples
    --------
    >>> personas = journey_personas(sample.events, k=4, seed=0)  # doctest: +SKIP
    >>> print(personas.summary())  # doctest: +SKIP
    """
    if k is not None:
        check_range("k", k, low=2, low_inclusive=True)
    table = user_features(
        events, users=users, conversion_event=conversion_event, month=month, start=start, end=end
    )
    design = _design_matrix(table, features)
    if design.empty:
        raise NotComputableError("No feature varies across users; personas cannot be formed.")
    standardised = (design - design.mean()) / design.std(ddof=0)
    # A group of columns (channel shares, device dummies) weighs as one feature
    # in the distance, so three device dummies do not outvote the behaviour.
    group = pd.Series(
        [c.split("_")[0] if c.startswith(("share_", "device_")) else c for c in design.columns],
        index=design.columns,
    )
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
    profile = _profile(table, label_series).sort_index()
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
    profile["description"] = [_describe(row) for _, row in profile.iterrows()]
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
    )


def _describe(row: pd.Series) -> str:
    device = ""
    if "main_device" in row and pd.notna(row.get("main_device")):
        device = (
            f", mostly {row['main_device']}"
            if row["main_device_share"] > 0.5
            else ", mixed devices"
        )
    days = (
        ""
        if pd.isna(row["median_days_to_convert"])
        else f", {fmt_duration(24 * row['median_days_to_convert'])} to convert (median)"
    )
    return (
        f"{row['persona']}: {fmt_pct(row['share'], 0)} of users, {fmt_num(row['touches'], 2)} touches, "
        f"{fmt_pct(row['conversion'], 0)} convert{days}{device}"
    )


class PersonasResult(Result):
    """Behavioural personas from k-means on journey features.

    Attributes
    ----------
    profiles : pandas.DataFrame
        One row per persona: name, users, share, touches, sessions, conversion,
        median days to convert, main device, top channel, description.
    assignments : pandas.Series
        user → persona name.
    features : pandas.DataFrame
        The user feature table clustered.
    centroids_z, centroids_raw : pandas.DataFrame
        Cluster means of the standardised and the raw features.
    silhouette_scores : dict
        k → mean silhouette (on a seeded subsample).
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
        return pd.DataFrame(
            {
                "persona": p["persona"],
                "share": p["share"].map(lambda v: fmt_pct(v, 0)),
                "touches": p["touches"].map(lambda v: fmt_num(v, 2)),
                "sessions": p["sessions"].map(lambda v: fmt_num(v, 2)),
                "convert": p["conversion"].map(lambda v: fmt_pct(v, 0)),
                "main device": p.get("main_device", pd.Series("–", index=p.index)),
                "top channel": p["top_channel"],
            }
        )

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
        pretty.update(
            {c: c.removeprefix("device_") + " device" for c in z.columns if c.startswith("device_")}
        )
        z, raw = z.rename(columns=pretty), raw.rename(columns=pretty)
        annot = raw.copy().astype(object)
        for col in raw.columns:
            as_pct = col.endswith(("share", "device")) or col == "converted"
            annot[col] = raw[col].map(lambda v, p=as_pct: fmt_pct(v, 0) if p else fmt_num(v, 2))
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
