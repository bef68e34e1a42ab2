"""The columns of an audience file, each from its own inputs.

Opt-outs, lifecycle state, CLV tier, propensities and next touch.

The definitions are those of :mod:`journeylab.actions.audiences` (rules 1 and 3);
a column whose inputs are missing comes back as a ``_Missing`` with the reason.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from journeylab.core.errors import DataError, ParameterError

__all__ = [
    "lifecycle_by_person",
]


_TRUE = {"true", "1", "yes", "y", "opted_out", "opt_out", "optout", "t"}
_FALSE = {"false", "0", "no", "n", "f", "opted_in", ""}


def _opted_out(values: pd.Series, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Opt-out flags and missing flags; raises on values that are neither yes nor no."""
    missing = values.isna().to_numpy()
    text = values.astype("object").map(lambda v: str(v).strip().lower(), na_action="ignore")
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        text = text.map(
            lambda v: {"true": "1", "false": "0", "1.0": "1", "0.0": "0"}.get(v, v),
            na_action="ignore",
        )
    known = text.isin(_TRUE | _FALSE).to_numpy()
    bad = ~missing & ~known
    if bad.any():
        examples = sorted({str(v) for v in values[bad]})[:3]
        raise DataError(
            f"The opt-out column {column!r} holds values that are neither yes nor no: {examples}.",
            column=column,
            rows=[int(i) + 1 for i in np.flatnonzero(bad)],
            hint="use true/false, 1/0 or yes/no (a missing value counts as opted out).",
        )
    return (text.isin(_TRUE).to_numpy() & ~missing) | missing, missing


def lifecycle_by_person(
    transactions: pd.DataFrame, as_of: Any, *, at_risk: int = 1, lapsed: int = 3, freq: str = "M"
) -> pd.Series:
    """Each customer's lifecycle state in the period holding ``as_of``.

    The rules are those of :func:`journeylab.customers.retention.lifecycle_states` (its
    per-period counts are the value counts of this Series); customers whose
    first purchase is after ``as_of`` are left out.

    Returns
    -------
    pandas.Series
        Indexed by ``user_id``: ``new``, ``active``, ``reactivated``, ``at_risk`` or ``lapsed``.
    """
    from journeylab.customers.purchases import period_codes, purchase_rows

    frame, _ = purchase_rows(transactions)
    stamp = pd.Timestamp(as_of)
    stamp = stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp
    now = int(period_codes(pd.Series([stamp]), freq)[0])
    codes = pd.DataFrame(
        {
            "customer": frame["customer"].astype(str).to_numpy(),
            "code": period_codes(frame["time"], freq),
        }
    )
    codes = (
        codes[codes["code"] <= now]
        .drop_duplicates()
        .sort_values(["customer", "code"], kind="stable")
    )
    last = codes.groupby("customer")["code"].max()
    first = codes.groupby("customer")["code"].min()
    # the purchase period before the current one (for reactivation)
    before = codes[codes["code"] < now].groupby("customer")["code"].max()
    gap = now - last
    state = pd.Series("lapsed", index=last.index, dtype="object")
    state[gap < lapsed] = "at_risk"
    state[gap < at_risk] = "active"
    bought_now = gap == 0
    previous = before.reindex(last.index)
    reactivated = bought_now & previous.notna() & (now - previous - 1 >= lapsed)
    state[reactivated] = "reactivated"
    state[bought_now & (first == now)] = "new"
    state.index.name = "user_id"
    return state.rename("lifecycle_state")


def _clv_tiers(transactions: pd.DataFrame, as_of: pd.Timestamp) -> tuple[pd.Series, dict[str, Any]]:
    import warnings

    from journeylab.clv.models import BetaGeo, GammaGamma, customer_lifetime_value, rfm_summary

    rfm = rfm_summary(transactions, observation_period_end=as_of)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        purchases_model = BetaGeo().fit(rfm)
        spend_model = GammaGamma().fit(rfm)
    clv = customer_lifetime_value(purchases_model, spend_model, rfm, months=12, discount_rate=0.01)
    rank = clv.rank(method="first", ascending=False) / len(clv)
    tier = pd.Series(
        np.where(rank <= 0.2, "high", np.where(rank <= 0.5, "medium", "low")),
        index=clv.index.astype(str),
    )
    params = {
        "bg_nbd": {k: float(v) for k, v in purchases_model.params_.items()},
        "gamma_gamma": {k: float(v) for k, v in spend_model.params_.items()},
        "months": 12,
        "discount_rate_per_month": 0.01,
        "tiers": {"high": "top 20 %", "medium": "next 30 %", "low": "rest"},
        "customers": len(clv),
        "fit_warnings": [
            str(w.message) for w in caught
        ],  # kept in the manifest rather than printed
    }
    return tier, params


def _snapshots(
    start: pd.Timestamp, end: pd.Timestamp, horizon_days: float, keep: int = 4
) -> list[str]:
    last = end - pd.Timedelta(days=horizon_days)
    dates = pd.date_range((start + pd.Timedelta(days=28)).ceil("D"), last, freq="MS")
    return [str(d.date()) for d in dates[-keep:]]


def _fit_with_holdout(features: pd.DataFrame, target: str, seed: int):
    """Time holdout when the snapshots allow one, else a seeded random holdout (recorded)."""
    from journeylab.core.errors import NotComputableError
    from journeylab.customers.propensity import fit_propensity

    try:
        return fit_propensity(features, target, holdout="time", seed=seed)
    except NotComputableError:
        return fit_propensity(features, target, holdout="random", seed=seed)


def _model_params(result) -> dict[str, Any]:
    return {
        "method": result.method,
        "holdout": result.split,
        "auc": float(result.auc),
        "auc_ci": [float(v) for v in result.auc_ci],
        "coefficients": {str(k): float(v) for k, v in result.params.items()},
    }


def _conversion_propensity(events, as_of, horizon_days, seed, *, conversion):
    from journeylab.customers.propensity import propensity_features

    if conversion is None:
        raise _Missing("no conversion named (conversion=, the project file's journey.conversion)")
    past = events[events["timestamp"] < as_of]
    dates = _snapshots(past["timestamp"].min(), as_of, horizon_days)
    if len(dates) < 2:
        raise _Missing(
            f"the events cover too little time before as_of for two monthly snapshots of {horizon_days:g} days"
        )
    train = propensity_features(
        past,
        as_of=dates,
        horizon_days=horizon_days,
        observed_until=as_of,
        conversion_event=conversion,
    )
    model = _fit_with_holdout(train, "converted", seed)
    # Features at as_of itself; their labels lie in the future and are not used (observed_until only
    # lets the feature builder run).
    now = propensity_features(
        past,
        as_of=as_of,
        horizon_days=horizon_days,
        observed_until=as_of + pd.Timedelta(days=horizon_days),
        conversion_event=conversion,
        **train.attrs["vocabulary"],  # the columns the model was fitted on
    )
    scores = pd.Series(model.predict(now).to_numpy(), index=now["user_id"].astype(str).to_numpy())
    return scores, {
        **_model_params(model),
        "horizon_days": horizon_days,
        "training_snapshots": dates,
    }


def _churn_propensity(transactions, as_of, horizon_days, seed):
    from journeylab.customers.propensity import churn_features

    tx = transactions[pd.to_datetime(transactions["timestamp"], utc=True) < as_of]
    dates = _snapshots(pd.to_datetime(tx["timestamp"], utc=True).min(), as_of, horizon_days)
    if len(dates) < 2:
        raise _Missing(
            f"the transactions cover too little time before as_of for two snapshots of {horizon_days:g} days"
        )
    train = churn_features(tx, as_of=dates, horizon_days=horizon_days, observed_until=as_of)
    model = _fit_with_holdout(train, "churned", seed)
    now = churn_features(
        tx,
        as_of=as_of,
        horizon_days=horizon_days,
        observed_until=as_of + pd.Timedelta(days=horizon_days),
    )
    scores = pd.Series(model.predict(now).to_numpy(), index=now["user_id"].astype(str).to_numpy())
    return scores, {
        **_model_params(model),
        "horizon_days": horizon_days,
        "training_snapshots": dates,
    }


def _next_touch(events, as_of, *, stage_map, conversion):
    from journeylab.attribution.next_touch import START, next_best_touchpoint
    from journeylab.journeys.build import path_table

    if conversion is None:
        raise _Missing("no conversion named (conversion=, the project file's journey.conversion)")
    past = events[events["timestamp"] < as_of]
    paths = path_table(past, stage_map=stage_map, conversion=conversion)
    touches = past[past["channel"].notna()] if "channel" in past.columns else past.iloc[:0]
    last = (
        touches.sort_values("timestamp", kind="stable")
        .groupby(touches["user_id"].astype(str))["channel"]
        .last()
    )
    best: dict[str, str] = {}
    for state in [START, *sorted(set(last.astype(str)))]:
        try:
            best[state] = next_best_touchpoint(paths, state=state).best
        except ParameterError:  # a channel that never starts a path step (e.g. offline only)
            continue
    person = last.astype(str).map(lambda s: best.get(s, best.get(START)))
    return person, {
        "method": "first-order absorbing Markov chain of journeys (path_table defaults)",
        "best_by_state": best,
    }


class _Missing(Exception):
    """A column's inputs are present but it cannot be computed (with the reason)."""
