"""Exact Markov-chain attribution (removal effects) of order 1 to 4.

Each journey is a walk ``(start) → s1 → … → sn → (conversion | null)``. For
order ``k`` a state is the tuple of the last ``k`` channels (shorter at the
start of a path), so order 1 is the usual channel graph. Transition
probabilities are the observed transition counts (weighted by journeys)
divided by each state's outflow.

The probability of eventually converting from every state solves the
absorbing-chain system ``(I - Q) p = r`` (``Q``: transient-to-transient
probabilities, ``r``: probability of converting next), solved exactly with
sparse LU (:func:`scipy.sparse.linalg.spsolve`) — no simulation, so the
answer does not move with a seed or with the row order.

*Removal effect* of a channel: ``1 - P'(conversion) / P(conversion)`` where
``P'`` is computed with every state containing the channel removed (walks
that would enter it end in null). Small chains solve every removal in one
batched dense LU; larger ones (orders 3-4) push the walkers from the start
through all the removal systems at once until what is still in the chain can
no longer move the answer by 1e-15, and factorise each system instead when
loops keep walkers in the chain too long (:mod:`~journeylab.attribution.absorbing`).
Credit shares the total conversions (or value) in proportion to the removal
effects. The *value* chain uses the same walks with the reward of converting
from a state equal to the mean value of the conversions that followed it, so
its removal effects measure lost value.

Differences from ChannelAttribution worth knowing: its estimates come from
simulated walks whose length its default ``max_step`` truncates, which biases
removal effects downwards (on table D1: A 0.551 against the exact 0.559613);
its order ``k`` starts each walk at the first k-gram, while here the first
``k - 1`` states carry the shorter history (order 1 is identical); and it
shares total value by the conversion removal effects, while here value has
its own chain.

Note: a channel seen only in non-converting journeys can still earn Markov
credit when it leads into states that convert in other journeys (its removal
cuts those walks); Shapley and the rule-based models give it nothing.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from journeylab.attribution import absorbing
from journeylab.attribution.absorbing import (
    _principal,
    _solve,
    _transition_removals,
    _walk_from_start,
)
from journeylab.attribution.paths import PathTable, read_path_table
from journeylab.core.errors import ParameterError, check_in
from journeylab.core.progress import ProgressLike, track

__all__ = ["MarkovChain"]

START, CONVERSION, NULL = "(start)", "(conversion)", "(null)"


def _state_tuples(ch: np.ndarray, pos: np.ndarray, first: np.ndarray, k: int) -> list[tuple]:
    """Return the channels (at most ``k``, oldest first) of the states first met at ``first``."""
    width = np.minimum(pos[first], k - 1) + 1
    columns = [
        np.where(width > lag, ch[np.maximum(first - lag, 0)], -1).tolist()
        for lag in range(k - 1, -1, -1)
    ]
    return [tuple(c for c in cells if c >= 0) for cells in zip(*columns, strict=True)]


class MarkovChain:
    """Absorbing Markov chain over journeys, with exact removal effects.

    Parameters
    ----------
    order : int
        1 to 4: how many previous channels a state remembers.
    separator : str
        Used in state labels of higher orders (``"A > B"``).

    Attributes
    ----------
    states_ : list of str
        ``"(start)"``, the transient states, ``"(conversion)"``, ``"(null)"``.
    transition_matrix_ : scipy.sparse.csr_array
        Row-stochastic transition probabilities between ``states_`` (absorbing
        states loop on themselves).
    conversion_probability_ : pandas.Series
        Probability of eventually converting from each state.
    removal_effects_ : pandas.Series
        Per channel, ``1 - P'/P`` (in [0, 1]).
    value_removal_effects_ : pandas.Series
        The same on the value chain.
    credit_, value_credit_ : pandas.Series
        Total conversions (value) shared in proportion to the removal effects.

    Examples
    --------
    >>> import pandas as pd
    >>> paths = pd.DataFrame({"path": [("A", "B"), ("B",)], "conversions": [1, 0],
    ...                       "value": [10.0, 0.0], "non_conversions": [0, 1]})
    >>> MarkovChain(order=1).fit(paths).removal_effects_.round(3).to_dict()
    {'A': 0.5, 'B': 1.0}
    """

    def __init__(self, order: int = 1, *, separator: str = " > ") -> None:
        self.order = order
        self.separator = separator

    # -- fitting -----------------------------------------------------------------------
    def fit(self, paths: PathTable | pd.DataFrame, **read_options: Any) -> MarkovChain:
        """Build the chain from a path table and compute removal effects.

        Parameters
        ----------
        paths : PathTable or pandas.DataFrame
            A canonical :class:`PathTable` or a frame accepted by
            :func:`~journeylab.attribution.paths.read_path_table` (options
            such as ``separator=`` or ``collapse_repeats=`` are passed on).

        Returns
        -------
        MarkovChain
            ``self``, fitted.
        """
        check_in("order", self.order, [1, 2, 3, 4])
        table = paths if isinstance(paths, PathTable) else read_path_table(paths, **read_options)
        self.table_ = table
        self._build(table)
        self._fit_counts(table.conversions, table.value, table.non_conversions)
        return self

    def _build(self, table: PathTable) -> None:
        """States and the path → edge incidence (independent of the counts)."""
        k = self.order
        row, pos, ch, lengths = table.flat()
        base = len(table.channels) + 1
        if base**k >= 2**62:
            src_a, dst_a, rows, last, tuples = self._walk_states(table)
        else:
            # Encode each touch's state (its last k channels, shorter at the start
            # of a path) as one integer: base-(C+1) digits, 0 for "before the start".
            key = np.zeros(len(ch), dtype=np.int64)
            for lag in range(k - 1, -1, -1):
                digit = np.zeros(len(ch), dtype=np.int64)
                ok = pos >= lag
                digit[ok] = ch[np.flatnonzero(ok) - lag] + 1
                key = key * base + digit
            # States numbered in order of first appearance (1, 2, ...; 0 is the start).
            codes, _ = pd.factorize(key)
            state = codes.astype(np.int64) + 1
            # Codes are numbered in order of first appearance, so a state's first touch
            # is where the code exceeds every code before it.
            seen = np.maximum.accumulate(state)
            first = np.flatnonzero(np.r_[True, state[1:] > seen[:-1]]) if len(state) else state
            tuples = [()] + _state_tuples(ch, pos, first, k)
            src_a = np.zeros(len(ch), dtype=np.int64)
            inner = pos > 0
            src_a[inner] = state[np.flatnonzero(inner) - 1]
            dst_a = state
            rows = row
            last = np.zeros(table.n_paths, dtype=np.int64)
            ends = np.cumsum(lengths) - 1
            has = lengths > 0
            last[has] = state[ends[has]]
        n = len(tuples)
        # Distinct edges and how often each path walks them.
        # (np.unique with return_inverse, by hashing: only the few distinct edges are sorted)
        edge_code, edge_found = pd.factorize(src_a * n + dst_a)
        edge_order = np.argsort(edge_found)
        edge_id = np.asarray(edge_found)[edge_order]
        edge_rank = np.empty(len(edge_order), dtype=np.int64)
        edge_rank[edge_order] = np.arange(len(edge_order))
        edge_inverse = edge_rank[edge_code]
        self._n_states = n
        self._state_tuples = tuples
        self._edge_src = (edge_id // n).astype(np.int64)
        self._edge_dst = (edge_id % n).astype(np.int64)
        # Each touch's path and edge; the path × edge incidence matrix is built from them
        # when a batch of counts needs it (see ``_incidence``).
        self._walks = (np.asarray(rows, dtype=np.int64), edge_inverse.ravel(), table.n_paths)
        self.__dict__.pop("_incidence_matrix", None)
        self._last = last
        n_channels = len(table.channels)
        # Which channels each state holds, and its last channel (-1 for the start).
        sizes = np.fromiter(map(len, tuples), dtype=np.int64, count=n)
        held = np.fromiter(chain.from_iterable(tuples), dtype=np.int64, count=int(sizes.sum()))
        contains = np.zeros((n_channels, n), dtype=bool)
        contains[held, np.repeat(np.arange(n), sizes)] = True
        self._contains = contains
        self._last_channel = np.full(n, -1, dtype=np.int64)
        self._last_channel[sizes > 0] = held[np.cumsum(sizes)[sizes > 0] - 1]

    @property
    def _incidence(self) -> sp.csr_array:
        """Path × edge matrix: how many times each path walks each edge."""
        if "_incidence_matrix" not in self.__dict__:
            rows, edges, n_paths = self._walks
            self._incidence_matrix = sp.csr_array(
                (np.ones(len(rows)), (rows, edges)), shape=(n_paths, len(self._edge_src))
            )
        return self._incidence_matrix

    def _edge_weight(self, walkers: np.ndarray) -> np.ndarray:
        """Journeys walking each edge, for one vector of journeys per path."""
        rows, edges, _ = self._walks
        return np.bincount(edges, weights=walkers[rows], minlength=len(self._edge_src))

    def _walk_states(self, table: PathTable):
        """States of every touch by walking the paths (for very many channels)."""
        k = self.order
        index: dict[tuple[int, ...], int] = {}
        src: list[int] = []
        dst: list[int] = []
        rows: list[int] = []
        last = np.zeros(table.n_paths, dtype=np.int64)
        for i, p in enumerate(table.paths):
            prev = 0  # start
            for j in range(len(p)):
                state = p[max(0, j - k + 1) : j + 1]
                s = index.get(state)
                if s is None:
                    s = index[state] = len(index) + 1
                src.append(prev)
                dst.append(s)
                rows.append(i)
                prev = s
            last[i] = prev
        n = len(index) + 1
        tuples: list[tuple[int, ...]] = [()] * n
        for t, s in index.items():
            tuples[s] = t
        return (
            np.asarray(src, dtype=np.int64),
            np.asarray(dst, dtype=np.int64),
            np.asarray(rows, dtype=np.int64),
            last,
            tuples,
        )

    def _system(self, conv: np.ndarray, value: np.ndarray, null: np.ndarray):
        """``I - Q`` (sparse), the rewards ``[r, r_value]`` and the edge probabilities."""
        n = self._n_states
        edge_weight = self._edge_weight(conv + null)
        conv_in = np.bincount(self._last, weights=conv, minlength=n)
        value_in = np.bincount(self._last, weights=value, minlength=n)
        null_in = np.bincount(self._last, weights=null, minlength=n)
        out = np.bincount(self._edge_src, weights=edge_weight, minlength=n) + conv_in + null_in
        safe = np.where(out > 0, out, 1.0)
        prob = edge_weight / safe[self._edge_src]
        q = sp.csr_array((prob, (self._edge_src, self._edge_dst)), shape=(n, n))
        rewards = np.column_stack([conv_in / safe, value_in / safe])
        return q, rewards, (conv_in / safe, null_in / safe, prob)

    def _removal(
        self, conv: np.ndarray, value: np.ndarray, null: np.ndarray, *, solve_all: bool = True
    ):
        """Conversion probabilities and removal effects for the given counts.

        ``solve_all=False`` (the bootstrap) skips the conversion probability of every
        state and returns ``None`` in its place; the removal effects only need the start's.
        """
        q, rewards, parts = self._system(conv, value, null)
        n = self._n_states
        if n <= absorbing._DENSE_LIMIT:
            full, effects = self._removal_dense(conv[None], value[None], null[None])
            return full[0], effects[0], q, parts
        full = _solve(q, rewards) if solve_all else None
        keep = self._systems().T
        walked = _walk_from_start(q, rewards, parts[0] + parts[1], keep)
        if walked is not None:
            base, starts = walked[0], walked[1:]
        else:
            starts = self._removal_lu(q, rewards, full)
            base = (full if full is not None else _solve(q, rewards))[0]
        with np.errstate(invalid="ignore", divide="ignore"):
            effects = np.where(base > 0, 1.0 - starts / base, 0.0)
        return full, np.clip(effects, 0.0, 1.0), q, parts

    def _systems(self) -> np.ndarray:
        """States kept by each system: all of them, then without each channel (systems × states)."""
        return np.vstack([np.ones((1, self._n_states), dtype=bool), ~self._contains])

    def _removal_lu(self, q: sp.csr_array, rewards: np.ndarray, full: np.ndarray | None):
        """Return the start's conversion probability and value without each channel, by LU."""
        n = self._n_states
        n_channels = self._contains.shape[0]
        starts = np.zeros((n_channels, 2))
        # I - Q once; each removal solves the system of the states that remain, taken
        # from the entries of I - Q (the same matrix as indexing it, without its overhead).
        a = (sp.eye_array(n, format="csr") - q).tocoo() if n <= absorbing._SPARSE_LU_LIMIT else None
        for c in range(n_channels):
            kept = ~self._contains[c]
            keep = np.flatnonzero(kept)
            if a is None:
                guess = None if full is None else full[keep]
                x = _solve(q[keep][:, keep], rewards[keep], guess)
            elif len(keep) <= absorbing._DENSE_LIMIT:
                x = np.linalg.solve(_principal(a, kept).toarray(), rewards[keep])
            else:
                x = spla.spsolve(_principal(a, kept), rewards[keep])
            starts[c] = x[0]
        return starts

    def _removal_dense(self, conv: np.ndarray, value: np.ndarray, null: np.ndarray):
        """Batched exact solves for small chains: counts are ``(B, n_paths)``.

        Removing a channel zeroes its states' rows and columns of ``Q`` and their
        rewards, which keeps every system the same size, so all replicates and
        all removals go to LAPACK in one batched call.

        Returns ``full`` (B, n_states, 2) and ``effects`` (B, n_channels, 2).
        """
        n = self._n_states
        b_count = conv.shape[0]
        walkers = conv + null
        if b_count == 1:
            # One set of counts (a fit, not a bootstrap): plain weighted counts.
            edge_weight = self._edge_weight(walkers[0])[None]
            conv_in, value_in, null_in = (
                np.bincount(self._last, weights=w[0], minlength=n)[None]
                for w in (conv, value, null)
            )
            edges_out = np.bincount(self._edge_src, weights=edge_weight[0], minlength=n)[None]
        else:
            edge_weight = (self._incidence.T @ walkers.T).T
            last = sp.csr_array(
                (np.ones(len(self._last)), (np.arange(len(self._last)), self._last)),
                shape=(len(self._last), n),
            )
            conv_in = (last.T @ conv.T).T
            value_in = (last.T @ value.T).T
            null_in = (last.T @ null.T).T
            src = sp.csr_array(
                (np.ones(len(self._edge_src)), (np.arange(len(self._edge_src)), self._edge_src)),
                shape=(len(self._edge_src), n),
            )
            edges_out = (src.T @ edge_weight.T).T
        out = edges_out + conv_in + null_in
        safe = np.where(out > 0, out, 1.0)
        q = np.zeros((b_count, n, n))
        q[:, self._edge_src, self._edge_dst] = edge_weight / safe[:, self._edge_src]
        rewards = np.stack([conv_in / safe, value_in / safe], axis=-1)
        keep = self._systems().astype(float)
        n_sys = keep.shape[0]
        eye = np.eye(n)
        full = np.empty((b_count, n, 2))
        effects = np.empty((b_count, n_sys - 1, 2))
        chunk = max(1, int(2e7 // (n_sys * n * n)))
        for lo in range(0, b_count, chunk):
            hi = min(lo + chunk, b_count)
            a = eye - q[lo:hi, None] * keep[None, :, :, None] * keep[None, :, None, :]
            rhs = rewards[lo:hi, None] * keep[None, :, :, None]
            x = np.linalg.solve(a, rhs)
            base = x[:, 0, 0, :]
            full[lo:hi] = x[:, 0]
            with np.errstate(invalid="ignore", divide="ignore"):
                effects[lo:hi] = np.where(
                    base[:, None, :] > 0, 1.0 - x[:, 1:, 0, :] / base[:, None, :], 0.0
                )
        return full, np.clip(effects, 0.0, 1.0)

    def _fit_counts(self, conv: np.ndarray, value: np.ndarray, null: np.ndarray) -> None:
        full, effects, q, parts = self._removal(conv, value, null, solve_all=False)
        # Removal effects and credit as arrays; their Series, the state labels, the full
        # transition matrix and the conversion probability of every state are built when
        # first asked for.
        self._numbers = {
            "removal_effects_": (effects[:, 0], "removal_effect"),
            "value_removal_effects_": (effects[:, 1], "value_removal_effect"),
            "credit_": (_share(effects[:, 0], conv.sum()), "markov"),
            "value_credit_": (_share(effects[:, 1], value.sum()), "markov"),
        }
        for name in ("_labelled", "_states", "_transition_matrix", "_conversion_probability"):
            self.__dict__.pop(name, None)
        self._solution = (full, q, parts)

    def _series(self, name: str) -> pd.Series:
        """Return the Series ``name`` (see the class attributes), built once."""
        series = self.__dict__.setdefault("_labelled", {})
        if name not in series:
            channels = pd.Index(self.table_.channels, name="channel")
            for key, (values, label) in self._numbers.items():
                series[key] = pd.Series(values, index=channels, name=label)
        return series[name]

    removal_effects_ = property(lambda self: self._series("removal_effects_"))
    value_removal_effects_ = property(lambda self: self._series("value_removal_effects_"))
    credit_ = property(lambda self: self._series("credit_"))
    value_credit_ = property(lambda self: self._series("value_credit_"))

    @property
    def states_(self) -> list[str]:
        """``"(start)"``, the transient states, ``"(conversion)"``, ``"(null)"``."""
        if "_states" not in self.__dict__:
            self._solution  # noqa: B018 (AttributeError before fitting)
            labels = [START] + [self._label(t) for t in self._state_tuples[1:]]
            self._states = labels + [CONVERSION, NULL]
        return self._states

    @property
    def transition_matrix_(self) -> sp.csr_array:
        """Row-stochastic transition probabilities between ``states_``."""
        if "_transition_matrix" not in self.__dict__:
            _, q, parts = self._solution
            n = self._n_states
            conv_p, null_p, _ = parts
            absorbing = sp.csr_array(
                (
                    np.concatenate([conv_p, null_p, [1.0, 1.0]]),
                    (
                        np.concatenate([np.arange(n), np.arange(n), [n, n + 1]]),
                        np.concatenate([np.full(n, n), np.full(n, n + 1), [n, n + 1]]),
                    ),
                ),
                shape=(n + 2, n + 2),
            )
            q_full = sp.csr_array((q.data, q.indices, q.indptr), shape=(n, n))
            q_full.resize((n + 2, n + 2))
            self._transition_matrix = (q_full + absorbing).tocsr()
        return self._transition_matrix

    @property
    def conversion_probability_(self) -> pd.Series:
        """Probability of eventually converting from each state."""
        if "_conversion_probability" not in self.__dict__:
            full, q, _ = self._solution
            if full is None:
                table = self.table_
                full = _solve(
                    q, self._system(table.conversions, table.value, table.non_conversions)[1]
                )
            self._conversion_probability = pd.Series(
                np.concatenate([full[:, 0], [1.0, 0.0]]),
                index=pd.Index(self.states_, name="state"),
                name="conversion_probability",
            )
        return self._conversion_probability

    def _label(self, t: tuple[int, ...]) -> str:
        return self.separator.join(self.table_.channels[c] for c in t)

    # -- reuse -------------------------------------------------------------------------
    def transitions_frame(self) -> pd.DataFrame:
        """Tidy transition probabilities: ``from``, ``to``, ``probability``."""
        m = self.transition_matrix_.tocoo()
        states = np.asarray(self.states_, dtype=object)
        return pd.DataFrame(
            {"from": states[m.row], "to": states[m.col], "probability": m.data}
        ).sort_values(["from", "to"], ignore_index=True)

    def transition_effects(self, top: int | None = None) -> pd.DataFrame:
        """Compute the removal effect of each observed channel-to-channel transition.

        The transition ``a > b`` is removed by sending every walk that would
        go from a state ending in ``a`` to a state ending in ``b`` to null; its
        removal effect is the relative drop of the conversion probability.

        Parameters
        ----------
        top : int, optional
            Keep only the ``top`` transitions with the largest effect.

        Returns
        -------
        pandas.DataFrame
            ``transition`` ("a > b"), ``from``, ``to``, ``journeys`` (walks
            through it, weighted), ``removal_effect``, ``value_removal_effect``,
            sorted by removal effect.
        """
        if not hasattr(self, "table_"):
            raise ParameterError("fit the chain before asking for transition effects.")
        table = self.table_
        conv, value, null = table.conversions, table.value, table.non_conversions
        q, rewards, _ = self._system(conv, value, null)
        n = self._n_states
        full = _solve(q, rewards)
        base = full[0]
        edge_weight = self._edge_weight(conv + null)
        inner = self._edge_src > 0
        pair = np.where(
            inner,
            self._last_channel[self._edge_src] * len(table.channels)
            + self._last_channel[self._edge_dst],
            -1,
        )
        pairs = np.unique(pair[inner])
        records = []
        qc = q.tocoo()
        # Map each coo entry to its pair id.
        entry_pair = np.where(
            qc.row > 0,
            self._last_channel[qc.row] * len(table.channels) + self._last_channel[qc.col],
            -1,
        )
        effects = np.zeros((len(pairs), 2))
        if n <= absorbing._DENSE_LIMIT and len(pairs):
            # One batched dense solve: a copy of I - Q per removed transition.
            a = np.broadcast_to(np.eye(n) - q.toarray(), (len(pairs), n, n)).copy()
            for k, pid in enumerate(pairs):
                drop = entry_pair == pid
                a[k, qc.row[drop], qc.col[drop]] = 0.0
            x = np.linalg.solve(a, np.broadcast_to(rewards, (len(pairs), n, 2)))[:, 0, :]
            with np.errstate(invalid="ignore", divide="ignore"):
                effects = np.where(base > 0, 1.0 - x / base, 0.0)
        elif n <= absorbing._WOODBURY_LIMIT and len(pairs):
            effects = _transition_removals(q, qc, entry_pair=entry_pair, pairs=pairs, full=full)
            with np.errstate(invalid="ignore", divide="ignore"):
                effects = np.where(base > 0, 1.0 - effects / base, 0.0)
        else:
            for k, pid in enumerate(pairs):
                drop = entry_pair == pid
                q2 = sp.csr_array((np.where(drop, 0.0, qc.data), (qc.row, qc.col)), shape=(n, n))
                x = _solve(q2, rewards, full)[0]
                with np.errstate(invalid="ignore", divide="ignore"):
                    effects[k] = np.where(base > 0, 1.0 - x / base, 0.0)
        effects = np.clip(effects, 0.0, 1.0)
        for k, pid in enumerate(pairs):
            a_ch, b_ch = divmod(int(pid), len(table.channels))
            records.append(
                (
                    f"{table.channels[a_ch]}{self.separator}{table.channels[b_ch]}",
                    table.channels[a_ch],
                    table.channels[b_ch],
                    float(edge_weight[pair == pid].sum()),
                    float(effects[k, 0]),
                    float(effects[k, 1]),
                )
            )
        out = pd.DataFrame(
            records,
            columns=[
                "transition",
                "from",
                "to",
                "journeys",
                "removal_effect",
                "value_removal_effect",
            ],
        )
        # Effects equal to rounding error are ties, listed by transition name.
        rank = np.lexsort((out["transition"].to_numpy(), -out["removal_effect"].round(12)))
        out = out.iloc[rank].reset_index(drop=True)
        return out.head(top) if top is not None else out


def _share(effects: np.ndarray, total: float) -> np.ndarray:
    s = effects.sum()
    if s <= 0 or total <= 0:
        return np.zeros_like(effects)
    return effects / s * total


def markov_credit(
    chain: MarkovChain,
    conv: np.ndarray,
    value: np.ndarray,
    null: np.ndarray,
    progress: ProgressLike = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Credit (conversions, value) and removal effects for other counts on a built chain.

    Counts may be one row per path (``(n_paths,)``) or a batch ``(B, n_paths)``;
    the outputs then gain the leading ``B`` dimension. Large chains are solved
    one batch row at a time, with a progress bar (see :mod:`journeylab.core.progress`).
    """
    single = conv.ndim == 1
    conv, value, null = np.atleast_2d(conv), np.atleast_2d(value), np.atleast_2d(null)
    if chain._n_states <= absorbing._DENSE_LIMIT:
        _, effects = chain._removal_dense(conv, value, null)
    else:
        rows = zip(conv, value, null, strict=True)
        effects = np.stack(
            [
                chain._removal(c, v, u, solve_all=False)[1]
                for c, v, u in track(
                    rows, total=len(conv), desc="Markov replicates", progress=progress
                )
            ]
        )
    credit = np.stack([_share(e[:, 0], t) for e, t in zip(effects, conv.sum(axis=1), strict=True)])
    vcredit = np.stack(
        [_share(e[:, 1], t) for e, t in zip(effects, value.sum(axis=1), strict=True)]
    )
    if single:
        return credit[0], vcredit[0], effects[0, :, 0]
    return credit, vcredit, effects[:, :, 0]
