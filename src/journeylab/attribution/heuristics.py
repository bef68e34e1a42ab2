"""Rule-based attribution models.

First touch, last touch, last non-direct, linear, position-based (U-shaped)
and time-decay.

The path-based rules are written as a *share matrix*: one row per distinct
path, one column per channel, each row summing to 1 (the share of that path's
conversions each channel receives). Credit is then a matrix product with the
conversion (or value) counts, which is also what makes the bootstrap cheap:
the share matrix is computed once and only the counts are resampled.

Time-decay needs touch timestamps, so it reads a touch-level frame
(``journey_id``, ``timestamp``, ``channel``, ``converted``, ``value``,
``conversion_time``) rather than a path table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from journeylab.attribution.paths import DIRECT, PathTable, normalise_channel
from journeylab.core.errors import DataError, ParameterError, require_columns
from journeylab.core.timeparse import parse_duration

__all__ = [
    "DEFAULT_DIRECT",
    "share_matrix",
    "rule_credit",
    "first_touch",
    "last_touch",
    "last_non_direct",
    "linear",
    "position_based",
    "time_decay",
]

#: Channel names treated as "direct" by the last-non-direct rule.
DEFAULT_DIRECT: tuple[str, ...] = ("direct", DIRECT)


def _matrix(table: PathTable, row: np.ndarray, channel: np.ndarray, share: np.ndarray):
    return sp.csr_array((share, (row, channel)), shape=(table.n_paths, len(table.channels)))


def _touch_shares(table: PathTable, model: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the touches first touch, last touch or linear credit: ``(path row, channel, share)``."""
    row, pos, ch, lengths = table.flat()
    if model == "linear":
        return row, ch, 1.0 / lengths[row]
    keep = pos == 0 if model == "first_touch" else pos == lengths[row] - 1
    return row[keep], ch[keep], np.ones(int(keep.sum()))


def first_touch(table: PathTable) -> sp.csr_array:
    """Share matrix giving each path's conversions to its first channel."""
    return _matrix(table, *_touch_shares(table, "first_touch"))


def last_touch(table: PathTable) -> sp.csr_array:
    """Share matrix giving each path's conversions to its last channel."""
    return _matrix(table, *_touch_shares(table, "last_touch"))


def last_non_direct(table: PathTable, direct: str | Iterable[str] = DEFAULT_DIRECT) -> sp.csr_array:
    """Share matrix giving each path's conversions to its last non-direct channel.

    Paths made only of direct touches credit their last (direct) touch.
    """
    names = {direct} if isinstance(direct, str) else set(direct)
    names = {normalise_channel(n) for n in names}
    row, pos, ch, lengths = table.flat()
    is_direct = np.isin(ch, [i for i, c in enumerate(table.channels) if c in names])
    # Rank of each touch from the end, preferring non-direct touches: the chosen
    # touch is the one with the largest key per path.
    key = pos + np.where(is_direct, 0, lengths[row])
    best = np.full(table.n_paths, -1)
    np.maximum.at(best, row, key)
    keep = key == best[row]
    return _matrix(table, row[keep], ch[keep], np.ones(int(keep.sum())))


def linear(table: PathTable) -> sp.csr_array:
    """Share matrix splitting each path's conversions equally over its touches."""
    return _matrix(table, *_touch_shares(table, "linear"))


def position_based(
    table: PathTable, weights: tuple[float, float, float] = (0.4, 0.2, 0.4)
) -> sp.csr_array:
    """Share matrix of the position-based (U-shaped) rule.

    ``weights`` are the shares of (first touch, all middle touches, last
    touch). One-touch paths give everything to that touch; two-touch paths
    split in the ratio first : last.
    """
    w = np.asarray(weights, dtype=float)
    if w.shape != (3,) or not np.all(np.isfinite(w)) or np.any(w < 0) or abs(w.sum() - 1) > 1e-9:
        raise ParameterError(
            f"position weights == {tuple(weights)!r}, must be three shares >= 0 "
            "(first, middle, last) summing to 1."
        )
    if w[0] + w[2] == 0:
        raise ParameterError("position weights give nothing to first and last touch.")
    row, pos, ch, lengths = table.flat()
    n = lengths[row]
    first, middle, last = w
    share = np.where(
        n == 1,
        1.0,
        np.where(
            n == 2,
            np.where(pos == 0, first, last) / (first + last),
            np.where(pos == 0, first, np.where(pos == n - 1, last, middle / np.maximum(n - 2, 1))),
        ),
    )
    return _matrix(table, row, ch, share)


def distinct_channels(table: PathTable) -> sp.csr_array:
    """Share matrix splitting each path's conversions equally over its distinct channels.

    This is the exact Shapley value of the set-based game (see
    :mod:`journeylab.attribution.shapley`).
    """
    row, _, ch, _ = table.flat()
    m = sp.csr_array((np.ones(len(row)), (row, ch)), shape=(table.n_paths, len(table.channels)))
    m.sum_duplicates()
    m.data[:] = 1.0  # presence, not count
    n_distinct = np.diff(m.indptr)
    m.data = 1.0 / np.repeat(n_distinct, n_distinct)
    return m


def rule_credit(
    table: PathTable, model: str, weights: Sequence[np.ndarray], **options
) -> list[np.ndarray]:
    """Credit per channel under a path-based rule, for each vector of path weights.

    ``weights``: one value per path each (e.g. conversions, conversion value).
    First touch, last touch and linear add up the touches directly
    (``numpy.bincount``, path by path as the share matrix's product does)
    without building the matrix; the other rules go through :func:`share_matrix`.

    Examples
    --------
    >>> import numpy as np
    >>> from journeylab.attribution.paths import PathTable
    >>> t = PathTable(("A", "B"), ((0, 1), (1,)), np.array([3.0, 1.0]), np.zeros(2), np.zeros(2))
    >>> [c.tolist() for c in rule_credit(t, "linear", [t.conversions])]
    [[1.5, 2.5]]
    """
    if model not in ("first_touch", "last_touch", "linear"):
        w = share_matrix(table, model, **options)
        return [w.T @ x for x in weights]
    row, ch, share = _touch_shares(table, model)
    return [np.bincount(ch, weights=share * x[row], minlength=len(table.channels)) for x in weights]


def share_matrix(table: PathTable, model: str, **options) -> sp.csr_array:
    """Return the share matrix of a path-based rule (``first_touch``, ``linear`` ...)."""
    if model == "first_touch":
        return first_touch(table)
    if model == "last_touch":
        return last_touch(table)
    if model == "last_non_direct":
        return last_non_direct(table, options.get("direct", DEFAULT_DIRECT))
    if model == "linear":
        return linear(table)
    if model == "position":
        return position_based(table, options.get("position_weights", (0.4, 0.2, 0.4)))
    raise ParameterError(f"model == {model!r} has no share matrix.")


def _half_life(half_life) -> pd.Timedelta:
    return parse_duration(half_life, "half_life", number_unit="D")


def time_decay_shares(
    touches: pd.DataFrame, half_life: float | str | pd.Timedelta = 7.0
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Per-journey time-decay shares of the converting journeys.

    Each touch of a converting journey weighs ``2 ** (-(conversion_time -
    timestamp) / half_life)``; weights are normalised within the journey.

    Returns
    -------
    shares : pandas.DataFrame
        Columns ``journey`` (0..J-1 code), ``channel`` (code), ``share``,
        plus ``journeys`` (the original ids) in ``attrs``.
    channels : tuple of str
        Channel names of the codes, sorted.
    """
    require_columns(
        touches,
        ["journey_id", "timestamp", "channel", "converted", "conversion_time"],
        what="touch",
    )
    hl = _half_life(half_life)
    conv = touches["converted"].astype(bool).to_numpy()
    t = touches.loc[conv & touches["channel"].notna().to_numpy()]
    ts = pd.to_datetime(t["timestamp"], utc=True)
    ct = pd.to_datetime(t["conversion_time"], utc=True)
    bad = ct.isna().to_numpy()
    if bad.any():
        raise DataError(
            "Converting journeys need a conversion_time on their touches; "
            f"{int(bad.sum())} touch(es) lack it.",
            column="conversion_time",
            rows=np.flatnonzero(conv)[np.flatnonzero(bad)].tolist(),
        )
    age = (ct - ts).to_numpy() / hl.to_timedelta64()
    if np.any(age < 0):
        rows = np.flatnonzero(conv)[np.flatnonzero(age < 0)].tolist()
        raise DataError(
            "Some touches come after their journey's conversion_time.",
            column="timestamp",
            rows=rows,
            hint="a journey's touches must precede its conversion; rebuild journeys.",
        )
    names = t["channel"].astype(str).map(normalise_channel)
    channels = tuple(sorted(set(names)))
    channel = pd.Categorical(names, categories=channels).codes
    journey, ids = pd.factorize(t["journey_id"], sort=True)
    weight = np.exp2(-age.astype(float))
    total = np.bincount(journey, weights=weight, minlength=len(ids))
    out = pd.DataFrame({"journey": journey, "channel": channel, "share": weight / total[journey]})
    out.attrs["journey_ids"] = ids
    return out, channels


def time_decay(
    touches: pd.DataFrame,
    half_life: float | str | pd.Timedelta = 7.0,
    *,
    value: bool = False,
) -> pd.Series:
    """Time-decay credit per channel from a touch-level frame.

    Parameters
    ----------
    touches : pandas.DataFrame
        Columns ``journey_id``, ``timestamp``, ``channel``, ``converted``,
        ``conversion_time`` and (for ``value=True``) ``value`` — the journey's
        conversion value repeated on its touches.
    half_life : float (days), str or Timedelta
        A touch ``half_life`` before the conversion earns half the weight of a
        touch at the conversion.
    value : bool
        Credit conversion value instead of conversions.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"journey_id": [1, 1], "channel": ["A", "B"], "converted": True,
    ...     "timestamp": pd.to_datetime(["2026-01-01", "2026-01-08"], utc=True),
    ...     "conversion_time": pd.Timestamp("2026-01-08", tz="UTC")})
    >>> time_decay(t, half_life=7).round(3).to_dict()
    {'A': 0.333, 'B': 0.667}
    """
    shares, channels = time_decay_shares(touches, half_life)
    weights = np.ones(len(shares.attrs["journey_ids"]))
    if value:
        weights = journey_values(touches, shares.attrs["journey_ids"])
    credit = np.bincount(
        shares["channel"],
        weights=shares["share"].to_numpy() * weights[shares["journey"]],
        minlength=len(channels),
    )
    return pd.Series(credit, index=pd.Index(channels, name="channel"), name="time_decay")


def journey_values(touches: pd.DataFrame, journey_ids) -> np.ndarray:
    """Conversion value of each journey (max over its touches), aligned to ``journey_ids``."""
    if "value" not in touches.columns:
        raise DataError("value=True needs a 'value' column on the touch frame.", column="value")
    conv = touches.loc[touches["converted"].astype(bool)]
    per = pd.to_numeric(conv["value"], errors="coerce").groupby(conv["journey_id"]).max()
    return per.reindex(journey_ids).fillna(0.0).to_numpy(dtype=float)
