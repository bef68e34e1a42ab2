"""Bootstrap uncertainty for attribution credit and channel rankings.

Journeys are resampled with replacement: the path table is a list of cells
(path × converted / not converted) holding journey counts, so one bootstrap
replicate is a single multinomial draw of the total number of journeys over
those cells (``numpy.random.Generator.multinomial``, all replicates in one
vectorised call). A resampled converting journey keeps the mean conversion
value of its path (the path table carries no per-journey values).
Fractional counts (weights) are resampled as ``round(total)`` journeys and
rescaled to the original total.

Rule-based and Shapley credit are linear in the counts, so all replicates are
one matrix product with the model's share matrix; Markov credit re-solves the
chain for each replicate on the same states.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from journeylab.attribution.markov import MarkovChain, markov_credit
from journeylab.attribution.paths import PathTable
from journeylab.core.progress import ProgressLike

__all__ = [
    "resample_counts",
    "bootstrap_credit",
    "percentile_interval",
    "rank_probabilities",
    "indistinguishable_pairs",
]


def resample_counts(
    table: PathTable, n_boot: int, seed: int | np.random.Generator = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resample journeys: ``(conversions, value, non_conversions)``, each ``(n_boot, n_paths)``.

    Examples
    --------
    >>> import pandas as pd
    >>> from journeylab.attribution.paths import read_path_table
    >>> t = read_path_table(pd.DataFrame({"path": [("A",), ("B",)], "conversions": [3, 1],
    ...                                   "non_conversions": [2, 4]}))
    >>> conv, value, null = resample_counts(t, 5, seed=1)
    >>> (conv + null).sum(axis=1).tolist()
    [10.0, 10.0, 10.0, 10.0, 10.0]
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    cells = np.concatenate([table.conversions, table.non_conversions])
    total = cells.sum()
    r = table.n_paths
    if total <= 0:
        zeros = np.zeros((n_boot, r))
        return zeros, zeros.copy(), zeros.copy()
    draws = int(round(total)) if not np.all(cells == np.round(cells)) else int(total)
    draws = max(draws, 1)
    counts = rng.multinomial(draws, cells / total, size=n_boot).astype(float)
    if draws != total:
        counts *= total / draws
    conv, null = counts[:, :r], counts[:, r:]
    with np.errstate(invalid="ignore", divide="ignore"):
        per_conversion = np.where(table.conversions > 0, table.value / table.conversions, 0.0)
    return conv, conv * per_conversion, null


def bootstrap_credit(
    table: PathTable,
    *,
    shares: dict[str, sp.csr_array],
    chain: MarkovChain | None = None,
    n_boot: int = 200,
    seed: int = 0,
    progress: ProgressLike = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Bootstrap replicates of every model's credit.

    Parameters
    ----------
    table : PathTable
        The observed path table.
    shares : dict
        Model name → share matrix (paths × channels) of the linear models.
    chain : MarkovChain, optional
        A fitted chain on ``table``; adds ``"markov"``.
    n_boot, seed : int
        Number of replicates and the seed.
    progress : None, False or a tqdm-like factory
        Progress bar over Markov replicates of large chains (see :mod:`journeylab.core.progress`).

    Returns
    -------
    dict
        Model name → ``(conversion_credit, value_credit)``, each an
        ``(n_boot, n_channels)`` array.
    """
    conv, value, null = resample_counts(table, n_boot, seed)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, w in shares.items():
        out[name] = (np.asarray(w.T @ conv.T).T, np.asarray(w.T @ value.T).T)
    if chain is not None:
        c, v, _ = markov_credit(chain, conv, value, null, progress=progress)
        out["markov"] = (c, v)
    return out


def percentile_interval(
    replicates: np.ndarray, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval per column of ``replicates`` at confidence ``level``."""
    alpha = (1 - level) / 2
    low, high = np.quantile(replicates, [alpha, 1 - alpha], axis=0)
    return low, high


def _ranks(replicates: np.ndarray) -> np.ndarray:
    """Rank (1 = most credit) of each channel in each replicate; ties by channel order."""
    order = np.argsort(-replicates, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, replicates.shape[1] + 1)[None], axis=1)
    return ranks


def rank_probabilities(replicates: np.ndarray, channels: Sequence[str]) -> pd.DataFrame:
    """Probability each channel holds each rank across bootstrap replicates.

    Returns
    -------
    pandas.DataFrame
        Rows = channels, columns = ranks 1..n, each row summing to 1.
    """
    ranks = _ranks(replicates)
    n = len(channels)
    prob = np.stack([(ranks == k).mean(axis=0) for k in range(1, n + 1)], axis=1)
    return pd.DataFrame(
        prob,
        index=pd.Index(channels, name="channel"),
        columns=pd.Index(range(1, n + 1), name="rank"),
    )


def indistinguishable_pairs(
    replicates: np.ndarray,
    channels: Sequence[str],
    point: np.ndarray,
    level: float = 0.95,
) -> pd.DataFrame:
    """Pairs of channels whose order the bootstrap cannot settle at ``level``.

    A pair is indistinguishable when the percentile interval of the credit
    difference (higher-ranked minus lower-ranked, by the point estimate)
    contains 0. Pairs of channels with no credit in any replicate are left
    out (their tie says nothing).

    Returns
    -------
    pandas.DataFrame
        ``higher``, ``lower``, ``difference``, ``ci_low``, ``ci_high``,
        ``p_order`` (share of replicates keeping the point order), for the
        indistinguishable pairs only.
    """
    order = np.argsort(-np.asarray(point), kind="stable")
    hi_idx, lo_idx = np.triu_indices(len(order), k=1)
    i, j = order[hi_idx], order[lo_idx]
    credited = np.any(replicates != 0, axis=0) | (np.asarray(point) != 0)
    keep = credited[i] | credited[j]
    i, j = i[keep], j[keep]
    records = []
    if len(i):
        diff = replicates[:, i] - replicates[:, j]
        low, high = percentile_interval(diff, level)
        above = (diff > 0).mean(axis=0)
        for k in np.flatnonzero((low <= 0) & (high >= 0)):
            records.append(
                (
                    channels[i[k]],
                    channels[j[k]],
                    float(point[i[k]] - point[j[k]]),
                    float(low[k]),
                    float(high[k]),
                    float(above[k]),
                )
            )
    return pd.DataFrame(
        records, columns=["higher", "lower", "difference", "ci_low", "ci_high", "p_order"]
    )
