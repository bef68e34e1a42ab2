"""Uplift: whom a campaign actually moves, from an experiment with a randomised holdout.

A propensity model says who will convert; an uplift model says who converts
*because* of the campaign. From a randomised test (treated vs a holdout that
got nothing) :func:`fit_uplift` estimates each person's incremental effect
``τ(x) = P(y=1 | x, treated) − P(y=1 | x, control)`` and checks the ranking on
held-out people. The rules, in order:

1. **Data**: one row per person with the arm column (``variant``), a 0/1
   ``outcome`` and the ``features``. Rows of ``control`` are the holdout, rows
   of the ``treatment`` labels (default: every other variant) are treated;
   rows of other variants are left out and counted. A missing or non-0/1
   outcome and a missing feature value are errors naming the column and rows.
2. **Split**: a seeded random ``test_size`` share of *each arm* is held out;
   the models are fitted on the rest and every metric is computed on the test
   rows only.
3. **Design**: numeric features enter as they are; text/categorical features
   become dummies against their most frequent training level; levels unseen in
   training count as the reference level.
4. **Two-model (T-learner)**: one maximum-likelihood logit (statsmodels) per
   arm; ``τ(x) = p_treated(x) − p_control(x)``.
5. **Class transformation** (Jaskowski & Jaroszewicz 2012; the binary case of
   Athey & Imbens' transformed outcome): ``z = 1`` for treated responders and
   control non-responders. With half the people treated,
   ``P(z=1 | x) = (1 + τ(x)) / 2``. For other shares the rows are weighted
   ``1 / (2e)`` (treated) and ``1 / (2(1 − e))`` (control), ``e`` the treated
   share in training, which restores that identity exactly; one weighted logit,
   ``τ(x) = 2 P(z=1 | x) − 1``, with a sandwich covariance.
6. **Ranking** by predicted uplift, highest first. The Qini and uplift curves
   group tied predictions (a tie group enters at once, so row order cannot
   move them); deciles and the top share cut the ordered rows, ties keeping
   the test rows' order.
7. **Curves and coefficient** (Radcliffe 2007; Gutierrez & Gérardy 2017):
   after targeting the first ``t`` people, with ``Y_T, Y_C`` responders and
   ``N_T, N_C`` people treated/control among them, the Qini curve is
   ``g(t) = Y_T − Y_C · N_T / N_C`` (``Y_C · N_T / N_C`` taken as 0 while
   ``N_C = 0``) and the uplift curve ``f(t) = (Y_T/N_T − Y_C/N_C)(N_T + N_C)``
   (a rate with no people counts 0). The **Qini coefficient** is the area
   between the Qini curve and the random-targeting line from ``(0, 0)`` to
   ``(N, g(N))`` (trapezoids between tie-group ends), divided by ``N²`` so that
   both axes are shares of the evaluated people: incremental responders per
   person, averaged over every targeting depth. 0 is no better than random.
   Its interval is a percentile bootstrap (seeded, ``n_boot`` resamples of
   the test rows within each arm, predictions fixed): it measures how sure we
   are of the ranking's value on people like the test set, not model refits.
8. **Deciles and recommendation**: per decile (1 = highest predicted uplift)
   the treated/control counts and response rates and the observed uplift with
   a Newcombe hybrid-score interval (statsmodels ``confint_proportions_2indep``);
   the recommendation compares the observed uplift in the top ``top_share`` of
   the ranking with the uplift of sending to everyone, per 1,000 people sent.

The models live in :mod:`.uplift_models`, the curves and evaluation formulas in
:mod:`.uplift_curves` and the result object in :mod:`.uplift_result`; their public
names are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from journeylab.core.errors import (
    DataError,
    NotComputableError,
    ParameterError,
    check_range,
    did_you_mean,
    require_columns,
)
from journeylab.customers.uplift_curves import (
    _bootstrap_qini,
    _group_row,
    qini_coefficient,
    qini_curve,
    top_share_uplift,
    uplift_by_decile,
    uplift_curve,
)
from journeylab.customers.uplift_models import (
    _MODEL_CLASSES,
    MODELS,
    ClassTransformationUplift,
    ModelName,
    TwoModelUplift,
    _check_complete,
    _Design,
    _upper_first,
)
from journeylab.customers.uplift_result import UpliftResult

__all__ = [
    "fit_uplift",
    "UpliftResult",
    "TwoModelUplift",
    "ClassTransformationUplift",
    "qini_curve",
    "uplift_curve",
    "qini_coefficient",
    "uplift_by_decile",
    "top_share_uplift",
    "MODELS",
]


def fit_uplift(
    data: pd.DataFrame,
    *,
    outcome: str,
    features: Sequence[str],
    variant: str = "variant",
    control: str = "control",
    treatment: str | Sequence[str] | None = None,
    models: Sequence[ModelName] = ("two_model", "class_transformation"),
    test_size: float = 0.3,
    top_share: float = 0.3,
    bins: int = 10,
    n_boot: int = 500,
    alpha: float = 0.05,
    seed: int = 0,
) -> UpliftResult:
    """Estimate each person's incremental effect from a randomised test and check it on held-out people.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per person: the ``variant`` column, the 0/1 ``outcome`` and the
        ``features`` (``user_id`` is carried into the predictions when present).
    outcome : str
        The 0/1 response column (e.g. ``"conversion"``).
    features : sequence of str
        Predictors measured before the treatment; text columns become dummies.
    variant : str
        The arm column.
    control : str
        The holdout's label.
    treatment : str or sequence of str, optional
        Labels counted as treated (pooled); default every label except ``control``.
    models : sequence of {"two_model", "class_transformation"}
        The uplift models to fit and compare.
    test_size : float
        Share of each arm held out for evaluation.
    top_share : float
        Share of people the recommendation targets (0.3: the top 30 %).
    bins : int
        Bins of the uplift table (10: deciles).
    n_boot : int
        Bootstrap resamples of the Qini coefficient's interval.
    alpha : float
        1 − confidence level of every interval.
    seed : int
        Seed of the split and of the bootstrap.

    Returns
    -------
    UpliftResult

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> n = 4000
    >>> df = pd.DataFrame({"variant": rng.choice(["control", "mail"], n), "x": rng.normal(size=n)})
    >>> lift = np.where(df["x"] > 0, 0.2, 0.0) * (df["variant"] == "mail")
    >>> df["bought"] = (rng.random(n) < 0.1 + lift).astype(int)
    >>> res = fit_uplift(df, outcome="bought", features=["x"], n_boot=50, seed=1)
    >>> bool(res.qini.set_index("model").loc["two_model", "qini"] > 0)
    True
    """
    if not isinstance(data, pd.DataFrame):
        raise ParameterError(f"data must be a pandas DataFrame, not {type(data).__name__}.")
    features = list(dict.fromkeys(features))
    if not features:
        raise ParameterError(
            "features is empty; name at least one column measured before the treatment."
        )
    require_columns(data, [variant, outcome, *features], what="experiment")
    if outcome in features or variant in features:
        raise ParameterError("The outcome and the variant column cannot be features.")
    models = list(dict.fromkeys(models))
    for name in models:
        if name not in _MODEL_CLASSES:
            raise ParameterError(
                f"models contains {name!r}; known models are {list(_MODEL_CLASSES)}"
                f"{did_you_mean(name, _MODEL_CLASSES)}."
            )
    if not models:
        raise ParameterError("models is empty; choose from ['two_model', 'class_transformation'].")
    check_range("test_size", test_size, low=0, high=1)
    check_range("top_share", top_share, low=0, high=1, high_inclusive=True)
    check_range("alpha", alpha, low=0, high=1)
    if int(bins) != bins or bins < 2:
        raise ParameterError(f"bins == {bins!r}, must be a whole number >= 2.")
    if int(n_boot) != n_boot or n_boot < 10:
        raise ParameterError(f"n_boot == {n_boot!r}, must be a whole number >= 10.")

    labels = data[variant].astype("object")
    present = sorted({str(v) for v in labels.dropna().unique()})
    if control not in present:
        raise ParameterError(
            f"control == {control!r} is not a variant of the data{did_you_mean(control, present)}; variants: {present}."
        )
    treated_labels = (
        [v for v in present if v != control]
        if treatment is None
        else ([treatment] if isinstance(treatment, str) else list(treatment))
    )
    for label in treated_labels:
        if label not in present or label == control:
            raise ParameterError(
                f"treatment label {label!r} is not a treated variant of the data"
                f"{did_you_mean(label, present)}; variants: {present}."
            )
    if not treated_labels:
        raise ParameterError(f"The data has no variant besides the control {control!r}.")
    labels_str = labels.astype(str)
    in_test = labels_str.isin([control, *treated_labels]) & labels.notna()
    frame = data.loc[in_test.to_numpy()].copy()
    other = int((~in_test).sum())

    y = pd.to_numeric(frame[outcome], errors="coerce")
    bad = y.isna() | ~y.isin([0, 1])
    if bad.any():
        raise DataError(
            f"The outcome {outcome!r} must be 0 or 1 in every row; {int(bad.sum()):,} row(s) are not.",
            column=outcome,
            rows=[
                int(i) + 1
                for i in np.flatnonzero(in_test.to_numpy())[np.flatnonzero(bad.to_numpy())]
            ],
            hint="map the outcome to 0/1 first (e.g. data[outcome] = (data[outcome] > 0).astype(int)).",
        )
    _check_complete(frame, features, "experiment")
    frame["_y"] = y.astype(float).to_numpy()
    frame["_t"] = (frame[variant].astype(str) != control).astype(float).to_numpy()

    # Rule 2: the same share of each arm is held out.
    rng = np.random.default_rng(seed)
    test = np.zeros(len(frame), dtype=bool)
    for arm in (0.0, 1.0):
        rows = np.flatnonzero(frame["_t"].to_numpy() == arm)
        if len(rows) < 20:
            raise NotComputableError(
                f"The {'treated' if arm else 'control'} arm has {len(rows)} people; at least 20 per arm are needed."
            )
        k = int(round(test_size * len(rows)))
        test[rng.permutation(rows)[:k]] = True
    frame["_test"] = test
    train = frame[~test]
    design = _Design.learn(train, features)
    x_train = design.matrix(train)
    fitted = {
        name: _MODEL_CLASSES[name]().fit(
            x_train, train["_t"].to_numpy(), train["_y"].to_numpy(), design.columns
        )
        for name in models
    }

    held = frame[test]
    x_test = design.matrix(held)
    predictions = pd.DataFrame(
        {"treated": held["_t"].astype(int).to_numpy(), "y": held["_y"].astype(int).to_numpy()}
    )
    if "user_id" in held.columns:
        predictions.insert(0, "user_id", held["user_id"].astype(str).to_numpy())
    deciles, qini_rows = [], []
    y_te, t_te = predictions["y"].to_numpy(float), predictions["treated"].to_numpy(float)
    everyone = _group_row(y_te, t_te, alpha)
    for i, (name, model) in enumerate(fitted.items()):
        u = model.predict(x_test)
        predictions[f"uplift_{name}"] = u
        deciles.append(uplift_by_decile(y_te, t_te, u, bins=bins, alpha=alpha).assign(model=name))
        boot = _bootstrap_qini(y_te, t_te, u, n_boot, seed=seed + 1 + i)
        top = top_share_uplift(y_te, t_te, u, top_share, alpha=alpha)
        qini_rows.append(
            {
                "model": name,
                "qini": qini_coefficient(y_te, t_te, u),
                "qini_ci_low": float(np.quantile(boot, alpha / 2)),
                "qini_ci_high": float(np.quantile(boot, 1 - alpha / 2)),
                "top_share": top_share,
                "top_targeted": top["targeted"],
                "top_uplift": top["uplift"],
                "top_ci_low": top["ci_low"],
                "top_ci_high": top["ci_high"],
                "all_uplift": everyone["uplift"],
                "all_ci_low": everyone["ci_low"],
                "all_ci_high": everyone["ci_high"],
                "top_share_of_incremental": (
                    top["targeted"] * top["uplift"] / (len(u) * everyone["uplift"])
                    if everyone["uplift"]
                    else float("nan")
                ),
            }
        )
    deciles_frame = pd.concat(deciles, ignore_index=True)
    deciles_frame = deciles_frame[["model", *[c for c in deciles_frame.columns if c != "model"]]]
    counts = {
        "people": len(frame),
        "other_variants": other,
        "train_treated": int((train["_t"] == 1).sum()),
        "train_control": int((train["_t"] == 0).sum()),
        "test_treated": int(t_te.sum()),
        "test_control": int(len(t_te) - t_te.sum()),
    }
    notes = []
    for name, model in fitted.items():
        fits = model.methods_ if name == "two_model" else {"transformed class": model.method_}
        for what, method in fits.items():
            if method.startswith("ridge"):
                notes.append(
                    f"{_upper_first(MODELS[name])}, {what}: {method}; its intervals are approximate."
                )
            elif "fixed at 0" in method:
                notes.append(f"{_upper_first(MODELS[name])}, {what}: {method.split('; ', 1)[1]}.")
    if other:
        notes.append(f"{other:,} rows of other variants were left out.")
    settings = {
        "outcome": outcome,
        "features": features,
        "variant": variant,
        "control": control,
        "treatment": treated_labels,
        "test_size": test_size,
        "top_share": top_share,
        "bins": int(bins),
        "n_boot": int(n_boot),
        "alpha": alpha,
        "seed": seed,
    }
    return UpliftResult(
        models=fitted,
        predictions=predictions,
        deciles=deciles_frame,
        qini=pd.DataFrame(qini_rows),
        data=frame,
        design=design,
        settings=settings,
        counts=counts,
        notes=notes,
    )
