"""Attribution models against reference values (D1 of REFERENCES.md, hand calculations)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from journeylab.attribution import (
    MarkovChain,
    absorbing,
    attribute,
    read_path_table,
    shapley,
    time_decay,
)
from journeylab.attribution.heuristics import last_non_direct, position_based
from journeylab.core.errors import ParameterError

REFERENCE = json.loads(
    (Path(__file__).parents[1] / "results" / "attribution_reference.json").read_text()
)
D1 = REFERENCE["D1"]


def d1_frame() -> pd.DataFrame:
    return pd.DataFrame(D1["table"])


def as_dict(series: pd.Series) -> dict[str, float]:
    return {k: float(v) for k, v in series.items()}


def test_markov_order1_same_as_reference_d1():
    chain = MarkovChain(order=1).fit(d1_frame())
    ref = D1["markov_order1"]
    for ch, v in ref["removal_effects"].items():
        assert chain.removal_effects_[ch] == pytest.approx(v, abs=1e-6)
    for ch, v in ref["credit"].items():
        assert chain.credit_[ch] == pytest.approx(v, abs=1e-6)
    assert chain.credit_.sum() == pytest.approx(33, abs=1e-12)


def test_markov_transition_matrix_same_as_channelattribution_d1():
    chain = MarkovChain().fit(d1_frame())
    tf = chain.transitions_frame()
    probs = {f"{r['from']} > {r['to']}": r["probability"] for _, r in tf.iterrows()}
    for key, v in D1["transition_probabilities"].items():
        if key == "provenance":
            continue
        assert probs[key] == pytest.approx(v, abs=1e-6)
    # Row-stochastic, absorbing states loop on themselves.
    m = chain.transition_matrix_.toarray()
    np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-12)
    assert chain.states_[0] == "(start)" and chain.states_[-2:] == ["(conversion)", "(null)"]
    # P(conversion) from the start equals the share of journeys that convert.
    assert chain.conversion_probability_["(start)"] == pytest.approx(33 / 82, abs=1e-12)


def test_heuristics_and_shapley_same_as_reference_d1():
    res = attribute(d1_frame(), ["first_touch", "last_touch", "linear", "shapley"])
    f = res.to_frame()
    for model in ("first_touch", "last_touch", "linear", "shapley"):
        for ch, v in D1[model].items():
            assert f.at[ch, model] == pytest.approx(v, abs=1e-6), model


def test_attribute_markov_equals_reference_d1():
    f = attribute(d1_frame(), ["markov"]).to_frame()
    for ch, v in D1["markov_order1"]["credit"].items():
        assert f.at[ch, "markov"] == pytest.approx(v, abs=1e-6)


def test_channelattribution_string_table_gives_same_credit():
    t = d1_frame().rename(
        columns={
            "path": "path_str",
            "conversions": "total_conversions",
            "non_conversions": "total_null",
        }
    )
    t["path_str"] = t["path_str"].str.replace(" > ", ">")
    f = attribute(
        t,
        ["markov"],
        path="path_str",
        conversions="total_conversions",
        non_conversions="total_null",
        value_column=None,
    ).to_frame()
    assert f.at["A", "markov"] == pytest.approx(11.058775, abs=1e-6)


@pytest.mark.parametrize("route", ["sparse_lu", "fixed_point"])
def test_sparse_solver_routes_equal_dense_route(monkeypatch, route):

    monkeypatch.setattr(absorbing, "_DENSE_LIMIT", 0)
    if route == "fixed_point":
        monkeypatch.setattr(absorbing, "_SPARSE_LU_LIMIT", 0)
    chain = MarkovChain().fit(d1_frame())
    for ch, v in D1["markov_order1"]["removal_effects"].items():
        assert chain.removal_effects_[ch] == pytest.approx(v, abs=1e-6)
    effects = chain.transition_effects()
    assert effects["transition"].iloc[0] == "A > B"


@pytest.mark.parametrize("order", [1, 2])
def test_markov_order_k_by_hand(order):
    ref = REFERENCE["order2_hand"]
    chain = MarkovChain(order=order).fit(pd.DataFrame(ref["table"]))
    exp = ref[f"order{order}"]
    assert as_dict(chain.removal_effects_) == pytest.approx(exp["removal_effects"], abs=1e-12)
    assert as_dict(chain.credit_) == pytest.approx(exp["credit"], abs=1e-12)


def test_markov_order2_states_are_last_two_channels():
    chain = MarkovChain(order=2).fit(d1_frame())
    assert "A > B" in chain.states_ and "B > C" in chain.states_ and "A" in chain.states_
    # A > B > C: the state after C remembers B > C, not A > B > C.
    assert "A > B > C" not in chain.states_
    assert chain.credit_.sum() == pytest.approx(33, abs=1e-9)


def test_higher_orders_credit_sums_and_order_checked():
    for k in (3, 4):
        chain = MarkovChain(order=k).fit(d1_frame())
        assert chain.credit_.sum() == pytest.approx(33, abs=1e-9)
        assert ((chain.removal_effects_ >= 0) & (chain.removal_effects_ <= 1)).all()
    with pytest.raises(ParameterError, match="order == 5"):
        MarkovChain(order=5).fit(d1_frame())


def test_transition_removal_effects_d1():
    eff = MarkovChain().fit(d1_frame()).transition_effects()
    assert list(eff["transition"]) == ["A > B", "B > C", "A > C", "C > A"]
    assert eff["journeys"].tolist() == [23.0, 18.0, 10.0, 6.0]
    # By hand: drop the A > B edge (its 23 walks end in null) and solve the
    # three-state system of D1's transition counts directly.
    p = MarkovChain().fit(d1_frame()).conversion_probability_
    q = np.array([[0, 0, 10 / 52], [0, 0, 18 / 43], [6 / 44, 0, 0]])
    r = np.array([5 / 52, 11 / 43, 17 / 44])
    x = np.linalg.solve(np.eye(3) - q, r)
    start = (23 * x[0] + 10 * x[1] + 8 * x[2]) / 41
    assert eff.loc[0, "removal_effect"] == pytest.approx(1 - start / p["(start)"], abs=1e-12)


def test_position_based_weights():
    t = read_path_table(
        pd.DataFrame({"path": ["A > B > C > D", "A > B", "A"], "conversions": [1, 1, 1]}),
        value=None,
    )
    w = position_based(t).toarray()
    np.testing.assert_allclose(w[0], [1.0, 0, 0, 0])  # "A" (sorted first)
    np.testing.assert_allclose(w[1], [0.5, 0.5, 0, 0])  # "A > B": 40:40
    np.testing.assert_allclose(w[2], [0.4, 0.1, 0.1, 0.4])  # 40 / 20 split / 40
    w2 = position_based(t, (0.3, 0.4, 0.3)).toarray()
    np.testing.assert_allclose(w2[2], [0.3, 0.2, 0.2, 0.3])
    with pytest.raises(ParameterError, match="summing to 1"):
        position_based(t, (0.5, 0.5, 0.5))


def test_last_non_direct_skips_direct():
    t = read_path_table(
        pd.DataFrame(
            {
                "path": [("email", "direct"), ("direct",), ("social", "direct", "Direct")],
                "conversions": [3, 2, 1],
            }
        ),
        value=None,
    )
    credit = last_non_direct(t).T @ t.conversions
    got = dict(zip(t.channels, credit, strict=True))
    # "Direct" (capitalised) is another channel; "direct" alone keeps its credit.
    assert got == {"Direct": 1.0, "direct": 2.0, "email": 3.0, "social": 0.0}
    credit2 = last_non_direct(t, direct=["direct", "Direct"]).T @ t.conversions
    assert dict(zip(t.channels, credit2, strict=True))["social"] == 1.0


def test_shapley_methods_agree():
    t = read_path_table(d1_frame())
    exact = shapley(t)["credit"]
    enum = shapley(t, method="enumerate")["credit"]
    np.testing.assert_allclose(exact, enum, atol=1e-12)
    sampled = shapley(t, method="permutation", n_permutations=4000, seed=3)
    # Within 4 standard errors of the exact value, and the error is stated.
    assert (abs(sampled["credit"] - exact) < 4 * sampled["standard_error"] + 1e-12).all()
    assert (sampled["standard_error"] > 0).all()
    assert sampled["credit"].sum() == pytest.approx(33, abs=1e-9)


def test_shapley_enumeration_on_repeated_channels_and_value():
    t = read_path_table(
        pd.DataFrame(
            {
                "path": [("a", "b", "a"), ("b", "c"), ("c",), ("a", "c", "d")],
                "conversions": [4, 3, 2, 6],
                "value": [40.0, 30.0, 20.0, 66.0],
                "non_conversions": [1, 1, 1, 1],
            }
        ),
        collapse_repeats=False,
    )
    for value in (False, True):
        exact = shapley(t, value=value)["credit"].to_numpy()
        enum = shapley(t, value=value, method="enumerate")["credit"].to_numpy()
        np.testing.assert_allclose(exact, enum, atol=1e-9)
    # a: 4/2 + 6/3 = 4, b: 2 + 1.5 = 3.5, c: 1.5 + 2 + 2 = 5.5, d: 2
    np.testing.assert_allclose(shapley(t)["credit"], [4, 3.5, 5.5, 2])


def test_time_decay_half_life():
    ts = pd.to_datetime(["2026-01-01", "2026-01-08", "2026-01-15", "2026-01-03"], utc=True)
    touches = pd.DataFrame(
        {
            "journey_id": [1, 1, 1, 2],
            "timestamp": ts,
            "channel": ["A", "B", "C", "A"],
            "converted": [True, True, True, False],
            "value": [90.0, 90.0, 90.0, np.nan],
            "conversion_time": pd.Timestamp("2026-01-15", tz="UTC"),
        }
    )
    got = time_decay(touches, half_life=7)
    # weights 1/4, 1/2, 1 -> shares 1/7, 2/7, 4/7
    np.testing.assert_allclose(got.to_numpy(), [1 / 7, 2 / 7, 4 / 7])
    np.testing.assert_allclose(
        time_decay(touches, "7D", value=True).to_numpy(), [90 / 7, 180 / 7, 360 / 7]
    )
    res = attribute(touches, ["time_decay", "last_touch"], value=True)
    assert res.to_frame().loc["C", "time_decay"] == pytest.approx(360 / 7)
    assert res.to_frame().loc["C", "last_touch"] == pytest.approx(90)
    with pytest.raises(ParameterError, match="needs touch timestamps"):
        attribute(d1_frame(), ["time_decay"])


def test_value_credit_uses_value_chain():
    paths = pd.DataFrame(
        {
            "path": [("A",), ("B",)],
            "conversions": [10, 10],
            "value": [100.0, 300.0],
            "non_conversions": [0, 0],
        }
    )
    res = attribute(paths, ["markov", "linear"], value=True)
    f = res.to_frame()
    assert f.at["A", "linear"] == 100 and f.at["B", "linear"] == 300
    # Removing B loses 3/4 of the expected value, removing A 1/4.
    assert f.at["A", "markov"] == pytest.approx(100)
    assert f.at["B", "markov"] == pytest.approx(300)
    assert res.chain.value_removal_effects_.to_dict() == pytest.approx({"A": 0.25, "B": 0.75})
    assert res.chain.removal_effects_.to_dict() == pytest.approx({"A": 0.5, "B": 0.5})


def test_unknown_model_is_named_with_hint():
    with pytest.raises(ParameterError, match="did you mean 'markov'"):
        attribute(d1_frame(), ["markow"])


def test_transition_effects_order2_use_last_channels():
    ref = REFERENCE["order2_hand"]
    eff = MarkovChain(order=2).fit(pd.DataFrame(ref["table"])).transition_effects()
    # A > B carries every conversion; C > B none.
    got = dict(zip(eff["transition"], eff["removal_effect"], strict=True))
    assert got == pytest.approx({"A > B": 1.0, "C > B": 0.0})


def test_transition_effects_from_one_inverse_equal_one_solve_per_transition(
    monkeypatch, small_sample
):
    """Chains of 301-2,000 states use a Woodbury update of one inverse; check it
    against the plain per-transition sparse solve on the same chain."""
    from journeylab.attribution import markov
    from journeylab.journeys.build import path_table

    chain = markov.MarkovChain(order=3).fit(
        path_table(
            small_sample.events, stage_map=small_sample.stage_map, conversion="booking_completed"
        )
    )
    assert absorbing._DENSE_LIMIT < chain._n_states <= absorbing._WOODBURY_LIMIT
    fast = chain.transition_effects()
    monkeypatch.setattr(absorbing, "_WOODBURY_LIMIT", 0)  # force the per-transition solves
    slow = chain.transition_effects()
    merged = fast.merge(slow, on=["transition", "from", "to"], suffixes=("_fast", "_slow"))
    assert len(merged) == len(fast) == len(slow) > 50
    for col in ("journeys", "removal_effect", "value_removal_effect"):
        np.testing.assert_allclose(merged[f"{col}_fast"], merged[f"{col}_slow"], rtol=0, atol=1e-12)


def test_long_lived_loops_fall_back_to_factorising(monkeypatch):
    """A ping-pong between two channels keeps walkers in the chain for thousands of steps:
    the walk gives up and each removal is factorised, with the dense route's answer."""
    import journeylab.attribution.markov as mk

    frame = pd.DataFrame(
        {
            "path": [("A", "B") * 2000, ("A",), ("B",)],
            "conversions": [1, 2, 1],
            "value": [10.0, 20.0, 10.0],
            "non_conversions": [0, 3, 4],
        }
    )
    dense = mk.MarkovChain().fit(frame)
    calls = []
    factorise = mk.MarkovChain._removal_lu
    monkeypatch.setattr(absorbing, "_DENSE_LIMIT", 0)
    monkeypatch.setattr(
        mk.MarkovChain, "_removal_lu", lambda self, *a: calls.append(1) or factorise(self, *a)
    )
    sparse = mk.MarkovChain().fit(frame)
    assert calls == [1]
    np.testing.assert_allclose(sparse.removal_effects_, dense.removal_effects_, atol=1e-10)
    np.testing.assert_allclose(sparse.value_credit_, dense.value_credit_, atol=1e-8)


def test_order3_walk_and_bootstrap_agree_with_factorising(monkeypatch, small_sample):
    """An order-3 chain of the sample (hundreds of states): removal effects by the walk,
    and a bootstrap replicate with unchanged counts, equal one LU per channel."""
    from journeylab.attribution import markov
    from journeylab.journeys.build import path_table

    paths = path_table(
        small_sample.events, stage_map=small_sample.stage_map, conversion="booking_completed"
    )
    walked = markov.MarkovChain(order=3).fit(paths)
    assert absorbing._DENSE_LIMIT < walked._n_states
    table = walked.table_
    credit, _, effects = markov.markov_credit(
        walked, table.conversions[None], table.value[None], table.non_conversions[None]
    )
    monkeypatch.setattr(absorbing, "_WALK_STEPS", 0)
    factorised = markov.MarkovChain(order=3).fit(paths)
    exact = factorised.removal_effects_.to_numpy()
    np.testing.assert_allclose(walked.removal_effects_, exact, rtol=0, atol=1e-13)
    np.testing.assert_allclose(effects[0], exact, rtol=0, atol=1e-13)
    np.testing.assert_allclose(credit[0], factorised.credit_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(
        walked.conversion_probability_, factorised.conversion_probability_, rtol=0, atol=1e-13
    )
