"""Shapley-value attribution over channel sets.

The coalition game: ``v(S)`` = conversions (or value) of the journeys whose
set of channels is contained in ``S``. Because ``v`` is a sum of unanimity
games — each journey contributes its conversions to every coalition that
contains all its channels — the Shapley value splits each journey's
conversions equally over its *distinct* channels. That closed form is exact
for any number of channels (``method="exact"``, the default) and is what the
two textbook routes converge to:

* ``method="enumerate"``: subset enumeration over the channels (vectorised
  numpy over all ``2**n`` coalitions; up to 20 channels), the classic formula
  ``sum |S|!(n-|S|-1)!/n! (v(S+j) - v(S))``;
* ``method="permutation"``: seeded Monte-Carlo over random channel orders,
  with the standard error of each channel's estimate.

Consequences worth knowing: a channel seen only in non-converting journeys
gets no Shapley credit (``v`` counts conversions only), and the order of the
touches plays no part (use Markov of order >= 2 for sequence effects).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from journeylab.attribution.heuristics import distinct_channels
from journeylab.attribution.paths import PathTable
from journeylab.core.errors import ParameterError, check_in

__all__ = ["shapley", "ShapleyMethod", "ENUMERATION_LIMIT"]

ShapleyMethod = Literal["exact", "enumerate", "permutation"]
#: Most channels subset enumeration accepts (2**20 coalitions).
ENUMERATION_LIMIT = 20


def _set_masks(table: PathTable) -> np.ndarray:
    masks = np.zeros(table.n_paths, dtype=np.int64)
    for i, p in enumerate(table.paths):
        for c in set(p):
            masks[i] |= 1 << c
    return masks


def _enumerate(table: PathTable, weights: np.ndarray) -> np.ndarray:
    n = len(table.channels)
    if n > ENUMERATION_LIMIT:
        raise ParameterError(
            f"method='enumerate' with {n} channels, must be <= {ENUMERATION_LIMIT}; "
            "use method='exact' (same values) or 'permutation'."
        )
    size = 1 << n
    # v(S) as the subset-sum (zeta) transform of the weight of each exact set.
    v = np.bincount(_set_masks(table), weights=weights, minlength=size).astype(float)
    coalitions = np.arange(size)
    for j in range(n):
        bit = 1 << j
        has = (coalitions & bit) != 0
        v[has] += v[coalitions[has] ^ bit]
    popcount = np.zeros(size, dtype=np.int64)
    for j in range(n):
        popcount += (coalitions >> j) & 1
    # Weight |S|!(n-|S|-1)!/n! for coalitions S without the player.
    from scipy.special import gammaln

    k = np.arange(n)
    w = np.exp(gammaln(k + 1) + gammaln(n - k) - gammaln(n + 1))
    out = np.zeros(n)
    for j in range(n):
        bit = 1 << j
        without = coalitions[(coalitions & bit) == 0]
        out[j] = np.sum(w[popcount[without]] * (v[without | bit] - v[without]))
    return out


def _permutation(
    table: PathTable, weights: np.ndarray, n_permutations: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    n = len(table.channels)
    rng = np.random.default_rng(seed)
    # Padded matrix of each path's distinct channels (-1 = none).
    sets = [sorted(set(p)) for p in table.paths]
    width = max((len(s) for s in sets), default=0)
    pad = np.full((table.n_paths, max(width, 1)), -1, dtype=np.int64)
    for i, s in enumerate(sets):
        pad[i, : len(s)] = s
    valid = pad >= 0
    totals = np.zeros((n_permutations, n))
    chunk = max(1, 2_000_000 // max(pad.size, 1))
    for start in range(0, n_permutations, chunk):
        m = min(chunk, n_permutations - start)
        position = np.argsort(rng.random((m, n)), axis=1)
        rank = np.empty_like(position)
        np.put_along_axis(rank, position, np.arange(n)[None].repeat(m, 0), axis=1)
        # A journey's conversions go to the channel of its set that arrives last
        # in the order: that is the only marginal contribution it makes.
        pos = np.where(valid[None], rank[:, np.where(valid, pad, 0)], -1)
        last = pad[np.arange(table.n_paths)[None, :], pos.argmax(axis=2)]
        has = valid.any(axis=1)
        flat = (last + n * np.arange(m)[:, None])[:, has].ravel()
        totals[start : start + m] = np.bincount(
            flat, weights=np.tile(weights[has], m), minlength=m * n
        ).reshape(m, n)
    mean = totals.mean(axis=0)
    se = (
        totals.std(axis=0, ddof=1) / np.sqrt(n_permutations)
        if n_permutations > 1
        else (np.full(n, np.nan))
    )
    return mean, se


def shapley(
    table: PathTable,
    *,
    value: bool = False,
    method: ShapleyMethod = "exact",
    n_permutations: int = 2_000,
    seed: int = 0,
) -> pd.DataFrame:
    """Shapley credit per channel of the set-based coalition game.

    Parameters
    ----------
    table : PathTable
        Canonical path table.
    value : bool
        Credit conversion value instead of conversions.
    method : {"exact", "enumerate", "permutation"}
        Closed form (exact, any size), subset enumeration (exact, <= 20
        channels) or seeded permutation sampling (approximate).
    n_permutations, seed : int
        Sampling settings of ``method="permutation"``.

    Returns
    -------
    pandas.DataFrame
        Indexed by channel: ``credit`` and ``standard_error`` (0 for the exact
        methods).

    Examples
    --------
    >>> import pandas as pd
    >>> from journeylab.attribution.paths import read_path_table
    >>> t = read_path_table(pd.DataFrame({"path": [("A", "B"), ("A",)],
    ...                                   "conversions": [2, 1]}))
    >>> shapley(t)["credit"].to_dict()
    {'A': 2.0, 'B': 1.0}
    """
    check_in("shapley_method", method, ["exact", "enumerate", "permutation"])
    weights = table.value if value else table.conversions
    se = np.zeros(len(table.channels))
    if method == "exact":
        credit = distinct_channels(table).T @ weights
    elif method == "enumerate":
        credit = _enumerate(table, weights)
    else:
        if n_permutations < 2:
            raise ParameterError(f"n_permutations == {n_permutations}, must be >= 2.")
        credit, se = _permutation(table, weights, n_permutations, seed)
    return pd.DataFrame(
        {"credit": credit, "standard_error": se},
        index=pd.Index(table.channels, name="channel"),
    )
