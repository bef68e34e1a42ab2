"""The canonical path table: distinct channel paths as integer codes, with their outcomes.

:class:`PathTable` is what every attribution model reads: the channel names
sorted, each distinct path once (as codes into those names, in touch order, the
paths in the order of their names), and the conversions, conversion value and
non-conversions of the journeys that followed each path. It lives beside the
journeys because they build it: :func:`journeylab.journeys.build.path_table`
with ``coded=True`` returns it straight from its scan's codes
(:meth:`PathTable.from_codes`); :func:`journeylab.attribution.paths.read_path_table`
builds the same table from a frame of named paths. Both end in
:func:`canonical_table`, so both give the same table for the same paths:

* channel names are Unicode-normalised (NFKC) and stripped of surrounding
  white space, so ``"Paid Search"`` and ``"Paid\u3000Search "`` are one channel;
* rows with the same path are summed, so row order and splitting a row change
  nothing;
* consecutive repeats of a channel are collapsed (``A > A > B`` becomes
  ``A > B``) unless ``collapse_repeats=False``;
* fractional counts are kept as weights, never rounded;
* paths with no touch but with conversions are an error, or become the
  explicit channel ``"(direct)"`` with ``empty_paths="direct"``.
"""

from __future__ import annotations

import copy
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Literal

import numpy as np
import pandas as pd

from journeylab.core.errors import DataError, ParameterError, check_in
from journeylab.journeys.rules import DIRECT

__all__ = ["DIRECT", "PathTable", "canonical_table", "normalise_channel"]

EmptyPaths = Literal["error", "direct"]


def normalise_channel(name: str) -> str:
    """Return the canonical spelling of a channel name (NFKC, stripped).

    Examples
    --------
    >>> normalise_channel(" Paid\u3000Search ")
    'Paid Search'
    """
    return unicodedata.normalize("NFKC", name).strip()


def _whole_numbers(what: str, given: Any) -> np.ndarray:
    """``given`` as a one-dimensional int64 array, or a ParameterError saying what is wrong."""
    arr = np.asarray(given)
    if arr.ndim != 1 or (len(arr) and arr.dtype.kind not in "iu"):
        raise ParameterError(f"{what} must be a one-dimensional array of whole numbers.")
    if len(arr) and arr.dtype.kind == "u" and int(arr.max()) > np.iinfo(np.int64).max:
        raise ParameterError(f"{what} holds {int(arr.max())}, past the largest code (2**63 - 1).")
    return arr.astype(np.int64)


def _weights(what: str, given: Any, n: int) -> np.ndarray:
    """Return the counts of each path as floats, checked: finite, >= 0, one per path."""
    if given is None:
        return np.zeros(n)
    try:
        arr = np.asarray(given, dtype=float)
    except (TypeError, ValueError):
        raise ParameterError(f"{what} must hold numbers, one per path.") from None
    if arr.shape != (n,):
        raise ParameterError(f"{what} must hold one number per path ({n:,}).")
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise ParameterError(f"{what} must be finite and >= 0 on every path.")
    return arr


def _canonical_name(
    name: Any,
    touch: np.ndarray,
    lengths: np.ndarray,
    code: int,
    *,
    column: str,
    source: str | None,
) -> str:
    """Return the canonical spelling of one touched name; raise naming the paths if there is none."""
    if isinstance(name, str):
        canonical = normalise_channel(name)
        if canonical:
            return canonical
        problem = f"an empty name ({name!r} once surrounding spaces are removed)"
    else:
        problem = f"a name that is not text ({name!r})"
    rows = np.unique(np.repeat(np.arange(len(lengths)), lengths)[touch == code]).tolist()
    raise DataError(
        f"The paths have {problem}.",
        source=source,
        column=column,
        rows=rows,
        hint="give every touch a name (e.g. fill missing channels) before building the paths.",
    )


@dataclass(frozen=True)
class PathTable:
    """Distinct channel paths with their outcomes, ready for the models.

    Attributes
    ----------
    channels : tuple of str
        Channel names, sorted.
    paths : tuple of tuple of int
        One path per row, as indices into ``channels`` (in touch order).
    conversions, value, non_conversions : numpy.ndarray
        Weights of the journeys that followed each path (float, >= 0).
    notes : tuple of str
        What canonicalisation changed, in plain words.
    attrs : dict
        What the table was built with, as ``path_table(..., coded=True)`` records it
        (``left_out``, ``settings``, ``censoring``; see
        :func:`journeylab.journeys.build.path_table`); empty otherwise.
    """

    channels: tuple[str, ...]
    paths: tuple[tuple[int, ...], ...]
    conversions: np.ndarray
    value: np.ndarray
    non_conversions: np.ndarray
    notes: tuple[str, ...] = field(default=())
    attrs: dict[str, Any] = field(default_factory=dict, compare=False)

    def __getattr__(self, name: str) -> Any:
        # ``paths`` of a table read by read_path_table is built from the flat touch
        # arrays when first asked for (most models only need the flat arrays).
        if name == "paths" and "_flat" in self.__dict__:
            _, _, channel, lengths = self.__dict__["_flat"]
            coded = channel.tolist()
            ends = np.cumsum(lengths)
            starts = (ends - lengths).tolist()
            paths = tuple(tuple(coded[lo:hi]) for lo, hi in zip(starts, ends.tolist(), strict=True))
            object.__setattr__(self, "paths", paths)
            return paths
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @classmethod
    def _from_flat(
        cls,
        channels: tuple[str, ...],
        flat: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
        counts: tuple[np.ndarray, np.ndarray, np.ndarray],
        notes: tuple[str, ...] = (),
        *,
        attrs: dict[str, Any] | None = None,
    ) -> PathTable:
        """Build a table from its paths as flat touch arrays (see :meth:`flat`)."""
        out = object.__new__(cls)
        conversions, value, non_conversions = counts
        for name, v in (
            ("channels", channels),
            ("conversions", conversions),
            ("value", value),
            ("non_conversions", non_conversions),
            ("notes", notes),
            ("attrs", copy.deepcopy(attrs or {})),
            ("_flat", flat),
        ):
            object.__setattr__(out, name, v)
        return out

    @classmethod
    def from_codes(
        cls,
        names: Sequence[str],
        touches: Any,
        lengths: Any,
        conversions: Any,
        value: Any = None,
        non_conversions: Any = None,
        *,
        collapse_repeats: bool = True,
        empty_paths: EmptyPaths = "error",
        channels: Iterable[str] = (),
        column: str = "path",
        source: str | None = None,
    ) -> PathTable:
        """Build the canonical table from paths given as integer codes of channel names.

        The same table :func:`journeylab.attribution.paths.read_path_table` gives
        for the paths written out as tuples of names, without making those tuples:
        what ``path_table(..., coded=True)`` uses.

        Parameters
        ----------
        names : sequence of str
            The name of each code (code ``i`` is ``names[i]``). Names no touch
            uses are left out, unless listed in ``channels``.
        touches : array of int
            The code of every touch, path after path, in touch order.
        lengths : array of int
            The touches of each path (0 for a journey without any touch).
        conversions, value, non_conversions : array of float
            Per path, finite and >= 0; ``value`` and ``non_conversions`` default to 0.
        collapse_repeats, empty_paths, channels
            As for ``read_path_table``: repeats are collapsed after the names are
            normalised, so ``"Email"`` then ``"Email "`` is one touch.
        column, source : str, optional
            What the paths are and where they came from, for error messages.

        Examples
        --------
        >>> t = PathTable.from_codes(["b", "a", "c"], [1, 0, 0], [2, 1], [3, 1], non_conversions=[2, 5])
        >>> t.channels, t.paths, t.conversions.tolist()
        (('a', 'b'), ((0, 1), (1,)), [3.0, 1.0])
        """
        check_in("empty_paths", empty_paths, ["error", "direct"])
        touch = _whole_numbers("touches", touches)
        sizes = _whole_numbers("lengths", lengths)
        n = len(sizes)
        if (sizes < 0).any() or int(sizes.sum()) != len(touch):
            raise ParameterError(
                f"lengths must be >= 0 and sum to the {len(touch):,} touches; "
                f"they sum to {int(sizes.sum()):,}."
            )
        if len(touch) and (int(touch.min()) < 0 or int(touch.max()) >= len(names)):
            raise ParameterError(
                f"touch codes must lie in [0, {len(names)}), the codes of names; "
                f"found {int(touch.min())} to {int(touch.max())}."
            )
        counts = tuple(
            _weights(what, given, n)
            for what, given in (
                ("conversions", conversions),
                ("value", value),
                ("non_conversions", non_conversions),
            )
        )
        # only the names some touch uses, renumbered in their order
        used = np.unique(touch).tolist()
        renumber = np.zeros(len(names), dtype=np.int64)
        renumber[used] = np.arange(len(used))
        canonical = [
            _canonical_name(names[i], touch, sizes, i, column=column, source=source) for i in used
        ]
        changed = {names[i] for i, c in zip(used, canonical, strict=True) if c != names[i]}
        notes = []
        if changed:
            notes.append(
                f"{len(changed)} channel spelling(s) normalised (Unicode NFKC, surrounding "
                "spaces removed)."
            )
        return canonical_table(
            canonical,
            renumber[touch],
            sizes,
            counts,
            notes=notes,
            collapse_repeats=collapse_repeats,
            empty_paths=empty_paths,
            channels=channels,
            column=column,
            source=source,
        )

    def with_channels(self, channels: Iterable[str]) -> PathTable:
        """Return the table listing ``channels`` too (0 credit when no path touches them)."""
        extra = {normalise_channel(str(c)) for c in channels} - set(self.channels)
        if not extra:
            return self
        return self._rebuilt(collapse_repeats=False, channels=extra)

    def collapsed(self) -> PathTable:
        """Return the table with consecutive repeats of a channel collapsed (itself when none)."""
        row, _, touch, _ = self.flat()
        if not ((touch[1:] == touch[:-1]) & (row[1:] == row[:-1])).any():
            return self
        return self._rebuilt(collapse_repeats=True, channels=())

    def _rebuilt(self, *, collapse_repeats: bool, channels: Iterable[str]) -> PathTable:
        """Return the table made canonical again, its repeats collapsed or ``channels`` added.

        Its notes are this table's, then what the rebuild did that they do not say yet.
        """
        _, _, touch, lengths = self.flat()
        out = canonical_table(
            self.channels,
            touch,
            lengths,
            (self.conversions, self.value, self.non_conversions),
            notes=[],
            collapse_repeats=collapse_repeats,
            empty_paths="error",
            channels=channels,
            column="path",
            source=None,
        )
        notes = self.notes + tuple(n for n in out.notes if n not in self.notes)
        object.__setattr__(out, "notes", notes)
        return out.with_attrs(self.attrs)

    def with_attrs(self, attrs: dict[str, Any]) -> PathTable:
        """Return the same table with a copy of ``attrs`` as its record."""
        out = copy.copy(self)
        object.__setattr__(out, "attrs", copy.deepcopy(dict(attrs)))
        return out

    @property
    def n_paths(self) -> int:
        """Number of distinct paths."""
        return len(self.conversions)

    @property
    def journeys(self) -> np.ndarray:
        """Journeys per path (conversions + non-conversions)."""
        return self.conversions + self.non_conversions

    def path_labels(self, separator: str = " > ") -> list[str]:
        """Paths as readable strings (``"A > B"``)."""
        return [separator.join(self.channels[c] for c in p) for p in self.paths]

    def flat(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Touches as flat arrays: ``(row, position, channel, path_length)``.

        ``row``, ``position`` and ``channel`` have one entry per touch;
        ``path_length`` one per path.
        """
        cached = self.__dict__.get("_flat")
        if cached is None:
            lengths = np.fromiter(map(len, self.paths), dtype=np.int64, count=self.n_paths)
            channel = np.fromiter(
                chain.from_iterable(self.paths), dtype=np.int64, count=int(lengths.sum())
            )
            row = np.repeat(np.arange(self.n_paths), lengths)
            starts = np.cumsum(lengths) - lengths
            position = np.arange(len(channel)) - np.repeat(starts, lengths)
            cached = (row, position, channel, lengths)
            for a in cached:
                a.flags.writeable = False
            # Paths never change, so the flat arrays are computed once per table.
            object.__setattr__(self, "_flat", cached)
        return cached

    def with_counts(
        self, conversions: np.ndarray, value: np.ndarray, non_conversions: np.ndarray
    ) -> PathTable:
        """Return the same paths with other counts (used by the bootstrap)."""
        if "paths" not in self.__dict__:
            counts = (conversions, value, non_conversions)
            return PathTable._from_flat(
                self.channels, self._flat, counts, self.notes, attrs=self.attrs
            )
        out = PathTable(
            self.channels, self.paths, conversions, value, non_conversions, self.notes, self.attrs
        )
        if "_flat" in self.__dict__:
            object.__setattr__(out, "_flat", self._flat)
        return out

    def to_frame(self) -> pd.DataFrame:
        """Return the canonical table (path as a tuple of names, one row per path)."""
        return pd.DataFrame(
            {
                "path": [tuple(self.channels[c] for c in p) for p in self.paths],
                "conversions": self.conversions,
                "value": self.value,
                "non_conversions": self.non_conversions,
            }
        )


def canonical_table(
    names: Sequence[str],
    raw_touch: np.ndarray,
    lengths: np.ndarray,
    counts: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    notes: list[str],
    collapse_repeats: bool,
    empty_paths: EmptyPaths,
    channels: Iterable[str],
    column: str,
    source: str | None,
) -> PathTable:
    """Build the canonical table from touches coded by ``names`` (already canonical spellings).

    The one place a :class:`PathTable` is made canonical, from codes or from named paths.

    ``raw_touch`` holds one code per touch, in path then touch order; ``lengths``
    the touches of each row; ``counts`` the conversions, value and
    non-conversions of each row (checked: finite and >= 0).
    """
    conv, val, null = counts
    n = len(lengths)
    empty = lengths == 0
    empty_converting = empty & ((conv > 0) | (val > 0))
    add_direct = False
    if empty_converting.any():
        rows = np.flatnonzero(empty_converting).tolist()
        if empty_paths == "error":
            raise DataError(
                f"{len(rows)} path row(s) have conversions but no touch, so no channel "
                "can be credited.",
                source=source,
                column=column,
                rows=rows,
                hint=f"pass empty_paths='direct' to credit them to the channel {DIRECT!r}, "
                "or fix how journeys are built.",
            )
        add_direct = True

    extra = {normalise_channel(str(c)) for c in channels}
    channels = tuple(sorted(set(names) | ({DIRECT} if add_direct else set()) | extra))
    code = {c: i for i, c in enumerate(channels)}
    lookup = np.array([code[name] for name in names], dtype=np.int64)
    touch = lookup[raw_touch] if len(raw_touch) else np.zeros(0, dtype=np.int64)
    row = np.repeat(np.arange(n), lengths)
    if collapse_repeats and len(touch) > 1:
        repeat = np.zeros(len(touch), dtype=bool)
        repeat[1:] = (touch[1:] == touch[:-1]) & (row[1:] == row[:-1])
        n_collapsed = len(np.unique(row[repeat]))
        if n_collapsed:
            touch, row = touch[~repeat], row[~repeat]
            lengths = np.bincount(row, minlength=n).astype(np.int64)
            notes.append(f"consecutive repeats collapsed in {n_collapsed} path row(s).")
    if add_direct:
        direct_rows = np.flatnonzero(empty_converting)
        row = np.concatenate([row, direct_rows])
        touch = np.concatenate([touch, np.full(len(direct_rows), code[DIRECT], dtype=np.int64)])
        by_row = np.argsort(row, kind="stable")
        row, touch = row[by_row], touch[by_row]
        lengths = lengths.copy()
        lengths[direct_rows] = 1
        notes.append(
            f"{int(conv[empty_converting].sum()):,} conversion(s) without any touch "
            f"credited to {DIRECT!r}."
        )
    frac = (conv % 1 != 0) | (null % 1 != 0)
    if frac.any():
        notes.append(f"{int(frac.sum())} row(s) have fractional counts, used as weights.")

    inverse, first, m = _distinct_paths(touch, lengths, channels)
    if m < n:
        notes.append(f"{n - m} row(s) with a repeated path summed.")
    # The touches of the first row of each distinct path, in the order of the paths.
    starts = np.cumsum(lengths) - lengths
    out_lengths = lengths[first]
    out_ends = np.cumsum(out_lengths)
    out_starts = out_ends - out_lengths
    total = int(out_ends[-1]) if m else 0
    gather = np.repeat(starts[first] - out_starts, out_lengths) + np.arange(total)
    out_touch = touch[gather]
    flat = (
        np.repeat(np.arange(m), out_lengths),
        gather - np.repeat(starts[first], out_lengths),
        out_touch,
        out_lengths,
    )
    for arr in flat:
        arr.flags.writeable = False
    counts = (
        np.bincount(inverse, weights=conv, minlength=m).astype(float),
        np.bincount(inverse, weights=val, minlength=m).astype(float),
        np.bincount(inverse, weights=null, minlength=m).astype(float),
    )
    # The paths as tuples are built from the flat arrays when first asked for.
    return PathTable._from_flat(channels, flat, counts, tuple(notes))


#: Largest (paths × longest path) code matrix sorted in one go; beyond it paths are
#: compared as joined names, one at a time.
_PAD_LIMIT = 20_000_000


def _distinct_paths(
    touch: np.ndarray, lengths: np.ndarray, channels: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray, int]:
    """Give each distinct path a number, in the order of their channel names.

    Returns, for each input row, the number of its path (``inverse``), the first
    row of each distinct path in that order (``first``) and the count ``m``.
    Rows with the same path are numbered alike, so summing by ``inverse`` does
    not depend on the input row order.

    Paths sort as tuples of names; codes follow the sorted names, so sorting the
    code tuples (shorter prefix first) gives the same order. Names holding
    control characters (below ``" "``) are ordered by their joined text instead,
    as that order can differ.
    """
    n = len(lengths)
    width = int(lengths.max()) if n else 0
    if n and n * max(width, 1) <= _PAD_LIMIT and not any(c and min(c) < " " for c in channels):
        # Pack each path into a few int64 words: digit ``code + 1`` per touch (0 past
        # the end, so a shorter prefix sorts first), most significant digit first.
        base = len(channels) + 1
        digits = max(1, int(np.floor(62 / np.log2(base))))
        words = -(-max(width, 1) // digits)
        # The touches are in row and position order, so the digits of each word are
        # contiguous: one exact integer sum per (row, word) segment.
        row = np.repeat(np.arange(n), lengths)
        pos = np.arange(len(touch)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        weights = base ** np.arange(digits - 1, -1, -1, dtype=np.int64)
        cell = row * words + pos // digits
        packed = np.zeros(n * words, dtype=np.int64)
        if len(touch):
            seg = np.flatnonzero(np.r_[True, cell[1:] != cell[:-1]])
            packed[cell[seg]] = np.add.reduceat((touch + 1) * weights[pos % digits], seg)
        packed = packed.reshape(n, words)
        order = np.lexsort(packed.T[::-1])
        ranked = packed[order]
        new = np.ones(n, dtype=bool)
        new[1:] = (ranked[1:] != ranked[:-1]).any(axis=1)
        inverse = np.empty(n, dtype=np.int64)
        inverse[order] = np.cumsum(new) - 1
        first = order[new]
        return inverse, first, len(first)
    ends = np.cumsum(lengths)
    bounds = list(zip((ends - lengths).tolist(), ends.tolist(), strict=True))
    names = np.asarray(channels, dtype=object)[touch].tolist()
    keys = np.array([" \x1f ".join(names[lo:hi]) for lo, hi in bounds], dtype=object)
    key_id, distinct_keys = pd.factorize(keys) if n else (np.array([], int), np.array([]))
    m = len(distinct_keys)
    order = np.array(sorted(range(m), key=distinct_keys.__getitem__), dtype=np.int64)
    rank = np.empty(m, dtype=np.int64)
    rank[order] = np.arange(m)
    inverse = rank[key_id]
    # First row of each distinct path, in key order.
    first_seen = np.full(m, n, dtype=np.int64)
    np.minimum.at(first_seen, key_id, np.arange(n))
    return inverse, first_seen[order], m
