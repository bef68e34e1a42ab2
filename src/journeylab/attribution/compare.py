"""``attribute``: every attribution model on one path table, compared.

The models share one canonical path table (see
:mod:`journeylab.attribution.paths`), so they credit the same channels from
the same journeys; the result lines them up per channel, with bootstrap
intervals, ranking uncertainty, sequence (transition) credit from the Markov
chain and, given a spend table, CPA / ROAS per model.

Data-driven models need journeys that did *not* convert. When the path table
comes from :func:`journeylab.journeys.path_table` it records how many
journeys were still open at the period end and whether they were left out
(``attrs["censoring"]``); when leaving them out left too few non-converting
journeys, Markov and Shapley get the status ``"not identifiable: ..."`` and
no credit (NaN), the rule-based models still report, and the summary says how
many journeys were open and left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from journeylab.attribution import bootstrap as boot
from journeylab.attribution.economics import (
    economics_table,
    response_curves,
    spend_per_channel,
)
from journeylab.attribution.heuristics import (
    DEFAULT_DIRECT,
    distinct_channels,
    journey_values,
    rule_credit,
    share_matrix,
    time_decay_shares,
)
from journeylab.attribution.markov import MarkovChain
from journeylab.attribution.paths import PathTable, read_path_table
from journeylab.attribution.result import DATA_DRIVEN, LABELS, AttributionResult, _count
from journeylab.attribution.shapley import shapley as shapley_credit
from journeylab.attribution.touches import is_touch_frame, touches_to_path_table
from journeylab.core.errors import ParameterError, check_in, check_range, did_you_mean
from journeylab.core.progress import ProgressLike
from journeylab.journeys.build import censoring_summary

__all__ = ["MODELS", "DEFAULT_MODELS", "LABELS", "DATA_DRIVEN", "AttributionResult", "attribute"]

#: Every model name ``attribute`` accepts.
MODELS: tuple[str, ...] = (
    "first_touch",
    "last_touch",
    "last_non_direct",
    "linear",
    "position",
    "time_decay",
    "markov",
    "shapley",
)
#: The models run when none are named.
DEFAULT_MODELS: tuple[str, ...] = (
    "first_touch",
    "last_touch",
    "linear",
    "position",
    "markov",
    "shapley",
)
_SHARE_MODELS = ("first_touch", "last_touch", "last_non_direct", "linear", "position")


def _check_models(models: Iterable[str] | str) -> list[str]:
    if isinstance(models, str):
        models = [models]
    out = []
    for m in models:
        if m not in MODELS:
            raise ParameterError(
                f"model == {m!r}, must be one of {list(MODELS)}{did_you_mean(str(m), MODELS)}."
            )
        if m not in out:
            out.append(m)
    if not out:
        raise ParameterError("models is empty; name at least one model.")
    return out


def _touch_frame(paths: Any) -> pd.DataFrame | None:
    """Return the touch-level frame behind ``paths``, when there is one."""
    if hasattr(paths, "touches") and hasattr(paths, "journeys"):
        j = paths.journeys
        if "censored" in j.columns:
            j = j[~j["censored"].astype(bool)]
        cols = [c for c in ("journey_id", "converted", "value", "conversion_time") if c in j]
        return paths.touches.drop(
            columns=[c for c in cols if c != "journey_id"], errors="ignore"
        ).merge(j[cols], on="journey_id", how="inner")
    if is_touch_frame(paths):
        return paths
    return None


def attribute(
    paths: Any,
    models: Sequence[str] | str = DEFAULT_MODELS,
    *,
    order: int = 1,
    value: bool = False,
    n_boot: int = 0,
    seed: int = 0,
    progress: ProgressLike = None,
    spend: pd.DataFrame | None = None,
    returns: Literal["constant", "curve"] = "constant",
    level: float = 0.95,
    collapse_repeats: bool = True,
    empty_paths: Literal["error", "direct"] = "error",
    direct: str | Iterable[str] = DEFAULT_DIRECT,
    position_weights: tuple[float, float, float] = (0.4, 0.2, 0.4),
    half_life: float | str | pd.Timedelta = 7.0,
    shapley_method: Literal["exact", "enumerate", "permutation"] = "exact",
    n_permutations: int = 2_000,
    top_transitions: int = 10,
    channels: Iterable[str] = (),
    path: str = "path",
    conversions: str = "conversions",
    value_column: str | None = "value",
    non_conversions: str | None = "non_conversions",
    separator: str = ">",
    currency: str | None = None,
) -> AttributionResult:
    """Credit conversions (or value) to channels under several models, with uncertainty.

    Parameters
    ----------
    paths : DataFrame, PathTable or Journeys
        A path table (``path`` tuples, ``conversions``, ``value``,
        ``non_conversions`` — as :func:`journeylab.journeys.build.path_table`
        returns), a ChannelAttribution-style table (string paths; give the
        column names and ``separator``), a touch-level frame (``journey_id``,
        ``timestamp``, ``channel``, ``converted``, ``value``,
        ``conversion_time``) or a :class:`journeylab.journeys.build.Journeys`.
        Touch-level input is needed for ``"time_decay"``.
    models : list of str
        Any of :data:`MODELS`.
    order : int
        Markov order (1–4).
    value : bool
        Make value (not conversions) the headline credit of ``to_frame()``;
        both are always computed.
    n_boot : int
        Bootstrap replicates (0 = none). Journeys are resampled.
    seed : int
        Seed of the bootstrap and of Shapley permutation sampling.
    progress : None, False or a tqdm-like factory
        Progress bar for long bootstraps (off under the report runner; see
        :mod:`journeylab.core.progress`).
    spend : DataFrame, optional
        ``channel``, ``date``, ``cost``: adds CPA, ROAS and marginal returns.
    returns : {"constant", "curve"}
        Marginal-return assumption of the budget view: constant returns, or a
        power response curve fitted per channel on daily spend (needs
        touch-level input; see :mod:`journeylab.attribution.economics`).
    level : float
        Confidence level of intervals and of the ranking comparison.
    collapse_repeats, empty_paths, separator, path, conversions, value_column, non_conversions
        How the path table is read (see :func:`~journeylab.attribution.paths.read_path_table`).
        A :class:`~journeylab.attribution.paths.PathTable` (``path_table(...,
        coded=True)``) is already canonical: only its repeats are collapsed.
    direct : str or list of str
        Channel name(s) the last-non-direct rule skips.
    position_weights : (first, middle, last)
        Shares of the position-based rule (default 40/20/40).
    half_life : float (days), str or Timedelta
        Half-life of the time-decay rule.
    shapley_method : {"exact", "enumerate", "permutation"}
        See :func:`journeylab.attribution.shapley.shapley`.
    n_permutations : int
        Permutations for ``shapley_method="permutation"``.
    top_transitions : int
        How many transitions the sequence-credit table keeps.
    channels : iterable of str
        Channels to list even if no journey touches them (0 credit). Channels
        of ``spend`` are added automatically.
    currency : str, optional
        How the summary and displays write amounts: a sign (``"€"``, as
        ``Project.currency_sign`` gives) or an ISO 4217 code (``"GBP"``, written
        ``£``). None (the default) writes plain numbers.

    Returns
    -------
    AttributionResult

    Examples
    --------
    >>> import pandas as pd
    >>> paths = pd.DataFrame({"path": [("A", "B"), ("B",), ("A",)], "conversions": [10, 2, 1],
    ...                       "value": [100.0, 20.0, 10.0], "non_conversions": [5, 8, 9]})
    >>> r = attribute(paths, ["first_touch", "last_touch", "markov"])
    >>> r.to_frame()["first_touch"].to_dict()
    {'A': 11.0, 'B': 2.0}
    """
    model_list = _check_models(models)
    if not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise ParameterError(f"n_boot == {n_boot!r}, must be a whole number >= 0.")
    check_range("level", level, low=0, high=1)
    check_in("returns", returns, ["constant", "curve"])
    touches = _touch_frame(paths)
    if returns == "curve" and (touches is None or spend is None):
        raise ParameterError(
            "returns='curve' fits response curves on daily spend and daily touches: pass "
            "spend= and a touch-level frame or Journeys object (a path table has no dates)."
        )
    if "time_decay" in model_list and touches is None:
        raise ParameterError(
            "model 'time_decay' needs touch timestamps: pass a touch-level frame "
            "(journey_id, timestamp, channel, converted, value, conversion_time) or a "
            "Journeys object instead of a path table."
        )
    read = dict(
        path=path,
        conversions=conversions,
        value=value_column,
        non_conversions=non_conversions,
        separator=separator,
        collapse_repeats=collapse_repeats,
        empty_paths=empty_paths,
        channels=list(channels)
        + (
            list(spend["channel"].dropna().astype(str).unique())
            if isinstance(spend, pd.DataFrame) and "channel" in spend.columns
            else []
        ),
    )
    censoring = (
        paths.attrs.get("censoring") if isinstance(paths, (pd.DataFrame, PathTable)) else None
    )
    if isinstance(paths, PathTable):
        # already canonical (path_table(..., coded=True) or read_path_table)
        table = paths.collapsed() if collapse_repeats else paths
        table = table.with_channels(read["channels"])
    elif hasattr(paths, "path_table") and hasattr(paths, "touches"):
        built = paths.path_table(collapse_repeats=collapse_repeats)
        censoring = built.attrs.get("censoring", censoring)
        table = read_path_table(
            built,
            **{
                **read,
                "path": "path",
                "conversions": "conversions",
                "value": "value",
                "non_conversions": "non_conversions",
            },
        )
    elif touches is not None:
        table = read_path_table(
            touches_to_path_table(touches),
            **{
                **read,
                "path": "path",
                "conversions": "conversions",
                "value": "value",
                "non_conversions": "non_conversions",
            },
        )
    else:
        table = read_path_table(paths, **read)

    channels = list(table.channels)
    censoring, status = _identifiability(table, censoring, model_list)
    credit: dict[str, np.ndarray] = {
        m: np.full(len(channels), np.nan) for m in model_list if status[m] != "ok"
    }
    value_credit: dict[str, np.ndarray] = dict(credit)
    shares = {}
    rule_options = dict(direct=direct, position_weights=position_weights)
    for m in model_list:
        if m in _SHARE_MODELS:
            credit[m], value_credit[m] = rule_credit(
                table, m, (table.conversions, table.value), **rule_options
            )
            if n_boot > 0:  # the bootstrap resamples the counts under the same shares
                shares[m] = share_matrix(table, m, **rule_options)
    chain = None
    if status.get("markov") == "ok":
        chain = MarkovChain(order=order).fit(table)
        credit["markov"] = chain._numbers["credit_"][0]
        value_credit["markov"] = chain._numbers["value_credit_"][0]
    shapley_se = None
    if status.get("shapley") == "ok":
        sc = shapley_credit(table, method=shapley_method, n_permutations=n_permutations, seed=seed)
        sv = shapley_credit(
            table, value=True, method=shapley_method, n_permutations=n_permutations, seed=seed
        )
        credit["shapley"] = sc["credit"].to_numpy()
        value_credit["shapley"] = sv["credit"].to_numpy()
        shapley_se = (sc["standard_error"], sv["standard_error"])
        # Bootstrap the exact Shapley value (the permutation estimate targets it).
        shares["shapley"] = distinct_channels(table)
    td = None
    if "time_decay" in model_list:
        td_shares, td_channels = time_decay_shares(touches, half_life)
        ids = td_shares.attrs["journey_ids"]
        vals = journey_values(touches, ids) if "value" in touches.columns else np.zeros(len(ids))
        code = np.array([channels.index(c) if c in channels else -1 for c in td_channels])
        if (code < 0).any():
            missing = [c for c, k in zip(td_channels, code, strict=True) if k < 0]
            raise ParameterError(f"time-decay channels {missing} are not in the path table.")
        ch = code[td_shares["channel"].to_numpy()]
        jn = td_shares["journey"].to_numpy()
        sh = td_shares["share"].to_numpy()
        credit["time_decay"] = np.bincount(ch, weights=sh, minlength=len(channels))
        value_credit["time_decay"] = np.bincount(ch, weights=sh * vals[jn], minlength=len(channels))
        td = (ch, jn, sh, vals, len(ids))

    replicates: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if n_boot > 0:
        replicates = boot.bootstrap_credit(
            table,
            shares={k: v for k, v in shares.items()},
            chain=chain,
            n_boot=n_boot,
            seed=seed,
            progress=progress,
        )
        if td is not None:
            replicates["time_decay"] = _bootstrap_time_decay(
                table, td, n_boot=n_boot, seed=seed, n_channels=len(channels)
            )

    index = pd.Index(channels, name="channel")
    credit_frame = pd.DataFrame({m: credit[m] for m in model_list}, index=index)
    value_frame = pd.DataFrame({m: value_credit[m] for m in model_list}, index=index)
    econ = None
    curves = None
    if spend is not None:
        if returns == "curve":
            curves = response_curves(touches, spend)
        usable = [m for m in model_list if status[m] == "ok"]
        econ = economics_table(
            credit_frame[usable],
            value_frame[usable],
            spend_per_channel(spend),
            None if curves is None else curves["elasticity"],
        )
    return AttributionResult(
        table=table,
        models=model_list,
        credit=credit_frame,
        value_credit=value_frame,
        value=value,
        replicates=replicates,
        level=level,
        n_boot=n_boot,
        seed=seed,
        chain=chain,
        top_transitions=top_transitions,
        shapley_se=shapley_se,
        shapley_method=shapley_method,
        economics=econ,
        response_curves=curves,
        settings=dict(
            order=order,
            position_weights=tuple(position_weights),
            half_life=half_life,
            direct=direct,
            collapse_repeats=collapse_repeats,
        ),
        status=status,
        censoring=censoring,
        currency=currency,
    )


def _identifiability(
    table: PathTable, censoring: dict | None, models: list[str]
) -> tuple[dict | None, dict[str, str]]:
    """Recount the censoring summary on the canonical table; give each model its status."""
    status = {m: "ok" for m in models}
    if censoring is None:
        return None, status
    censoring = censoring_summary(
        float(table.conversions.sum()),
        float(table.non_conversions.sum()),
        censoring.get("open_journeys", 0),
        include_censored=censoring.get("rule") == "counted as non-conversions",
        period_end=censoring.get("period_end"),
    )
    if not censoring["identifiable"]:
        non = censoring["non_conversions"]
        reason = (
            f"not identifiable: {_count(censoring['left_out'])} journeys still open at the period "
            f"end were left out, leaving {_count(non)} non-converting journeys"
        )
        for m in DATA_DRIVEN:
            if m in status:
                status[m] = reason
    return censoring, status


def _bootstrap_time_decay(table: PathTable, td, *, n_boot: int, seed: int, n_channels: int):
    """Resample journeys for time-decay: converting journeys drawn from all journeys."""
    ch, jn, sh, vals, n_conv = td
    rng = np.random.default_rng([seed, 1])
    total = int(round(table.journeys.sum()))
    c = np.zeros((n_boot, n_channels))
    v = np.zeros_like(c)
    if n_conv == 0 or total == 0:
        return c, v
    draws = rng.binomial(total, min(n_conv / total, 1.0), size=n_boot)
    for b in range(n_boot):
        w = rng.multinomial(draws[b], np.full(n_conv, 1.0 / n_conv)).astype(float)
        c[b] = np.bincount(ch, weights=sh * w[jn], minlength=n_channels)
        v[b] = np.bincount(ch, weights=sh * w[jn] * vals[jn], minlength=n_channels)
    return c, v
