"""Cross-check against ChannelAttribution (GPL; test-time only, never imported by journeylab).

Install for CI with ``pip install channelattribution`` (builds from source, about 75 s).
ChannelAttribution estimates removal effects by simulation, so its credit is compared
within its simulation noise; its transition matrix and heuristics are exact.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from journeylab.attribution import MarkovChain, attribute

ca = pytest.importorskip(
    "ChannelAttribution",
    reason="ChannelAttribution is not installed (pip install channelattribution); "
    "the exact models are checked against REFERENCES.md values elsewhere",
)

REF = json.loads((Path(__file__).parents[1] / "results" / "attribution_reference.json").read_text())


def d1_strings() -> pd.DataFrame:
    t = pd.DataFrame(REF["D1"]["table"])
    return pd.DataFrame({"path": t["path"], "conv": t["conversions"], "null": t["non_conversions"]})


def random_table(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    names = ["email", "social", "paid", "display", "sms"]
    paths = set()
    while len(paths) < 25:
        k = rng.integers(1, 5)
        p = list(rng.choice(names, k))
        p = [c for i, c in enumerate(p) if i == 0 or p[i - 1] != c]  # no repeats
        paths.add(" > ".join(p))
    paths = sorted(paths)
    return pd.DataFrame(
        {
            "path": paths,
            "conv": rng.integers(0, 40, len(paths)),
            "null": rng.integers(1, 60, len(paths)),
            "val": rng.integers(0, 40, len(paths)) * 25.0,
        }
    )


def ca_markov(frame, nsim=1e6, seed=0, max_step=200, **kw):
    # max_step=200: ChannelAttribution's default truncates simulated walks early, which
    # biases removal effects downwards (see attribution_reference.json); long walks let
    # its simulation converge to the exact absorbing-chain solution.
    return ca.markov_model(
        frame,
        "path",
        "conv",
        var_null="null",
        order=1,
        out_more=True,
        nsim_start=nsim,
        seed=seed,
        max_step=max_step,
        verbose=0,
        flg_pro=False,
        **kw,
    )


@pytest.mark.parametrize("make", [d1_strings, lambda: random_table(4)], ids=["D1", "random"])
def test_transition_matrix_same_as_channelattribution(make):
    frame = make()
    out = ca_markov(frame, nsim=1e4)
    names = dict(
        zip(out["result"]["channel_name"].index + 1, out["result"]["channel_name"], strict=True)
    )
    ours = MarkovChain().fit(frame, conversions="conv", non_conversions="null", value=None)
    tf = ours.transitions_frame().set_index(["from", "to"])["probability"]
    theirs = out["transition_matrix"]
    for row in theirs.itertuples():
        a = (
            names.get(int(row.channel_from), row.channel_from)
            if str(row.channel_from).isdigit()
            else row.channel_from
        )
        b = (
            names.get(int(row.channel_to), row.channel_to)
            if str(row.channel_to).isdigit()
            else row.channel_to
        )
        assert tf[(a, b)] == pytest.approx(row.transition_probability, abs=1e-6)


@pytest.mark.parametrize("make", [d1_strings, lambda: random_table(4)], ids=["D1", "random"])
def test_exact_markov_credit_within_channelattribution_simulation_noise(make):
    frame = make()
    ours = attribute(
        frame, ["markov"], conversions="conv", non_conversions="null", value_column=None
    ).to_frame()["markov"]
    out = ca_markov(frame, seed=0)
    theirs = out["result"].set_index("channel_name")["total_conversions"].reindex(ours.index)
    noise = REF["channelattribution_simulation_noise"]
    # Within simulation noise at 10^6 simulations: 1 % of the channel's credit + 0.25.
    assert ((ours - theirs).abs() <= 0.01 * ours + noise["credit_tolerance"]).all(), (ours, theirs)
    chain = MarkovChain().fit(frame, conversions="conv", non_conversions="null", value=None)
    re = out["removal_effects"].set_index("channel_name").iloc[:, 0].reindex(ours.index)
    np.testing.assert_allclose(chain.removal_effects_, re, rtol=noise["removal_effect_rtol"])


def test_heuristics_same_as_channelattribution():
    frame = random_table(7)
    theirs = ca.heuristic_models(frame, "path", "conv", var_value="val", flg_pro=False)
    theirs = theirs.set_index("channel_name")
    ours = attribute(
        frame,
        ["first_touch", "last_touch", "linear"],
        conversions="conv",
        non_conversions="null",
        value_column="val",
    )
    f = ours.to_frame()
    v = ours.value_credit
    for model, col in (
        ("first_touch", "first_touch"),
        ("last_touch", "last_touch"),
        ("linear", "linear_touch"),
    ):
        np.testing.assert_allclose(f[model], theirs.loc[f.index, f"{col}_conversions"], atol=1e-9)
        np.testing.assert_allclose(v[model], theirs.loc[f.index, f"{col}_value"], atol=1e-9)


def test_channelattribution_moves_with_seed_exact_does_not():
    frame = d1_strings()
    a = ca_markov(frame, nsim=1e5, seed=0)["result"]["total_conversions"].to_numpy()
    b = ca_markov(frame, nsim=1e5, seed=1)["result"]["total_conversions"].to_numpy()
    shuffled = frame.sample(frac=1, random_state=3)
    c = ca_markov(shuffled, nsim=1e5, seed=0)["result"].set_index("channel_name")
    ours = attribute(
        frame, ["markov"], conversions="conv", non_conversions="null", value_column=None
    ).to_frame()["markov"]
    ours_shuffled = attribute(
        shuffled, ["markov"], conversions="conv", non_conversions="null", value_column=None
    ).to_frame()["markov"]
    pd.testing.assert_series_equal(ours, ours_shuffled, rtol=0, atol=0)
    # The simulation moves with its seed and row order (the reason the exact solve exists).
    spread = max(
        np.abs(a - b).max(),
        np.abs(a - c.loc[["A", "B", "C"], "total_conversions"].to_numpy()).max(),
    )
    assert spread > 1e-3
