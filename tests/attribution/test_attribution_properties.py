"""Properties 1-7 of REFERENCES.md ("Attribution") over random path tables (hypothesis)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeylab.attribution import absorbing, attribute

MODELS = ["first_touch", "last_touch", "last_non_direct", "linear", "position", "markov", "shapley"]
NAMES = ["email", "social", "paid", "direct", "sms"]
PROPS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def path_tables(draw, fractional: bool = False):
    n = draw(st.integers(1, 7))
    rows = []
    for _ in range(n):
        path = tuple(draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=5)))
        if fractional:
            conv = draw(st.floats(0, 20, allow_nan=False).map(lambda x: round(x, 3)))
            null = draw(st.floats(0, 20, allow_nan=False).map(lambda x: round(x, 3)))
        else:
            conv = draw(st.integers(0, 30))
            null = draw(st.integers(0, 30))
        per = draw(st.floats(1, 500, allow_nan=False))
        rows.append((path, conv, conv * per, null))
    frame = pd.DataFrame(rows, columns=["path", "conversions", "value", "non_conversions"])
    if frame["conversions"].sum() == 0:
        frame.loc[0, ["conversions", "value"]] = [1, 10.0]
    return frame


def credit(frame, value=False, **kw):
    return attribute(frame, MODELS, value=value, **kw).to_frame()[MODELS]


@PROPS
@given(path_tables(), st.sampled_from([1, 2, 3]))
def test_efficiency_conversions_and_value(frame, order):
    for value, total in ((False, frame["conversions"].sum()), (True, frame["value"].sum())):
        sums = credit(frame, value=value, order=order).sum()
        np.testing.assert_allclose(sums.to_numpy(), total, rtol=1e-9, atol=1e-9)


@PROPS
@given(path_tables(fractional=True))
def test_efficiency_with_fractional_weights(frame):
    sums = credit(frame).sum()
    np.testing.assert_allclose(sums.to_numpy(), frame["conversions"].sum(), rtol=1e-9, atol=1e-9)


@PROPS
@given(path_tables(), st.permutations(NAMES))
def test_relabelling_permutes_credit(frame, perm):
    mapping = {a: f"ch_{b}" for a, b in zip(NAMES, perm, strict=True)}
    relabelled = frame.assign(path=[tuple(mapping[c] for c in p) for p in frame["path"]])
    a = credit(frame, direct="none")
    b = credit(relabelled, direct="none")
    b.index = [{v: k for k, v in mapping.items()}[c] for c in b.index]
    pd.testing.assert_frame_equal(
        a.sort_index(),
        b.sort_index(),
        check_names=False,
        check_index_type=False,
        rtol=1e-9,
        atol=1e-9,
    )


@PROPS
@given(path_tables(), st.randoms(use_true_random=False))
def test_row_order_and_row_splitting_change_nothing(frame, rnd):
    base = credit(frame)
    shuffled = frame.sample(frac=1.0, random_state=rnd.randint(0, 10_000))
    pd.testing.assert_frame_equal(base, credit(shuffled), rtol=1e-12, atol=1e-12)
    half = frame.copy()
    for col in ("conversions", "value", "non_conversions"):
        half[col] = half[col] / 2
    split = pd.concat([half, half.iloc[::-1]], ignore_index=True)
    pd.testing.assert_frame_equal(base, credit(split), rtol=1e-9, atol=1e-9)


@PROPS
@given(path_tables(), st.sampled_from([1, 2]))
def test_symmetric_channels_get_equal_credit(frame, order):
    swap = {"email": "social", "social": "email"}
    mirrored = frame.assign(path=[tuple(swap.get(c, c) for c in p) for p in frame["path"]])
    sym = pd.concat([frame, mirrored], ignore_index=True)
    f = credit(sym, order=order)
    if "email" in f.index or "social" in f.index:
        np.testing.assert_allclose(f.loc["email"], f.loc["social"], rtol=1e-9, atol=1e-9)


@PROPS
@given(path_tables())
def test_unseen_channel_zero_and_null_only_channel(frame):
    lost = pd.DataFrame(
        {
            "path": [("never_converts", "email")],
            "conversions": [0],
            "value": [0.0],
            "non_conversions": [5],
        }
    )
    f = credit(pd.concat([frame, lost], ignore_index=True), channels=["unseen"])
    assert (f.loc["unseen"] == 0).all()
    # Heuristics and Shapley give a null-only channel nothing; Markov may give it credit.
    assert (f.loc["never_converts", [m for m in MODELS if m != "markov"]] == 0).all()
    assert f.loc["never_converts", "markov"] >= 0


@PROPS
@given(path_tables(), st.sampled_from([1, 2, 4]))
def test_credit_finite_nonnegative_and_removal_effects_in_unit_interval(frame, order):
    res = attribute(frame, MODELS, order=order)
    f = res.to_frame()
    assert np.isfinite(f.to_numpy()).all() and (f.to_numpy() >= 0).all()
    re = res.chain.removal_effects_
    assert ((re >= 0) & (re <= 1)).all()
    assert ((res.chain.value_removal_effects_ >= 0) & (res.chain.value_removal_effects_ <= 1)).all()
    p = res.chain.conversion_probability_
    assert ((p >= -1e-12) & (p <= 1 + 1e-12)).all()


@settings(max_examples=6, deadline=None)
@given(path_tables(), st.integers(0, 2**31))
def test_same_input_same_seed_same_output(frame, seed):
    a = attribute(frame, MODELS, n_boot=30, seed=seed)
    b = attribute(frame, MODELS, n_boot=30, seed=seed)
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame(), rtol=0, atol=0)
    assert a.summary() == b.summary()


def test_shapley_permutation_sampling_is_seeded():
    frame = pd.DataFrame({"path": [("a", "b"), ("b", "c"), ("a",)], "conversions": [5, 3, 2]})
    kw = dict(
        shapley_method="permutation", n_permutations=200, value_column=None, non_conversions=None
    )
    a = attribute(frame, ["shapley"], seed=4, **kw).to_frame()
    b = attribute(frame, ["shapley"], seed=4, **kw).to_frame()
    pd.testing.assert_frame_equal(a, b, rtol=0, atol=0)
    assert a["shapley"].sum() == pytest.approx(10)


@PROPS
@given(path_tables(fractional=True), st.sampled_from([1, 2, 3]))
def test_removal_effects_by_walk_equal_factorised_ones(frame, order):
    """The walk from the start (chains above the dense size) gives the removal effects of
    one factorisation per channel, to machine precision, and of the dense route."""
    import journeylab.attribution.markov as mk

    dense = mk.MarkovChain(order=order).fit(frame)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(absorbing, "_DENSE_LIMIT", 0)
        walked = mk.MarkovChain(order=order).fit(frame)
        patch.setattr(absorbing, "_WALK_STEPS", 0)  # no walk: one LU per channel
        factorised = mk.MarkovChain(order=order).fit(frame)
    for name in ("removal_effects_", "value_removal_effects_", "credit_"):
        exact = getattr(factorised, name).to_numpy()
        np.testing.assert_allclose(getattr(walked, name), exact, rtol=0, atol=1e-12)
        np.testing.assert_allclose(getattr(dense, name), exact, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        walked.conversion_probability_, dense.conversion_probability_, rtol=0, atol=1e-12
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path_tables(fractional=True), st.booleans())
def test_rule_credit_sums_what_the_share_matrix_gives(frame, collapse):
    from journeylab.attribution.heuristics import rule_credit, share_matrix
    from journeylab.attribution.paths import read_path_table

    table = read_path_table(frame, collapse_repeats=collapse)
    weights = (table.conversions, table.value)
    for model in ("first_touch", "last_touch", "last_non_direct", "linear", "position"):
        fast = rule_credit(table, model, weights)
        w = share_matrix(table, model)
        for got, x in zip(fast, weights, strict=True):
            expected = w.T @ x
            if model == "linear":  # a channel met twice in a path: two shares or one doubled
                np.testing.assert_allclose(got, expected, rtol=1e-14, atol=1e-12)
            else:  # the same sums in the same order
                np.testing.assert_array_equal(got, expected)
