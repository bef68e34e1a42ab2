"""Behavioural personas: k-means clusters of users described in words and numbers.

:func:`journey_personas` clusters users on standardised journey features
(:func:`journeylab.maps.behaviour.user_features`) with k-means
(``scipy.cluster.vq.kmeans2``, k-means++ seeding, several seeded restarts;
``k=None`` picks k by the mean silhouette on a seeded subsample) and describes
each cluster ("Email-first planners: 18% of users, 3.1 touches, 62% convert,
mostly web"). Its ``assignments`` (a Series user → persona) are accepted by
:func:`journeylab.maps.journey_maps.journey_map` as ``segment=``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.cluster.vq import kmeans2
from scipy.spatial.distance import cdist

from journeylab.core.errors import NotComputableError, ParameterError, check_range, did_you_mean
from journeylab.core.project import display_label
from journeylab.core.results import Result, fmt_num, fmt_pct
from journeylab.maps.behaviour import _LOG_SCALED, DEFAULT_FEATURES, _profile, user_features
from journeylab.maps.progress import fmt_duration

__all__ = ["journey_personas", "PersonasResult", "silhouette"]

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


def _persona_name(
    row: pd.Series, overall: dict, mix: pd.DataFrame, labels: Mapping[str, str] | None = None
) -> str:
    """'<Top channel>-first <planners|quick bookers|shoppers|browsers>' from conversion and touches vs all users.

    The channel is written by its label when ``labels`` has one.
    """
    lead = ""
    if not mix.empty:
        shares = mix.loc[row.name]
        channel = str(shares.idxmax()).removeprefix("share_") if shares.max() > 0 else ""
        if channel and labels and channel in labels:
            lead = labels[channel] + "-first "
        elif channel:
            lead = _CHANNEL_WORDS.get(channel, channel.replace("_", " ").capitalize()) + "-first "
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
    labels: Mapping[str, str] | None = None,
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
    labels : mapping, optional
        Reader-facing names of channels, segment columns and their values
        (default: the project's ``labels``). With labels (or a project) the
        persona names, descriptions, table and figure show them
        (:func:`journeylab.core.project.display_label`); without, the names as
        the data carry them.
    project : Project, optional
        The project file: its ``conversion``, ``segments``, ``session_gap`` and ``labels``.

    Returns
    -------
    PersonasResult

    Examples
    --------
    >>> from journeylab.datasets.sample import make_sample, sample_project
    >>> shop = make_sample(seed=1, n_users=2000, vertical="ecommerce")
    >>> personas = journey_personas(shop.events, k=3, seed=0, users=shop.users,
    ...                             segments=["platform"], project=sample_project("ecommerce"))
    >>> print(personas.summary())  # doctest: +NORMALIZE_WHITESPACE
    2,000 users in 3 personas, k-means on standardised journey features, seed 0; k = 3 (mean
        silhouette 0.25).
    Paid social-first browsers: 45% of users, 5.5 touches, 0% convert, mixed Platform
    E-mail-first browsers: 40% of users, 14 touches, 0% convert, 48.2 days to convert (median),
        mixed Platform
    Paid search-first quick bookers: 15% of users, 6.1 touches, 100% convert, 20.6 h to convert
        (median), mostly Web
    """
    if k is not None:
        check_range("k", k, low=2, low_inclusive=True)
    if labels is None and project is not None:
        labels = project.labels
    shown_as = None if labels is None else dict(labels)  # ``labels`` is reused for the clusters
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
    names = [_persona_name(row, overall, mix, shown_as) for _, row in profile.iterrows()]
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            names[i] = f"{name} ({seen[name]})"
    profile.insert(0, "persona", names)
    profile["top_channel"] = mix.idxmax(axis=1).str.removeprefix("share_") if len(mix) else None
    profile["description"] = [_describe(row, segments, shown_as) for _, row in profile.iterrows()]
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
        labels=shown_as,
    )


def _describe(
    row: pd.Series, segments: Sequence[str] = (), labels: Mapping[str, str] | None = None
) -> str:
    def word(name: Any) -> str:  # in a sentence: the label, else the name as it is
        return labels.get(str(name), str(name)) if labels else str(name)

    mostly = ""
    for column in segments[:1]:  # the first segment describes; the table has them all
        if pd.notna(row.get(f"main_{column}")):
            mostly = (
                f", mostly {word(row[f'main_{column}'])}"
                if row[f"main_{column}_share"] > 0.5
                else f", mixed {word(column)}"
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
    labels : dict or None
        Reader-facing names used in the table and figure (None: names as in the data).
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
        labels=None,
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
        self.labels = None if labels is None else dict(labels)

    def _shown(self, name: Any) -> Any:
        """Return a channel, segment column or value as shown (``display_label`` with labels)."""
        if self.labels is None or name is None or (isinstance(name, float) and np.isnan(name)):
            return name
        return display_label(name, self.labels)

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
        head = (
            f"{len(self.assignments):,} users in {self.k} personas, "
            f"k-means on standardised journey features, seed {self.seed}; {how}."
        )
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
            main = p.get(f"main_{column}", pd.Series("–", index=p.index))
            header = column if self.labels is None else self._shown(column)
            out[f"main {header}"] = main.map(lambda v: v if v == "–" else self._shown(v))
        out["top channel"] = p["top_channel"].map(self._shown)
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
        if self.labels is not None:  # channels by their labels
            pretty.update(
                {
                    c: f"{self._shown(c.removeprefix('share_'))} share"
                    for c in z.columns
                    if c.startswith("share_")
                }
            )
        # one-hot columns "<column>=<value>" read "<value> <column>"
        pretty.update(
            {
                c: " ".join(str(self._shown(part)) for part in reversed(c.split("=", 1)))
                for c in z.columns
                if "=" in c
            }
        )
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
