"""The seeded home-services sample: contract, determinism and planted effects.

The planted effects are checked against ``truth`` with tolerances from the
sampling error of each statistic (binomial standard errors), so the tests
would fail if an effect were not visible in the data. The attribution check
uses a small hand-written first-order Markov removal-effect calculation
(Anderl et al. 2016, the ``ChannelAttribution`` R package's default model).
The slot-hour and crew effects are also searched for, on three seeds, by a
plain segment-gap search with Benjamini-Hochberg control (``gap_search.py``,
statsmodels' two-proportion z-test and ``multipletests``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal
from scipy import optimize, special, stats

from gap_search import local_clock, lower, search, step_cells
from journeylab.core.errors import ParameterError
from journeylab.core.stages import StageMap
from journeylab.datasets import DEFAULT_STAGE_MAP, SAMPLE_STAGE_MAP, sample_stage_map
from journeylab.datasets import feedback as fb
from journeylab.datasets.sample import CHANNELS, PAID_CHANNELS, main, make_sample, write_sample
from journeylab.datasets.sample_bundle import TABLES
from journeylab.io.identities import resolve_identities

STR = pd.StringDtype(na_value=np.nan)
UTC_NS = "datetime64[ns, UTC]"
CONTRACT = {
    "events": {
        "user_id": STR,
        "timestamp": UTC_NS,
        "event": STR,
        "channel": STR,
        "value": "float64",
        "session_id": STR,
        "device": STR,
        "region": STR,
        "response_minutes": "float64",
        "crew": STR,
    },
    "users": {
        "user_id": STR,
        "device": STR,
        "region": STR,
        "acquisition_channel": STR,
        "persona": STR,
        "first_seen": UTC_NS,
    },
    "assignments": {
        "user_id": STR,
        "variant": STR,
        "assigned_at": UTC_NS,
        "device": STR,
        "pre_sessions": "int64",
        "pre_revenue": "float64",
    },
    "feedback": {
        "user_id": STR,
        "timestamp": UTC_NS,
        "survey": STR,
        "score": "int64",
        "text": STR,
        "language": STR,
        "stage": STR,
        "touchpoint": STR,
    },
    "spend": {"channel": STR, "date": "datetime64[ns]", "cost": "float64", "campaign": STR},
    "transactions": {
        "user_id": STR,
        "timestamp": UTC_NS,
        "value": "float64",
        "order_id": STR,
        "channel": STR,
    },
    "identities": {"id": STR, "user_id": STR},
}
TRUTH_KEYS = {
    "channel_effects",
    "channel_incremental_conversions",
    "channel_rank",
    "mobile_form",
    "phone_response",
    "experiment",
    "satisfaction",
    "clv",
}


def z_tolerance(p: float, n: int, z: float = 4.0) -> float:
    """Half-width of a z-score band for a proportion estimated from n draws."""
    return z * np.sqrt(p * (1 - p) / n)


# -- contract -----------------------------------------------------------------------
def test_columns_and_dtypes_follow_the_contract(small_sample):
    for name, columns in CONTRACT.items():
        frame = getattr(small_sample, name)
        assert list(frame.columns) == list(columns), name
        for column, dtype in columns.items():
            assert frame[column].dtype == dtype, (name, column, frame[column].dtype)
    assert TRUTH_KEYS <= set(small_sample.truth)
    assert small_sample.stage_map == sample_stage_map()
    assert DEFAULT_STAGE_MAP is SAMPLE_STAGE_MAP  # the name it had as the library default
    assert small_sample.events["user_id"].str.fullmatch(r"u\d{7}").all()
    assert len(small_sample.users) == 3_000 and small_sample.users["user_id"].is_unique


def test_values_are_in_their_vocabularies(small_sample):
    ev = small_sample.events
    vocabulary = {e for stage in DEFAULT_STAGE_MAP["stages"] for e in stage["events"]}
    assert set(ev["event"]) == vocabulary
    assert set(ev["channel"].dropna()) == set(CHANNELS) | {"phone", "onsite"}
    assert set(ev["device"]) == {"mobile", "desktop", "tablet"}
    assert ev["device"].eq("mobile").mean() > 0.5  # mobile majority
    assert small_sample.users["persona"].nunique() == 4
    assert set(small_sample.assignments["variant"]) == {"control", "short_form"}
    # channels only on touches, values only on bookings, delays only on call-backs
    assert ev.loc[ev["event"].isin(["phone_call", "callback"]), "channel"].eq("phone").all()
    assert ev.loc[ev["event"] == "job_completed", "channel"].eq("onsite").all()
    assert ev.loc[ev["event"] == "site_visit", "channel"].isin(CHANNELS).all()
    assert (
        ev.loc[ev["event"] == "ad_impression", "channel"]
        .isin(["display", "social", "paid_search"])
        .all()
    )
    assert (
        ev.loc[
            ~ev["event"].isin(
                ["ad_impression", "site_visit", "phone_call", "callback", "job_completed"]
            ),
            "channel",
        ]
        .isna()
        .all()
    )
    has_value = ev["event"].isin(["booking_completed", "repeat_booking"])
    assert ev.loc[has_value, "value"].gt(0).all() and ev.loc[~has_value, "value"].isna().all()
    is_callback = ev["event"] == "callback"
    assert ev.loc[is_callback, "response_minutes"].ge(1).all()
    assert ev.loc[~is_callback, "response_minutes"].isna().all()
    assert ev.loc[ev["event"] == "site_visit", "session_id"].notna().all()
    assert (
        ev.loc[ev["event"].isin(["ad_impression", "phone_call", "job_completed"]), "session_id"]
        .isna()
        .all()
    )


def test_events_are_in_canonical_order(small_sample):
    ev = small_sample.events
    stage_map = small_sample.stage_map
    stage_rank = stage_map.assign(ev).cat.codes
    key = pd.DataFrame(
        {"u": ev["user_id"], "t": ev["timestamp"], "s": stage_rank, "e": ev["event"]}
    )
    resorted = key.sort_values(["u", "t", "s", "e"], kind="stable")
    assert (resorted.index == key.index).all()
    # a booking is completed after it is started, a call-back after the call
    first = ev.groupby(["user_id", "event"])["timestamp"].min().unstack()
    both = first[["booking_started", "booking_completed"]].dropna()
    assert (both["booking_started"] <= both["booking_completed"]).all()
    calls = first[["phone_call", "callback"]].dropna()
    assert (calls["phone_call"] < calls["callback"]).all()


def test_users_table_matches_the_events(small_sample):
    ev, users = small_sample.events, small_sample.users
    first_seen = ev.groupby("user_id")["timestamp"].min()
    assert (users.set_index("user_id")["first_seen"] == first_seen.reindex(users["user_id"])).all()
    first_visit = ev[ev["event"] == "site_visit"].groupby("user_id")["channel"].first()
    acquisition = users.set_index("user_id")["acquisition_channel"]
    assert (acquisition.reindex(first_visit.index) == first_visit).all()
    tx = small_sample.transactions
    assert tx["order_id"].is_unique and tx["timestamp"].is_monotonic_increasing
    n_bookings = ev["event"].isin(["booking_completed", "repeat_booking"]).sum()
    assert len(tx) == n_bookings
    assert tx["value"].sum() == pytest.approx(ev["value"].sum())


# -- determinism and arguments --------------------------------------------------------
def test_same_seed_gives_identical_tables_and_other_seeds_differ():
    a = make_sample(seed=5, n_users=1_500)
    b = make_sample(seed=5, n_users=1_500)
    for name in TABLES:
        assert_frame_equal(getattr(a, name), getattr(b, name))
    assert json.dumps(a.truth, default=str) == json.dumps(b.truth, default=str)
    c = make_sample(seed=6, n_users=1_500)
    assert not a.events.equals(c.events)
    assert not a.feedback.equals(c.feedback)


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**31), n_users=st.integers(1, 400), months=st.integers(1, 3))
def test_any_small_sample_is_well_formed(seed, n_users, months):
    s = make_sample(seed=seed, n_users=n_users, start="2025-12-15", months=months)
    start, end = (
        pd.Timestamp("2025-12-15", tz="UTC"),
        pd.Timestamp("2025-12-15", tz="UTC") + pd.DateOffset(months=months),
    )
    assert len(s.users) == n_users
    for frame, column in [
        (s.events, "timestamp"),
        (s.feedback, "timestamp"),
        (s.transactions, "timestamp"),
    ]:
        assert frame[column].between(start, end, inclusive="left").all()
    assert s.events["user_id"].is_monotonic_increasing
    assert s.assignments["assigned_at"].is_monotonic_increasing
    assert set(s.assignments["user_id"]) <= set(s.users["user_id"])
    assert s.spend.groupby("channel")["date"].nunique().eq((end - start).days).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_users": 0}, r"n_users == 0, must be a positive integer"),
        ({"seed": -1}, r"seed == -1, must be a non-negative integer"),
        ({"months": 0}, r"months == 0, must be an integer >= 1"),
        ({"start": "not a date"}, r"start == 'not a date': not a date or time"),
        ({"broken_split": "yes"}, r"broken_split == 'yes', must be True or False"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        make_sample(**kwargs)


# -- coverage of the default sample --------------------------------------------------------
def test_default_sample_spans_six_months_with_every_stage_and_channel(sample):
    ev = sample.events
    assert ev["timestamp"].min() >= pd.Timestamp("2026-05-01", tz="UTC")
    assert ev["timestamp"].max() < pd.Timestamp("2026-11-01", tz="UTC")
    assert ev["timestamp"].max() - ev["timestamp"].min() > pd.Timedelta(days=180)
    assert set(sample.stage_map.assign(ev).unique()) == set(sample.stage_map.names)
    assert set(ev.loc[ev["event"] == "site_visit", "channel"]) == set(CHANNELS)
    assert 20 < len(ev) / len(sample.users) < 30


def test_timestamps_follow_daily_and_weekly_rhythms(sample):
    visits = sample.events.loc[sample.events["event"] == "site_visit", "timestamp"]
    by_hour = visits.dt.hour.value_counts(normalize=True)
    assert (
        by_hour.loc[[19, 20]].mean() > 5 * by_hour.loc[[2, 3]].mean()
    )  # evenings busy, nights quiet
    by_day = visits.dt.day_name().value_counts()
    assert by_day["Monday"] > by_day["Saturday"]


def test_spend_covers_every_day_of_every_paid_channel(sample):
    spend = sample.spend
    days = pd.date_range("2026-05-01", "2026-10-31", freq="D")
    assert set(spend["channel"]) == set(PAID_CHANNELS)
    for channel, frame in spend.groupby("channel"):
        assert frame["date"].nunique() == len(days) == 184, channel
        assert frame.groupby("date")["cost"].sum().gt(0).all(), channel
    assert spend.groupby(["channel", "campaign"]).size().eq(184).all()
    # spend follows traffic: paid search costs the most
    total = spend.groupby("channel")["cost"].sum()
    assert total.idxmax() == "paid_search"


# -- planted effects ------------------------------------------------------------------------
def test_mobile_booking_form_completion_is_far_lower_than_desktop(sample):
    ev = sample.events
    truth = sample.truth["mobile_form"]["completion_rate"]
    started = ev[ev["event"] == "booking_started"].drop_duplicates("user_id")
    online = ev[(ev["event"] == "booking_completed") & ev["session_id"].notna()]
    started = started.assign(completed=started["user_id"].isin(online["user_id"]))
    rates = started.groupby("device")["completed"].agg(["mean", "size"])
    for device in ("mobile", "desktop", "tablet"):
        mean, size = rates.loc[device]
        assert abs(mean - truth[device]) < z_tolerance(truth[device], size), device
    assert truth["desktop"] - truth["mobile"] > 0.2
    assert rates.loc["desktop", "mean"] - rates.loc["mobile", "mean"] > 0.2


def test_slow_call_backs_lose_customers(sample):
    ev = sample.events
    truth = sample.truth["phone_response"]
    calls = ev[ev["event"] == "callback"][["user_id", "response_minutes"]]
    phone_bookings = ev[(ev["event"] == "booking_completed") & ev["session_id"].isna()]["user_id"]
    calls = calls.assign(
        booked=calls["user_id"].isin(phone_bookings),
        slow=calls["response_minutes"] > truth["slow_minutes"],
    )
    rates = calls.groupby("slow")["booked"].agg(["mean", "size"])
    for slow, key in [(False, "fast"), (True, "slow")]:
        p = truth["booking_rate"][key]
        assert abs(rates.loc[slow, "mean"] - p) < z_tolerance(p, rates.loc[slow, "size"]), key
    assert rates.loc[True, "size"] > 500 and rates.loc[False, "size"] > 500


def test_experiment_arms_differ_by_the_true_lift(sample):
    truth = sample.truth["experiment"]
    assert truth["split"] == {"control": 0.5, "short_form": 0.5}
    booked = set(sample.events.loc[sample.events["event"] == "booking_completed", "user_id"])
    a = sample.assignments.assign(booked=lambda d: d["user_id"].isin(booked))
    rates = a.groupby("variant")["booked"].agg(["mean", "size"])
    diff = rates.loc["short_form", "mean"] - rates.loc["control", "mean"]
    se = np.sqrt((rates["mean"] * (1 - rates["mean"]) / rates["size"]).sum())
    assert abs(diff - truth["abs_lift"]) < 3 * se
    assert diff / se > 3  # recoverable on the default size
    assert abs(rates.loc["control", "mean"] - truth["baseline"]) < z_tolerance(
        truth["baseline"], rates.loc["control", "size"]
    )
    assert truth["rel_lift"] == pytest.approx(truth["abs_lift"] / truth["baseline"], rel=1e-3)
    # the lift comes from mobile users (the short form is a mobile form)
    mobile = a[a["device"] == "mobile"].groupby("variant")["booked"].mean()
    desktop = a[a["device"] == "desktop"].groupby("variant")["booked"].mean()
    assert mobile["short_form"] - mobile["control"] > desktop["short_form"] - desktop["control"]
    # assignment at the first site visit; pre-period covariates predict booking
    first_visit = (
        sample.events[sample.events["event"] == "site_visit"].groupby("user_id")["timestamp"].min()
    )
    assert (a.set_index("user_id")["assigned_at"] == first_visit.reindex(a["user_id"])).all()
    assert np.corrcoef(a["pre_sessions"], a["booked"])[0, 1] > 0.05


def test_broken_split_fails_a_sample_ratio_check(sample):
    assert abs(sample.assignments["variant"].value_counts().diff().iloc[-1]) <= 1  # blocks of two
    broken = make_sample(seed=2026, n_users=20_000, broken_split=True)
    # only the assignment log is affected
    for column in ("user_id", "timestamp", "event"):
        assert broken.events[column].equals(sample.events[column])
    assert broken.truth["experiment"]["split"] == {"control": 0.5, "short_form": 0.5}
    counts = broken.assignments["variant"].value_counts()
    p_broken = stats.chisquare([counts["control"], counts["short_form"]]).pvalue
    counts_ok = sample.assignments["variant"].value_counts()
    p_ok = stats.chisquare([counts_ok["control"], counts_ok["short_form"]]).pvalue
    assert p_broken < 1e-3 < p_ok
    lost = len(sample.assignments) - len(broken.assignments)
    assert lost == broken.truth["experiment"]["lost_assignment_rows"]
    assert 0.04 < lost / counts_ok["short_form"] < 0.08


def test_nps_and_csat_per_stage_match_the_generating_distribution(sample):
    truth = sample.truth["satisfaction"]
    fb_ = sample.feedback
    nps = fb_[fb_["survey"] == "nps"]
    for stage, expected in truth["nps_by_stage"].items():
        scores = nps.loc[nps["stage"] == stage, "score"]
        observed = 100 * ((scores >= 9).mean() - (scores <= 6).mean())
        # NPS standard error: sd of (+1, 0, -1) scores / sqrt(n), in points
        sd = 100 * np.sqrt(((scores >= 9) | (scores <= 6)).mean() - (observed / 100) ** 2)
        assert abs(observed - expected) < 4 * sd / np.sqrt(len(scores)), stage
    csat = fb_[fb_["survey"] == "csat"]
    for stage, expected in truth["csat_by_stage"].items():
        scores = csat.loc[csat["stage"] == stage, "score"]
        assert abs(scores.mean() - expected) < 4 * scores.std() / np.sqrt(len(scores)), stage
    assert (
        min(truth["nps_by_stage"], key=truth["nps_by_stage"].get)
        == truth["dip_stage"]
        == "purchase"
    )
    # the population values follow from the latent normal (scipy.stats.norm.cdf)
    p = fb.score_probabilities(*fb.NPS_LATENT["purchase"], 0, 10)
    assert truth["nps_by_stage"]["purchase"] == pytest.approx(
        100 * (p[9:].sum() - p[:7].sum()), abs=0.01
    )
    assert set(fb_["stage"]) == set(truth["nps_by_stage"])
    assert (
        fb_["score"].between(0, 10).all()
        and fb_.loc[fb_["survey"] == "csat", "score"].between(1, 5).all()
    )


def test_comments_are_english_and_korean_and_agree_with_the_score(sample):
    fb_ = sample.feedback
    share = fb_["language"].value_counts(normalize=True)
    assert abs(share["ko"] - 0.2) < 0.03
    korean = fb_.loc[fb_["language"] == "ko", "text"]
    assert korean.str.contains(
        "[\uac00-\ud7a3]"
    ).all()  # Hangul syllables (the characters, not escapes)
    assert not fb_.loc[fb_["language"] == "en", "text"].str.contains("[\uac00-\ud7a3]").any()
    assert fb_["text"].str.len().between(5, 120).all()
    assert fb_["text"].nunique() > 100  # variety
    en = fb_[fb_["language"] == "en"]
    promoters = en[(en["survey"] == "nps") & (en["score"] >= 9)]["text"]
    detractors = en[(en["survey"] == "nps") & (en["score"] <= 4)]["text"]
    praise = (
        r"great|easy|friendly|excellent|quick|recommend|reliable|simple|clear|on time|punctual|love"
    )
    complaint = (
        r"late|long|re-enter|crash|waiting|waited|expensive|frustrat|froze|too|nobody|no reply|missed"
        r"|higher|went up|not as good"
    )
    assert promoters.str.contains(praise, case=False).mean() > 0.95
    assert detractors.str.contains(complaint, case=False).mean() > 0.95
    form = en[
        (en["touchpoint"] == "booking_started") & (en["score"] <= 4) & (en["survey"] == "nps")
    ]["text"]
    assert form.str.contains("form", case=False).mean() > 0.9
    jobs = en[(en["touchpoint"] == "job_completed") & (en["score"] >= 9) & (en["survey"] == "nps")][
        "text"
    ]
    assert (
        jobs.str.contains(r"technician|plumber|electrician|crew|handyman", case=False).mean() > 0.6
    )
    stage_map = sample.stage_map
    assert (fb_["touchpoint"].map(stage_map.stage_of) == fb_["stage"]).all()


def _bgnbd_neg_loglik(log_params, x, t_x, T):
    """BG/NBD negative log-likelihood (Fader, Hardie & Lee 2005, eq. 6)."""
    r, alpha, a, b = np.exp(log_params)
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = special.betaln(a, b + x) - special.betaln(a, b)
    a3 = -(r + x) * np.log(alpha + T)
    a4 = np.where(
        x > 0,
        np.log(a) - np.log(np.maximum(b + x - 1, 1e-12)) - (r + x) * np.log(alpha + t_x),
        -np.inf,
    )
    return -(a1 + a2 + np.logaddexp(a3, a4)).sum()


def test_repeat_purchases_follow_the_bgnbd_and_gamma_gamma_truth(sample):
    truth = sample.truth["clv"]
    assert truth["time_unit"] == "days"
    tx = sample.transactions
    end = pd.Timestamp(sample.truth["end"])
    per = tx.groupby("user_id")["timestamp"].agg(["min", "max", "size"])
    x = (per["size"] - 1).to_numpy()
    t_x = ((per["max"] - per["min"]).dt.total_seconds() / 86400).to_numpy()
    T = ((end - per["min"]).dt.total_seconds() / 86400).to_numpy()
    assert len(per) > 3_000 and (x > 0).mean() > 0.25  # repeat purchases present
    fit = optimize.minimize(_bgnbd_neg_loglik, np.log([1, 30, 1, 2]), args=(x, t_x, T), method="Nelder-Mead",
                            options={"maxiter": 4000, "xatol": 1e-6, "fatol": 1e-6})  # fmt: skip
    r, alpha, a, b = np.exp(fit.x)
    assert r == pytest.approx(truth["r"], rel=0.2)
    assert alpha == pytest.approx(truth["alpha"], rel=0.2)
    # a and b are weakly identified on six months; their mean dropout is not
    assert a / (a + b) == pytest.approx(truth["a"] / (truth["a"] + truth["b"]), abs=0.06)
    # Gamma-Gamma on repeat bookings (exact likelihood, values integrated over nu)
    repeats = sample.events.loc[sample.events["event"] == "repeat_booking", ["user_id", "value"]]
    per_customer = repeats.assign(log_value=np.log(repeats["value"])).groupby("user_id")
    k = per_customer.size().to_numpy()
    total = per_customer["value"].sum().to_numpy()
    log_sum = per_customer["log_value"].sum().to_numpy()

    def gg_neg_loglik(log_params):
        p, q, v = np.exp(log_params)
        return -((p - 1) * log_sum - k * special.gammaln(p) + q * np.log(v) - special.gammaln(q)
                 + special.gammaln(p * k + q) - (p * k + q) * np.log(v + total)).sum()  # fmt: skip

    p, q, v = np.exp(optimize.minimize(gg_neg_loglik, np.log([2, 2, 50]), method="Nelder-Mead",
                                       options={"maxiter": 4000}).x)  # fmt: skip
    assert p == pytest.approx(truth["p"], rel=0.15)
    assert p * v / (q - 1) == pytest.approx(truth["p"] * truth["v"] / (truth["q"] - 1), rel=0.1)


# -- attribution ------------------------------------------------------------------------------
def _markov_removal_effects(events: pd.DataFrame) -> pd.Series:
    """First-order Markov removal effects of the channels on paths to the first booking."""
    conversion = (
        events.loc[events["event"] == "booking_completed"].groupby("user_id")["timestamp"].min()
    )
    touches = events[events["event"].isin(["ad_impression", "site_visit", "phone_call"])]
    cut = touches["user_id"].map(conversion)
    touches = touches[cut.isna() | (touches["timestamp"] < cut)]
    channels = sorted(touches["channel"].unique())
    states = ["(start)", *channels, "(conversion)", "(null)"]
    index = {s: i for i, s in enumerate(states)}
    user = touches["user_id"].to_numpy()
    state = touches["channel"].map(index).to_numpy()
    first = np.r_[True, user[1:] != user[:-1]]
    last = np.r_[user[1:] != user[:-1], True]
    source = np.where(first, 0, np.roll(state, 1))
    end = np.where(
        pd.Index(user[last]).isin(conversion.index), index["(conversion)"], index["(null)"]
    )
    counts = np.zeros((len(states), len(states)))
    np.add.at(counts, (np.r_[source, state[last]], np.r_[state, end]), 1)

    def p_conversion(m):
        transient = list(range(index["(conversion)"]))
        p = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
        q = p[np.ix_(transient, transient)]
        return np.linalg.solve(np.eye(len(transient)) - q, p[transient, index["(conversion)"]])[0]

    base = p_conversion(counts)
    effects = {}
    for ch in channels:
        k = index[ch]
        m = counts.copy()
        m[:, index["(null)"]] += m[:, k]  # arriving at the removed channel ends the journey
        m[:, k] = 0
        effects[ch] = 1 - p_conversion(m) / base
    return pd.Series(effects)


def test_markov_removal_effects_rank_channels_like_the_truth(sample):
    truth = sample.truth
    assert truth["channel_rank"] == sorted(
        CHANNELS, key=lambda c: -truth["channel_incremental_conversions"][c]
    )
    incremental = pd.Series(truth["channel_incremental_conversions"])
    assert (incremental >= 0).all() and incremental.sum() < truth["conversions"]
    # well separated: each channel causes at least 25 % more conversions than the next
    ordered = incremental[truth["channel_rank"]].to_numpy()
    assert (ordered[:-1] / np.maximum(ordered[1:], 1) > 1.25).all()
    removal = _markov_removal_effects(sample.events)
    assert list(removal[list(CHANNELS)].sort_values(ascending=False).index) == truth["channel_rank"]


# -- writing to disk -----------------------------------------------------------------------
def test_command_line_writes_every_table_and_the_truth(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--n-users", "300", "--seed", "3", "--format", "csv"]) == 0
    for name in TABLES:
        frame = pd.read_csv(tmp_path / f"{name}.csv")
        assert len(frame) > 0, name
    truth = json.loads((tmp_path / "truth.json").read_text(encoding="utf-8"))
    assert truth["seed"] == 3 and TRUTH_KEYS <= set(truth)
    assert "wrote events" in capsys.readouterr().out
    # the events are written as logged: phone calls and jobs under their own ids
    events = pd.read_csv(tmp_path / "events.csv", dtype={"user_id": str})
    assert events["user_id"].str.fullmatch(r"u\d{7}|ph_[0-9a-f]{12}|crm_\d{7}").all()
    identities = pd.read_csv(tmp_path / "identities.csv", dtype=str)
    assert set(events["user_id"]) <= set(identities["id"])
    assert identities["user_id"].str.fullmatch(r"u\d{7}").all()


def test_parquet_round_trip_keeps_types(tmp_path):
    s = make_sample(seed=3, n_users=300)
    paths = write_sample(s, tmp_path)
    assert StageMap.from_yaml(paths["stages"]) == s.stage_map  # the map travels with the tables
    events = pd.read_parquet(paths["events"])
    assert str(events["timestamp"].dtype) == UTC_NS
    assert_frame_equal(events, s.logged_events(), check_dtype=False)
    assert main(["--out", str(tmp_path), "--n-users", "0"]) == 2


# -- reference snapshot -----------------------------------------------------------------------
def test_default_sample_matches_the_reference_snapshot(sample):
    ref = json.loads(
        (Path(__file__).parents[1] / "results" / "datasets_reference.json").read_text()
    )
    truth = sample.truth
    assert truth["channel_rank"] == ref["channel_rank"]
    assert truth["satisfaction"] == ref["satisfaction"]
    assert truth["mobile_form"]["completion_rate"] == ref["mobile_form"]
    assert {k: truth["clv"][k] for k in ref["clv"]} == ref["clv"]
    # counts within 1 % (floating-point noise across machines may flip a rare draw)
    assert len(sample.events) == pytest.approx(ref["n_events"], rel=0.01)
    counts = sample.events["event"].value_counts()
    for event, n in ref["event_counts"].items():
        assert counts[event] == pytest.approx(n, rel=0.01, abs=5), event
    for channel, n in ref["channel_incremental_conversions"].items():
        assert truth["channel_incremental_conversions"][channel] == pytest.approx(
            n, rel=0.02, abs=3
        )
    assert len(sample.assignments) == pytest.approx(ref["n_assignments"], rel=0.01)
    assert len(sample.feedback) == pytest.approx(ref["n_feedback"], rel=0.01)
    assert len(sample.transactions) == pytest.approx(ref["n_transactions"], rel=0.01)
    for key in ("baseline", "abs_lift"):
        assert truth["experiment"][key] == pytest.approx(ref["experiment"][key], abs=0.002)


def test_summary_and_notebook_rendering_state_the_planted_effects(small_sample):
    text = small_sample.summary()
    assert "3,000 users" in text and "2026-05-01 to 2026-10-31" in text
    assert "fast 55%, slow 25%" in text
    assert "paid_search >" in text
    html = small_sample._repr_html_()
    assert html.startswith("<h4>Sample</h4>") and "<table" in html and "transactions" in html
    assert repr(small_sample) == f"Sample(3000 users, {len(small_sample.events)} events)"


# -- slot hours, crews, heterogeneous lift and identities ---------------------------------
GAP_SEEDS = (2026, 11, 12)


@pytest.fixture(scope="module", params=GAP_SEEDS)
def seeded(request, sample):
    """The default-size sample on three seeds (2026 is the session's ``sample``)."""
    return sample if request.param == 2026 else make_sample(seed=request.param, n_users=20_000)


def _form_entrants(sample) -> pd.DataFrame:
    """Users who opened the booking form, with the local clock and device at entry."""
    ev = sample.events
    started = ev[ev["event"] == "booking_started"].drop_duplicates("user_id")
    online = ev.loc[(ev["event"] == "booking_completed") & ev["session_id"].notna(), "user_id"]
    clock = local_clock(started["timestamp"], sample.truth["timezone"])
    return started.assign(converted=started["user_id"].isin(online), **clock)


def _review_entrants(sample) -> pd.DataFrame:
    """Users with a job done at least ten days before the end, and whether they reviewed."""
    ev = sample.events
    truth = sample.truth["reviews_not_asked"]
    jobs = ev[ev["event"] == "job_completed"].drop_duplicates("user_id")
    end = pd.Timestamp(sample.truth["end"])
    jobs = jobs[jobs["timestamp"] < end - pd.Timedelta(hours=truth["window_hours"][1])]
    reviewed = ev.loc[ev["event"] == "review_posted", "user_id"]
    return jobs.assign(converted=jobs["user_id"].isin(reviewed))


def test_booking_forms_opened_outside_the_slot_hours_complete_far_less(seeded):
    truth = seeded.truth["inconvenient_timing"]
    assert truth["step"] == ("booking_started", "booking_completed")
    assert truth["timezone"] == "America/New_York"
    entrants = _form_entrants(seeded)
    days, (first, last) = truth["slot_hours"]["days"], truth["slot_hours"]["hours"]
    inside = entrants["day_of_week"].isin(days) & entrants["hour_of_day"].between(first, last - 1)
    for group, mask in (("inside", inside), ("outside", ~inside)):
        rate, n = entrants.loc[mask, "converted"].mean(), int(mask.sum())
        expected = truth["completion_rate"][group]
        assert abs(rate - expected) < z_tolerance(expected, n), (group, rate, expected, n)
    assert truth["completion_rate"]["inside"] - truth["completion_rate"]["outside"] > 0.25
    assert truth["factor"]["outside"] / truth["factor"]["inside"] == pytest.approx(0.55, abs=1e-3)
    # the segments named in truth are exactly the hours and days outside the slot hours
    assert set(truth["segments"]["hour_of_day"]) == set(range(24)) - set(range(first, last))
    assert truth["segments"]["day_of_week"] == ["Saturday", "Sunday"]


def test_jobs_by_crews_that_do_not_ask_get_far_fewer_reviews(seeded):
    truth = seeded.truth["reviews_not_asked"]
    ev = seeded.events
    assert ev.loc[ev["event"] == "job_completed", "crew"].notna().all()
    assert ev.loc[ev["event"] != "job_completed", "crew"].isna().all()
    entrants = _review_entrants(seeded)
    rates = entrants.groupby("crew")["converted"].agg(["mean", "size"])
    for crew, expected in truth["review_rate"].items():
        mean, size = rates.loc[crew]
        assert abs(mean - expected) < z_tolerance(expected, size), (crew, mean, expected, size)
    shares = entrants["crew"].value_counts(normalize=True)
    for crew, share in truth["crew_share"].items():
        assert abs(shares[crew] - share) < z_tolerance(share, len(entrants)), crew
    # the crews' mean ask factor is 1: without crews the review rate would be the same
    assert sum(
        truth["crew_share"][c] * truth["ask_factor"][c] for c in truth["crew_share"]
    ) == pytest.approx(1, abs=1e-3)


def test_a_segment_gap_search_with_bh_control_finds_every_planted_gap(seeded):
    """Steps x (device, region, crew, hour of day, day of week), BH at 5 %, one family."""
    truth = seeded.truth
    form = _form_entrants(seeded)
    reviews = _review_entrants(seeded)
    reviews = reviews.assign(**local_clock(reviews["timestamp"], truth["timezone"]))
    dims = ["device", "region", "hour_of_day", "day_of_week"]
    table = search(
        [
            step_cells("booking_started → booking_completed", form, dims),
            step_cells("job_completed → review_posted", reviews, [*dims, "crew"]),
        ]
    )
    form_step, review_step = "booking_started → booking_completed", "job_completed → review_posted"
    timing = truth["inconvenient_timing"]["segments"]
    assert set(timing["day_of_week"]) <= lower(table, form_step, "day_of_week")
    assert lower(table, form_step, "day_of_week") <= set(timing["day_of_week"])
    hours = lower(table, form_step, "hour_of_day")
    assert hours <= set(timing["hour_of_day"])  # only hours outside the slot hours are flagged
    busy = form.loc[form["hour_of_day"].isin(timing["hour_of_day"]), "hour_of_day"].value_counts()
    assert set(busy[busy >= 150].index) <= hours  # and every one with 150 forms or more is
    assert lower(table, form_step, "device") == {"mobile"}  # the mobile form, planted before
    assert lower(table, review_step, "crew") == set(truth["reviews_not_asked"]["segments"])
    # reviews do not depend on the clock: any clock gap there is noise, far below the crews'
    on_reviews = table[table["step"] == review_step]
    clock_z = on_reviews.loc[on_reviews["dimension"] == "day_of_week", "z"].abs()
    crews_z = on_reviews.loc[on_reviews["value"].isin(truth["reviews_not_asked"]["segments"]), "z"]
    assert clock_z.max() < 4 and (-crews_z).min() > 6


def test_the_short_form_lifts_mobile_bookings_most_as_truth_says(seeded):
    uplift, experiment = seeded.truth["uplift"], seeded.truth["experiment"]
    assert uplift["experiment"] == experiment["name"] == "short_mobile_form"
    assert uplift["dimension"] == "device" and set(uplift["lift"]) == {
        "mobile",
        "desktop",
        "tablet",
    }
    assert (
        uplift["lift"]["mobile"] > 0.04 > uplift["lift"]["tablet"] > uplift["lift"]["desktop"] == 0
    )
    booked = set(seeded.events.loc[seeded.events["event"] == "booking_completed", "user_id"])
    a = seeded.assignments.assign(booked=lambda d: d["user_id"].isin(booked))
    rates = a.groupby(["device", "variant"])["booked"].agg(["mean", "size"])
    for device, lift in uplift["lift"].items():
        c, t = rates.loc[(device, "control")], rates.loc[(device, "short_form")]
        se = np.sqrt(
            c["mean"] * (1 - c["mean"]) / c["size"] + t["mean"] * (1 - t["mean"]) / t["size"]
        )
        assert abs(t["mean"] - c["mean"] - lift) < 4 * se, device
        base = uplift["baseline"][device]
        assert abs(c["mean"] - base) < z_tolerance(base, int(c["size"])), device
    # the per-device lifts average to the overall planted lift (same users, same p1 - p0)
    share = a["device"].value_counts(normalize=True)
    overall = sum(share[d] * uplift["lift"][d] for d in uplift["lift"])
    assert overall == pytest.approx(experiment["abs_lift"], abs=2e-4)


def test_phone_calls_and_jobs_are_logged_under_their_own_ids(small_sample):
    truth = small_sample.truth["identities"]
    assert truth["aliases"] == {"phone_call": "ph_", "callback": "ph_", "job_completed": "crm_"}
    logged = small_sample.logged_events()
    # the same rows in the same order; only the ids of calls, call-backs and jobs differ
    assert_frame_equal(logged.drop(columns="user_id"), small_sample.events.drop(columns="user_id"))
    prefix = logged["event"].map(truth["aliases"]).fillna("u")
    assert (logged["user_id"].str.fullmatch(r"ph_[0-9a-f]{12}") == (prefix == "ph_")).all()
    assert (logged["user_id"].str.fullmatch(r"crm_\d{7}") == (prefix == "crm_")).all()
    assert logged.loc[prefix == "u", "user_id"].str.fullmatch(r"u\d{7}").all()
    # one phone number per caller: a call and its call-back (if inside the window) share it
    calls = logged[logged["event"].isin(["phone_call", "callback"])]
    per_number = calls.groupby("user_id")["event"].value_counts().unstack(fill_value=0)
    assert per_number["phone_call"].eq(1).all() and per_number["callback"].le(1).all()
    ids = small_sample.identities
    assert ids["id"].is_unique and set(logged["user_id"]) <= set(ids["id"])
    assert set(ids["user_id"]) == set(small_sample.users["user_id"])
    assert len(ids) == truth["identity_rows"] == 3_000 + truth["phone_ids"] + truth["crm_ids"]


@pytest.mark.parametrize("seed", [7, 8])
def test_resolving_the_logged_ids_gives_back_the_events_and_the_counts_reconcile(seed):
    s = make_sample(seed=seed, n_users=2_500)
    truth = s.truth["identities"]
    res = resolve_identities(s.logged_events(), s.identities)
    assert res.rows_in == res.rows_out == len(s.events)
    assert res.rows_remapped == truth["alias_rows"] == truth["phone_rows"] + truth["crm_rows"]
    assert res.ids_merged == truth["phone_ids"] + truth["crm_ids"]
    assert res.persons_merged == truth["persons_with_aliases"]
    assert res.ids_out == s.events["user_id"].nunique()
    assert res.ids_out == res.ids_in - res.ids_merged + res.persons_added
    assert (res.ids_unmapped, res.conflicts) == (0, 0)
    columns = list(s.events.columns)
    back = res.frame.sort_values(columns, kind="stable").reset_index(drop=True)
    assert_frame_equal(back, s.events.sort_values(columns, kind="stable").reset_index(drop=True))
