"""Linear algebra of the absorbing chains of :mod:`journeylab.attribution.markov`.

Every solve is exact (to machine precision): dense or sparse LU, the fixed point
of ``p = Q p + r`` for very large chains (checked against its residual), the walk
from the start for removal effects (stopped by a bound on what the walkers still
in the chain can add) and the Woodbury identity for removed transitions. The size
limits that choose between them are module attributes, read at call time.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

#: Below this many states a dense LU solve is faster than a sparse one; both are exact.
_DENSE_LIMIT = 300
#: Up to this many states the sparse LU (spsolve) is used; beyond it the LU of a
#: high-order chain fills in badly, and the fixed point ``p = Q p + r`` (which
#: converges geometrically because every walk is absorbed) is iterated to machine
#: precision instead, falling back to spsolve if it does not converge.
_SPARSE_LU_LIMIT = 4000
#: Up to this many states the removal of each transition is solved from one dense
#: inverse by the Woodbury identity instead of one sparse LU per transition.
_WOODBURY_LIMIT = 2000
#: Steps the walkers from the start are followed (see ``_walk_from_start``) before the
#: removal systems are factorised instead (a chain with long-lived loops).
_WALK_STEPS = 1000


def _solve(q: sp.csr_array, b: np.ndarray, x0: np.ndarray | None = None) -> np.ndarray:
    """Solve ``(I - Q) x = b`` exactly (to machine precision)."""
    n = q.shape[0]
    if n <= _DENSE_LIMIT:
        return np.linalg.solve(np.eye(n) - q.toarray(), b)
    a = (sp.eye_array(n, format="csc") - q.tocsc()).tocsc()
    if n > _SPARSE_LU_LIMIT:
        x = np.zeros_like(b) if x0 is None else x0.copy()
        scale = max(float(np.abs(b).max()), 1e-300)
        for _ in range(20_000):
            x_new = q @ x + b
            if np.abs(x_new - x).max() <= 1e-15 * scale * max(1.0, float(np.abs(x_new).max())):
                if np.abs(a @ x_new - b).max() <= 1e-12 * scale:
                    return x_new
                break
            x = x_new
    x = spla.spsolve(a, b)
    return x.reshape(b.shape)


def _walk_from_start(
    q: sp.csr_array, rewards: np.ndarray, absorbed: np.ndarray, keep: np.ndarray
) -> np.ndarray | None:
    """Return the start's conversion probability and value in each system of ``keep``.

    ``keep`` (states × systems, bool) marks the states each system keeps: removing a
    channel sends the walkers that would enter its states to null. From the start,
    the walkers' distribution is pushed through ``Q`` one step at a time; summed over
    the steps it is the expected number of visits to each state, and visits times
    the rewards is the start's solution of ``(I - Q) x = r``. The walkers still in the
    chain after a step can add at most their mass times the largest reward per
    absorbed walker (``absorbed``: each state's probability of leaving the chain), so
    the walk stops when that bound is below 1e-15 of the start's value: the result
    is exact to machine precision. Returns ``(systems, 2)``, or None when loops keep
    walkers in the chain past ``_WALK_STEPS`` steps (the caller then factorises).
    """
    n, n_sys = keep.shape
    mask = keep.astype(float)
    step_matrix = q.T.tocsr()
    with np.errstate(invalid="ignore", divide="ignore"):
        # A reward where no walker is absorbed (value without journeys) leaves no bound.
        ratio = np.where(rewards > 0, np.inf, 0.0)
        ratio = np.where(absorbed[:, None] > 0, rewards / absorbed[:, None], ratio)
        per_walker = ratio.max(axis=0)
    walk = np.zeros((n, n_sys))
    walk[0] = mask[0]
    visits = walk.copy()
    for step in range(1, _WALK_STEPS + 1):
        walk = (step_matrix @ walk) * mask
        visits += walk
        if step % 8 and step < _WALK_STEPS:
            continue
        found = visits.T @ rewards
        # What the walkers still in each system can add, at most.
        alive = walk.sum(axis=0)[:, None]
        left = np.where(alive > 0, alive * per_walker[None, :], 0.0)
        base = found[0]
        done = (left <= 1e-15 * base) | ((base == 0) & (left[0] == 0))
        if done.all():
            return found
    return None


def _principal(a: sp.coo_array, kept: np.ndarray) -> sp.csc_array:
    """Return the rows and columns ``kept`` (a boolean mask) of ``a`` as a CSC matrix."""
    new_id = np.cumsum(kept) - 1
    entry = kept[a.row] & kept[a.col]
    size = int(new_id[-1]) + 1 if len(kept) else 0
    return sp.csc_array(
        (a.data[entry], (new_id[a.row[entry]], new_id[a.col[entry]])), shape=(size, size)
    )


def _transition_removals(
    q: sp.csr_array,
    qc: sp.coo_array,
    *,
    entry_pair: np.ndarray,
    pairs: np.ndarray,
    full: np.ndarray,
) -> np.ndarray:
    """Conversion probabilities from the start with each transition pair removed.

    Removing a pair zeroes the entries ``D`` of ``Q`` (rows ``R``), so the
    system becomes ``(A + E_R D_R) x' = r`` with ``A = I - Q``. One inverse
    (dense, up to ``_WOODBURY_LIMIT`` states) of ``A`` serves every pair through the
    Woodbury identity:
    ``x'[0] = x[0] - A⁻¹[0, R] S⁻¹ D_R x`` with ``S = I + D_R A⁻¹[:, R]``
    (``S`` is invertible because ``A + E_R D_R`` is). Exact, like one solve per
    pair, with a single factorisation.

    Returns an array ``(len(pairs), 2)`` of the two start probabilities.
    """
    n = q.shape[0]
    inverse = np.linalg.inv(np.eye(n) - q.toarray())
    start_row = inverse[0]
    out = np.empty((len(pairs), 2))
    for k, pid in enumerate(pairs):
        drop = np.flatnonzero(entry_pair == pid)
        rows, local = np.unique(qc.row[drop], return_inverse=True)
        d = sp.csr_array((qc.data[drop], (local.ravel(), qc.col[drop])), shape=(len(rows), n))
        s_mat = np.eye(len(rows)) + d @ inverse[:, rows]
        out[k] = full[0] - start_row[rows] @ np.linalg.solve(s_mat, d @ full)
    return out
