"""The seeded e-commerce sample: contract, determinism and planted effects.

Each planted effect is recovered from the generated tables by a direct
computation (rates per segment, differences of arm means, a BH-controlled
segment-gap search in ``gap_search.py``, a BG/NBD likelihood fit, a
first-order Markov removal-effect calculation after Anderl et al. 2016) and
compared with ``truth`` within binomial error bands, on three seeds.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal
from scipy import optimize, stats

import test_datasets as home
from gap_search import local_clock, lower, search, step_cells
from journeylab.core.errors import ParameterError
from journeylab.datasets import ecommerce_shop as shop
from journeylab.datasets.sample import VERTICALS, main, make_sample
from journeylab.datasets.sample_bundle import TABLES
from journeylab.io.identities import resolve_identities
from journeylab.reports.workspace import open_workspace

STR = home.STR
UTC_NS = home.UTC_NS
z_tolerance = home.z_tolerance
CONTRACT = {
    "events": {
        "user_id": STR,
        "timestamp": UTC_NS,
        "event": STR,
        "channel": STR,
        "value": "float64",
        "session_id": STR,
        "platform": STR,
        "country": STR,
    },
    "users": {
        "user_id": STR,
        "platform": STR,
        "country": STR,
        "acquisition_channel": STR,
        "shopper_type": STR,
        "first_seen": UTC_NS,
    },
    "assignments": {
        "user_id": STR,
        "variant": STR,
        "assigned_at": UTC_NS,
        "platform": STR,
        "country": STR,
        "pre_orders": "int64",
        "pre_revenue": "float64",
    },
    "feedback": home.CONTRACT["feedback"],
    "spend": home.CONTRACT["spend"],
    "transactions": home.CONTRACT["transactions"],
    "identities": {"id": STR, "user_id": STR},
}
SEEDS = (2026, 11, 12)


@pytest.fixture(scope="module")
def small():
    return make_sample(seed=7, n_users=3_000, vertical="ecommerce")


@pytest.fixture(scope="module", params=SEEDS)
def seeded(request):
    return make_sample(seed=request.param, n_users=20_000, vertical="ecommerce")


# -- contract -----------------------------------------------------------------------
def test_tables_follow_the_contract_with_their_own_names(small):
    for name, columns in CONTRACT.items():
        frame = getattr(small, name)
        assert list(frame.columns) == list(columns), name
        for column, dtype in columns.items():
            assert frame[column].dtype == dtype, (name, column, frame[column].dtype)
    # nothing is named like the home-services sample, so code assuming it breaks
    home_sample = make_sample(seed=7, n_users=300)
    shared = set(small.events["event"]) & set(home_sample.events["event"])
    assert shared == {"ad_impression"}  # the one touchpoint both businesses log
    for column in ("device", "region", "crew", "persona", "response_minutes"):
        assert column not in small.events and column not in small.users
    assert small.users["user_id"].str.fullmatch(r"c\d{7}").all()
    assert small.truth["vertical"] == "ecommerce" and small.stage_map == shop.stage_map()


def test_values_are_in_their_vocabularies(small):
    ev = small.events
    vocabulary = {e for stage in shop.STAGE_MAP["stages"] for e in stage["events"]}
    assert set(ev["event"]) == vocabulary
    assert set(ev["channel"].dropna()) == set(shop.CHANNELS)
    assert set(ev["platform"]) == {"web", "ios", "android"}
    assert set(ev["country"]) == set(shop.COUNTRIES)
    sessions = ev[ev["event"] == "session_start"]
    assert sessions["channel"].notna().all() and sessions["session_id"].notna().all()
    # push notifications only reach the apps
    assert sessions.loc[sessions["channel"] == "push", "platform"].isin(["ios", "android"]).all()
    assert ev.loc[ev["event"] == "email_open", "channel"].eq("email").all()
    assert ev.loc[ev["event"] == "ad_impression", "channel"].isin(shop.AD_CHANNELS).all()
    has_value = ev["event"].isin(["purchase", "repeat_purchase"])
    assert ev.loc[has_value, "value"].gt(0).all() and ev.loc[~has_value, "value"].isna().all()
    # the checkout happens in one session, in funnel order
    checkout = ev[
        ev["event"].isin(["add_to_cart", "checkout_start", "payment_details", "purchase"])
    ]
    assert checkout["session_id"].notna().all()
    first = ev.groupby(["user_id", "event"])["timestamp"].min().unstack()
    steps = ["add_to_cart", "checkout_start", "payment_details", "purchase"]
    for a, b in zip(steps, steps[1:], strict=False):
        both = first[[a, b]].dropna()
        assert (both[a] <= both[b]).all(), (a, b)
    tx = small.transactions
    assert len(tx) == has_value.sum() and tx["order_id"].is_unique
    assert set(small.spend["channel"]) == set(shop.PAID_CHANNELS)


def test_same_seed_gives_identical_tables_and_other_seeds_differ():
    a = make_sample(seed=5, n_users=1_500, vertical="ecommerce")
    b = make_sample(seed=5, n_users=1_500, vertical="ecommerce")
    for name in TABLES:
        assert_frame_equal(getattr(a, name), getattr(b, name))
    assert json.dumps(a.truth, default=str) == json.dumps(b.truth, default=str)
    c = make_sample(seed=6, n_users=1_500, vertical="ecommerce")
    assert not a.events.equals(c.events) and not a.feedback.equals(c.feedback)


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**31), n_users=st.integers(1, 300), months=st.integers(1, 3))
def test_any_small_sample_is_well_formed(seed, n_users, months):
    s = make_sample(
        seed=seed, n_users=n_users, start="2025-12-15", months=months, vertical="ecommerce"
    )
    start = pd.Timestamp("2025-12-15", tz="UTC")
    end = start + pd.DateOffset(months=months)
    assert len(s.users) == n_users
    for frame in (s.events, s.feedback, s.transactions):
        assert frame["timestamp"].between(start, end, inclusive="left").all()
    assert s.events["user_id"].is_monotonic_increasing
    assert set(s.assignments["user_id"]) <= set(s.users["user_id"])
    assert s.spend.groupby("channel")["date"].nunique().eq((end - start).days).all()
    res = resolve_identities(s.logged_events(), s.identities)
    assert res.rows_in == res.rows_out == len(s.events) and res.ids_unmapped == 0


def test_an_unknown_vertical_is_a_clear_error():
    assert VERTICALS == ("home_services", "ecommerce")
    with pytest.raises(
        ParameterError, match=r"vertical == 'e-commerce', must be one of .*did you mean 'ecommerce'"
    ):
        make_sample(n_users=10, vertical="e-commerce")


# -- planted effects ------------------------------------------------------------------------
def _entrants(sample, step_from: str, step_to: str) -> pd.DataFrame:
    """Users who reached ``step_from`` (first time), whether they reached ``step_to`` after."""
    ev = sample.events
    entered = ev[ev["event"] == step_from].drop_duplicates("user_id")
    reached = ev[ev["event"] == step_to].groupby("user_id")["timestamp"].min()
    after = entered["user_id"].map(reached)
    clock = local_clock(entered["timestamp"], sample.truth["timezone"])
    entered = entered.merge(sample.users[["user_id", "shopper_type"]], on="user_id", how="left")
    return entered.assign(
        converted=(
            after.notna() & (after.to_numpy() >= entered["timestamp"].to_numpy())
        ).to_numpy(),
        **{k: v.to_numpy() for k, v in clock.items()},
    )


def test_payment_fails_far_more_in_the_android_app(seeded):
    truth = seeded.truth["android_payment"]
    assert truth["step"] == ("payment_details", "purchase") and truth["segments"] == ["android"]
    entrants = _entrants(seeded, *truth["step"])
    rates = entrants.groupby("platform")["converted"].agg(["mean", "size"])
    for platform, expected in truth["completion_rate"].items():
        mean, size = rates.loc[platform]
        assert abs(mean - expected) < z_tolerance(expected, size), platform
    assert truth["completion_rate"]["web"] - truth["completion_rate"]["android"] > 0.3


def test_carts_filled_while_delivery_is_slow_reach_checkout_far_less(seeded):
    truth = seeded.truth["inconvenient_timing"]
    assert (
        truth["step"] == ("add_to_cart", "checkout_start")
        and truth["timezone"] == "Europe/Amsterdam"
    )
    entrants = _entrants(seeded, *truth["step"])
    local = entrants["timestamp"].dt.tz_convert(truth["timezone"])
    slow = (local.dt.day_of_week >= 5) | ((local.dt.day_of_week == 4) & (local.dt.hour >= 15))
    for group, mask in (("inside", ~slow), ("outside", slow)):
        expected = truth["completion_rate"][group]
        rate, n = entrants.loc[mask.to_numpy(), "converted"].mean(), int(mask.sum())
        assert abs(rate - expected) < z_tolerance(expected, n), (group, rate, expected, n)
    assert truth["completion_rate"]["inside"] - truth["completion_rate"]["outside"] > 0.3


def test_a_segment_gap_search_with_bh_control_finds_the_planted_gaps(seeded):
    truth = seeded.truth
    dims = ["platform", "country", "shopper_type", "hour_of_day", "day_of_week"]
    steps = [
        "session_start",
        "product_view",
        "add_to_cart",
        "checkout_start",
        "payment_details",
        "purchase",
    ]
    table = search(
        [
            step_cells(f"{a} → {b}", _entrants(seeded, a, b), dims)
            for a, b in zip(steps[2:], steps[3:], strict=False)
        ]
    )
    pay, cart, details = (
        "payment_details → purchase",
        "add_to_cart → checkout_start",
        "checkout_start → payment_details",
    )
    assert lower(table, pay, "platform") == {"android"}
    weekend = set(truth["inconvenient_timing"]["segments"]["day_of_week"])
    assert weekend <= lower(table, cart, "day_of_week") <= weekend | {"Friday"}
    # without local payment methods (the control arm, half the users) NL and DE lag
    lagging = lower(table, details, "country")
    assert lagging & {"NL", "DE"} and lagging <= {"NL", "DE", "KR"}
    assert not lower(table, pay, "country")  # payment failures are the app's, not the country's


def test_local_payment_methods_lift_purchases_most_in_nl_and_de(seeded):
    uplift, experiment = seeded.truth["uplift"], seeded.truth["experiment"]
    assert uplift["experiment"] == experiment["name"] == "local_payment_methods"
    assert uplift["dimension"] == "country" and set(uplift["lift"]) == set(shop.COUNTRIES)
    assert (
        min(uplift["lift"]["NL"], uplift["lift"]["DE"])
        > 0.03
        > max(uplift["lift"][c] for c in ("GB", "US", "KR"))
    )
    bought = set(seeded.events.loc[seeded.events["event"] == "purchase", "user_id"])
    a = seeded.assignments.assign(purchased=lambda d: d["user_id"].isin(bought))
    rates = a.groupby(["country", "variant"])["purchased"].agg(["mean", "size"])
    for country, lift in uplift["lift"].items():
        c, t = rates.loc[(country, "control")], rates.loc[(country, "local_methods")]
        se = np.sqrt(
            c["mean"] * (1 - c["mean"]) / c["size"] + t["mean"] * (1 - t["mean"]) / t["size"]
        )
        assert abs(t["mean"] - c["mean"] - lift) < 4 * se, country
        base = uplift["baseline"][country]
        assert abs(c["mean"] - base) < z_tolerance(base, int(c["size"])), country
    share = a["country"].value_counts(normalize=True)
    overall = sum(share[c] * uplift["lift"][c] for c in uplift["lift"])
    assert overall == pytest.approx(experiment["abs_lift"], abs=2e-4)
    # the overall difference of arm means estimates the planted lift; the split is 50/50
    arms = a.groupby("variant")["purchased"].agg(["mean", "size"])
    diff = arms.loc["local_methods", "mean"] - arms.loc["control", "mean"]
    se = np.sqrt((arms["mean"] * (1 - arms["mean"]) / arms["size"]).sum())
    assert abs(diff - experiment["abs_lift"]) < 4 * se and diff / se > 3
    assert stats.chisquare(arms["size"].to_numpy()).pvalue > 1e-3


def test_broken_split_fails_a_sample_ratio_check():
    broken = make_sample(seed=2026, n_users=20_000, vertical="ecommerce", broken_split=True)
    counts = broken.assignments["variant"].value_counts()
    assert stats.chisquare([counts["control"], counts["local_methods"]]).pvalue < 1e-3
    intact = make_sample(seed=2026, n_users=20_000, vertical="ecommerce").assignments
    assert (
        len(intact) - len(broken.assignments) == broken.truth["experiment"]["lost_assignment_rows"]
    )
    assert 0.04 < broken.truth["experiment"]["lost_assignment_rows"] / counts["control"] < 0.08


def test_nps_dips_at_retention_and_comments_match_language_and_score(seeded):
    truth = seeded.truth["satisfaction"]
    assert (
        truth["dip_stage"]
        == "retention"
        == min(truth["nps_by_stage"], key=truth["nps_by_stage"].get)
    )
    fb_ = seeded.feedback
    nps = fb_[fb_["survey"] == "nps"]
    for stage, expected in truth["nps_by_stage"].items():
        scores = nps.loc[nps["stage"] == stage, "score"]
        observed = 100 * ((scores >= 9).mean() - (scores <= 6).mean())
        sd = 100 * np.sqrt(((scores >= 9) | (scores <= 6)).mean() - (observed / 100) ** 2)
        assert abs(observed - expected) < 4 * sd / np.sqrt(len(scores)), stage
    csat = fb_[fb_["survey"] == "csat"]
    for stage, expected in truth["csat_by_stage"].items():
        scores = csat.loc[csat["stage"] == stage, "score"]
        assert abs(scores.mean() - expected) < 4 * scores.std() / np.sqrt(len(scores)), stage
    # customers in South Korea answer in Korean, everyone else in English
    country = fb_["user_id"].map(seeded.users.set_index("user_id")["country"])
    assert (fb_["language"].eq("ko") == country.eq("KR")).all()
    assert fb_.loc[fb_["language"] == "ko", "text"].str.contains("[\uac00-\ud7a3]").all()
    en = fb_[fb_["language"] == "en"]
    returns = en[
        (en["touchpoint"] == "return_request") & (en["survey"] == "nps") & (en["score"] <= 4)
    ]
    assert returns["text"].str.contains(r"refund|return", case=False).mean() > 0.9
    promoters = en[(en["survey"] == "nps") & (en["score"] >= 9)]["text"]
    assert (
        promoters.str.contains(
            r"great|easy|love|fast|favourite|recommend|quick|free|perfect|beautiful", case=False
        ).mean()
        > 0.95
    )
    assert (fb_["touchpoint"].map(seeded.stage_map.stage_of) == fb_["stage"]).all()


def test_repeat_orders_follow_the_bgnbd_truth(seeded):
    truth = seeded.truth["clv"]
    tx = seeded.transactions
    end = pd.Timestamp(seeded.truth["end"])
    per = tx.groupby("user_id")["timestamp"].agg(["min", "max", "size"])
    x = (per["size"] - 1).to_numpy()
    t_x = ((per["max"] - per["min"]).dt.total_seconds() / 86400).to_numpy()
    T = ((end - per["min"]).dt.total_seconds() / 86400).to_numpy()
    fit = optimize.minimize(home._bgnbd_neg_loglik, np.log([1, 30, 1, 2]), args=(x, t_x, T),
                            method="Nelder-Mead", options={"maxiter": 4000, "xatol": 1e-6, "fatol": 1e-6})  # fmt: skip
    r, alpha, a, b = np.exp(fit.x)
    assert r == pytest.approx(truth["r"], rel=0.25)
    assert alpha == pytest.approx(truth["alpha"], rel=0.25)
    assert a / (a + b) == pytest.approx(truth["a"] / (truth["a"] + truth["b"]), abs=0.08)


# -- attribution ------------------------------------------------------------------------------
def _touches_before_first_purchase(events: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    conversion = events.loc[events["event"] == "purchase"].groupby("user_id")["timestamp"].min()
    touches = events[events["event"].isin(["ad_impression", "email_open", "session_start"])]
    cut = touches["user_id"].map(conversion)
    return touches[cut.isna() | (touches["timestamp"] < cut)], conversion


def test_affiliate_is_over_credited_by_last_touch_but_causes_few_orders(seeded):
    truth = seeded.truth
    incremental = pd.Series(truth["channel_incremental_conversions"])
    assert (incremental >= 0).all() and incremental.sum() < truth["conversions"]
    assert truth["channel_rank"][0] == "paid_search" and "affiliate" in truth["channel_rank"][-2:]
    touches, conversion = _touches_before_first_purchase(seeded.events)
    converted = touches[touches["user_id"].isin(conversion.index)]
    last_touch = converted.groupby("user_id")["channel"].last().value_counts()
    assert last_touch["affiliate"] > 3 * incremental["affiliate"]
    assert last_touch["paid_search"] < 1.5 * incremental["paid_search"]
    # a first-order Markov chain (removal effects) also ranks affiliate below the top four
    renamed = seeded.events.replace(
        {
            "event": {
                "purchase": "booking_completed",
                "session_start": "site_visit",
                "email_open": "phone_call",
            }
        }
    )
    removal = home._markov_removal_effects(renamed)
    assert (removal[truth["channel_rank"][:4]] > removal["affiliate"]).all()


# -- identities, disk and workspace ----------------------------------------------------------
def test_newsletter_opens_are_logged_under_an_email_hash_and_resolve_back(small):
    truth = small.truth["identities"]
    assert truth["aliases"] == {"email_open": "em_"}
    logged = small.logged_events()
    opens = logged["event"] == "email_open"
    assert logged.loc[opens, "user_id"].str.fullmatch(r"em_[0-9a-f]{12}").all()
    assert logged.loc[~opens, "user_id"].str.fullmatch(r"c\d{7}").all()
    res = resolve_identities(logged, small.identities)
    assert res.rows_remapped == truth["alias_rows"] == int(opens.sum())
    assert (
        res.ids_merged == res.persons_merged == truth["email_ids"] == truth["persons_with_aliases"]
    )
    columns = list(small.events.columns)
    back = res.frame.sort_values(columns, kind="stable").reset_index(drop=True)
    assert_frame_equal(
        back, small.events.sort_values(columns, kind="stable").reset_index(drop=True)
    )


def test_command_line_writes_the_ecommerce_tables_and_a_workspace_reads_them(tmp_path, capsys):
    out = tmp_path / "shop"
    assert (
        main(["--out", str(out), "--vertical", "ecommerce", "--n-users", "400", "--seed", "3"]) == 0
    )
    assert "E-commerce sample (seed 3): 400 users" in capsys.readouterr().out
    for name in TABLES:
        assert len(pd.read_parquet(out / f"{name}.parquet")) > 0, name
    truth = json.loads((out / "truth.json").read_text(encoding="utf-8"))
    assert truth["vertical"] == "ecommerce" and truth["uplift"]["dimension"] == "country"
    ws = open_workspace(out, stage_map=shop.stage_map())
    assert ws.resolutions["events"].rows_remapped == truth["identities"]["alias_rows"]
    assert ws.events.frame["user_id"].str.fullmatch(r"c\d{7}").all()
    assert set(ws.users.columns) >= {"platform", "country", "shopper_type"}


def test_summary_states_the_planted_effects(small):
    text = small.summary()
    assert text.startswith("E-commerce sample (seed 7): 3,000 users")
    assert "android 58%" in text and "local_payment_methods" in text and "EUR" in text
    assert "<table" in small._repr_html_()
