"""Simulation core of the e-commerce sample (see :mod:`journeylab.datasets.sample`).

An online shop for home goods and apparel, run from Amsterdam (currency EUR,
time zone Europe/Amsterdam), selling on the web and in iOS and Android apps
to five countries. Its vocabulary shares no event, channel or segment column
with the home-services sample, so code that assumes one breaks visibly on
the other.

Flat numpy arrays throughout, rows grouped by user; no Python loop over
users or events. The generative story, per user:

1. a shopper type (bargain hunter, brand loyal, impulse buyer, researcher),
   a platform (web, ios, android), a country, a latent engagement, whether
   they subscribe to the newsletter, and for some a purchase history;
2. paid-social and paid-search ad impressions, newsletter opens and
   sessions from seven channels (push only reaches app users), on the
   calendar clock of the home-services sample read in local time;
3. purchase intent at a session by a noisy-OR of the marketing touches so
   far, ``P_j = 1 - (1 - b0) * prod(1 - effect[channel])``, against one
   uniform per user, so the same uniforms replay the journey with a
   channel's touches removed (potential outcomes); intent is an add to cart;
4. the checkout: ``add_to_cart → checkout_start`` happens less often when
   the cart is filled while the delivery promise is slow (Friday 15:00 to
   Sunday midnight, local time: no next-day delivery);
   ``checkout_start → payment_details`` depends on the country and on the
   experiment ``local_payment_methods`` (iDEAL, SEPA, Klarna ... help most in
   the Netherlands and Germany); ``payment_details → purchase`` fails far
   more often in the Android app (a payment-SDK fault);
5. after a purchase: returns, reviews (rarer after a return), repeat
   purchases from a BG/NBD process with Gamma-Gamma values; newsletter opens
   are logged under a hash of the e-mail address.

The shop's vocabulary and planted parameters live in
:mod:`journeylab.datasets.ecommerce_shop`, the simulation of the story above in
:mod:`journeylab.datasets.ecommerce_simulation`; here the campaigns' spend and
the tables of :func:`make_ecommerce` are made from them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from journeylab.datasets import ecommerce_feedback as efb
from journeylab.datasets.ecommerce_shop import (
    ALIAS_EVENTS,
    ALIAS_PREFIXES,
    CHANNEL_EFFECTS,
    CHANNELS,
    CLV,
    COUNTRIES,
    CURRENCY,
    DETAILS_RATE,
    EVENTS,
    EXPERIMENT,
    NAME,
    PAYMENT_SUCCESS,
    PLATFORMS,
    SHOPPER_TYPES,
    TIMEZONE,
    VARIANTS,
    C,
    E,
    stage_map,
)
from journeylab.datasets.ecommerce_simulation import assemble, simulate
from journeylab.datasets.frames import (
    _labels,
    _timestamps,
    canonical_order,
    feedback_frame,
    hashed_ids,
    id_sources,
    identities_frame,
    ids,
    session_ids,
    transactions_frame,
)
from journeylab.datasets.simulation import Calendar, first_per_group, group_starts

# -- tables ------------------------------------------------------------------------
#: Campaigns per paid channel and their share of the channel's daily cost.
CAMPAIGNS = {
    "paid_search": {"search_brand": 0.3, "search_generic": 0.5, "search_shopping": 0.2},
    "paid_social": {"social_prospecting": 0.65, "social_retargeting": 0.35},
    "affiliate": {"affiliate_coupons": 0.6, "affiliate_cashback": 0.4},
    "email": {"email_newsletter": 0.7, "email_abandoned_cart": 0.3},
    "push": {"push_promotions": 1.0},
}
_COST_PER_SESSION = {
    "paid_search": 0.85,
    "paid_social": 0.45,
    "affiliate": 0.0,
    "email": 0.03,
    "push": 0.01,
}
_COST_PER_IMPRESSION = {
    "paid_search": 0.0,
    "paid_social": 0.006,
    "affiliate": 0.0,
    "email": 0.0,
    "push": 0.0,
}
_DAILY_FEE = {
    "paid_search": 40.0,
    "paid_social": 30.0,
    "affiliate": 15.0,
    "email": 25.0,
    "push": 20.0,
}
_COMMISSION = 0.08  # affiliates earn a share of the orders whose session came from them


def _spend_frame(ev, rng, start_ts, end_ts, *, n_users) -> pd.DataFrame:
    days = int((end_ts.normalize() - start_ts.normalize()) / pd.Timedelta(days=1))
    day = np.floor((ev["time"] + start_ts.hour + start_ts.minute / 60) / 24).astype(np.int64)
    scale = n_users / 20_000
    # an order's channel: the source of the session it was placed in
    sess_key = ev["user"].astype(np.int64) * 100 + ev["sess"]
    starts = ev["event"] == E["session_start"]
    first_of_session = pd.Series(ev["chan"][starts], index=sess_key[starts])
    orders = ev["event"] == E["purchase"]
    order_chan = first_of_session.reindex(sess_key[orders]).to_numpy()
    dates = pd.date_range(start_ts.normalize().tz_localize(None), periods=days, freq="D")
    frames = []
    for ch, campaigns in CAMPAIGNS.items():
        code = C[ch]
        sessions = np.bincount(day[starts & (ev["chan"] == code)], minlength=days)[:days]
        shown = (ev["event"] == E["ad_impression"]) & (ev["chan"] == code)
        impressions = np.bincount(day[shown], minlength=days)[:days]
        sales = np.bincount(
            day[orders][order_chan == code],
            weights=ev["value"][orders][order_chan == code],
            minlength=days,
        )[:days]
        base = (
            _COST_PER_SESSION[ch] * sessions
            + _COST_PER_IMPRESSION[ch] * impressions
            + (_COMMISSION * sales if ch == "affiliate" else 0.0)
            + _DAILY_FEE[ch] * scale
        )
        for campaign, share in campaigns.items():
            noise = rng.lognormal(0.0, 0.12, days)
            frames.append(
                pd.DataFrame(
                    {
                        "channel": ch,
                        "date": dates,
                        "cost": np.round(base * share * noise, 2),
                        "campaign": campaign,
                    }
                )
            )
    spend = pd.concat(frames, ignore_index=True).sort_values(
        ["date", "channel", "campaign"], kind="stable"
    )
    spend["date"] = spend["date"].astype("datetime64[ns]")
    for col in ("channel", "campaign"):
        spend[col] = spend[col].astype("str")
    return spend.reset_index(drop=True)


def _events_frame(ev, u, user_ids, start_ts) -> pd.DataFrame:
    user = ev["user"]
    return pd.DataFrame(
        {
            "user_id": pd.Series(user_ids.take(pa.array(user)), dtype="str"),
            "timestamp": _timestamps(ev["time"], start_ts),
            "event": _labels(ev["event"], EVENTS),
            "channel": _labels(ev["chan"], CHANNELS),
            "value": ev["value"].astype(float),
            "session_id": session_ids(user, ev["sess"], user_ids),
            "platform": _labels(u["platform"][user], PLATFORMS),
            "country": _labels(u["country"][user], COUNTRIES),
        }
    )


def _users_frame(ev, u, user_ids, start_ts, *, n) -> pd.DataFrame:
    user, chan, event, time = ev["user"], ev["chan"], ev["event"], ev["time"]
    first = group_starts(user)
    first_seen = np.full(n, np.nan)
    first_seen[user[first]] = time[first]
    visit = first_per_group(event == E["session_start"], user, n)
    touch = first_per_group(chan >= 0, user, n)
    acquisition = np.where(
        visit >= 0, chan[np.maximum(visit, 0)], np.where(touch >= 0, chan[np.maximum(touch, 0)], -1)
    )
    return pd.DataFrame(
        {
            "user_id": pd.Series(user_ids, dtype="str"),
            "platform": _labels(u["platform"], PLATFORMS),
            "country": _labels(u["country"], COUNTRIES),
            "acquisition_channel": _labels(acquisition, CHANNELS),
            "shopper_type": _labels(u["shopper"], SHOPPER_TYPES),
            "first_seen": _timestamps(first_seen, start_ts),
        }
    )


def _assignments_frame(u, user_ids, start_ts, broken_split, *, rng):
    idx = np.flatnonzero(u["assigned"])
    idx = idx[np.argsort(u["assigned_at"][idx], kind="stable")]
    lost = 0
    if broken_split:
        # a logging bug drops ~6 % of the treatment arm's assignment rows
        drop = (u["variant"][idx] == 1) & (rng.random(len(idx)) < 0.06)
        lost = int(drop.sum())
        idx = idx[~drop]
    frame = pd.DataFrame(
        {
            "user_id": pd.Series(user_ids.take(pa.array(idx)), dtype="str"),
            "variant": _labels(u["variant"][idx], VARIANTS),
            "assigned_at": _timestamps(u["assigned_at"][idx], start_ts),
            "platform": _labels(u["platform"][idx], PLATFORMS),
            "country": _labels(u["country"][idx], COUNTRIES),
            "pre_orders": u["pre_orders"][idx].astype(np.int64),
            "pre_revenue": u["pre_revenue"][idx].astype(float),
        }
    )
    return frame, lost


# -- the sample ------------------------------------------------------------------------
def make_ecommerce(seed, n_users, start_ts, end_ts, broken_split) -> dict[str, Any]:
    """Build the e-commerce sample's tables, truth and stage map (keyword arguments of Sample)."""
    horizon = (end_ts - start_ts) / pd.Timedelta(hours=1)
    local = start_ts.tz_convert(TIMEZONE)
    cal = Calendar.build(
        start_hour_of_week=local.day_of_week * 24 + local.hour + local.minute / 60,
        start_day_of_year=local.day_of_year,
        horizon=horizon,
    ).localize(start_ts, TIMEZONE)
    run = simulate(seed, n_users, cal)
    u = run["users"]
    raw = assemble(run, horizon)
    stages = stage_map()
    order = canonical_order(raw, EVENTS, stages)
    ev = {k: raw.pop(k)[order] for k in list(raw)}
    del raw, order
    width = max(7, len(str(n_users - 1)))
    user_ids = pa.array(ids("c", np.arange(n_users), width), pa.large_string())
    rngs = run["rngs"]

    users = _users_frame(ev, u, user_ids, start_ts, n=n_users)
    assignments, lost = _assignments_frame(u, user_ids, start_ts, broken_split, rng=rngs["split"])
    f = efb.simulate_feedback(
        rngs["feedback"], ev["user"], ev["time"], ev["event"], u["korean"], horizon, EVENTS
    )
    feedback = feedback_frame(f, user_ids, start_ts)
    spend = _spend_frame(ev, rngs["spend"], start_ts, end_ts, n_users=n_users)
    transactions = transactions_frame(
        ev, users, user_ids, start_ts, (E["purchase"], E["repeat_purchase"])
    )
    r_ids = np.random.default_rng(np.random.SeedSequence([seed, 21]))
    aliases = {"email": hashed_ids(r_ids, ALIAS_PREFIXES["email"], n_users)}
    src = id_sources(ev["event"], EVENTS, ALIAS_EVENTS)
    identities = identities_frame(user_ids, aliases, src, ev["user"])
    truth = _truth(
        run, seed, n_users, start_ts, end_ts=end_ts, broken_split=broken_split, lost=lost
    )
    from journeylab.datasets.frames import identity_truth

    truth["identities"] = identity_truth(src, ev["user"], identities, ALIAS_PREFIXES, ALIAS_EVENTS)
    events = _events_frame(ev, u, user_ids, start_ts)
    return {
        "events": events,
        "users": users,
        "assignments": assignments,
        "feedback": feedback,
        "spend": spend,
        "transactions": transactions,
        "identities": identities,
        "truth": truth,
        "stage_map": stages,
    }


_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _truth(run, seed, n_users, start_ts, *, end_ts, broken_split, lost) -> dict[str, Any]:
    from journeylab.datasets.frames import uplift_truth

    t, u = run["truth"], run["users"]
    incremental = {ch: int(v) for ch, v in t["incremental"].items()}
    rank = sorted(incremental, key=lambda ch: (-incremental[ch], ch))
    p0, p1 = t["p0"], t["p1"]
    baseline = float(p0.mean()) if len(p0) else float("nan")
    abs_lift = float((p1 - p0).mean()) if len(p0) else float("nan")
    timing = t["timing"]
    pay = {p: float(PAYMENT_SUCCESS[k]) for k, p in enumerate(PLATFORMS)}
    return {
        "vertical": "ecommerce",
        "name": NAME,
        "currency": CURRENCY,
        "timezone": TIMEZONE,
        "seed": seed,
        "n_users": n_users,
        "start": start_ts.isoformat(),
        "end": end_ts.isoformat(),
        "channels": list(CHANNELS),
        "channel_effects": dict(CHANNEL_EFFECTS),
        "channel_incremental_conversions": incremental,
        "channel_rank": rank,
        "conversions": int(t["purchased"].sum()),
        "android_payment": {
            "step": ("payment_details", "purchase"),
            "dimension": "platform",
            "segments": ["android"],
            "completion_rate": pay,
            "note": "P(purchase | payment details entered) per platform: the Android payment SDK fails.",
        },
        "checkout_by_country": {
            "step": ("checkout_start", "payment_details"),
            "dimension": "country",
            "completion_rate_by_variant": {
                v: {c: float(DETAILS_RATE[i, k]) for k, c in enumerate(COUNTRIES)}
                for i, v in enumerate(VARIANTS)
            },
        },
        "inconvenient_timing": {
            "step": ("add_to_cart", "checkout_start"),
            "timezone": TIMEZONE,
            "dimension": ("day_of_week", "hour_of_day"),
            "segments": {"day_of_week": ["Saturday", "Sunday"]},
            "slow_delivery": {"from": "Friday 15:00", "to": "Sunday 24:00"},
            "completion_rate": {
                "inside": round(timing["rate_inside"], 4),
                "outside": round(timing["rate_outside"], 4),
            },
            "factor": {"inside": round(timing["inside"], 4), "outside": round(timing["outside"], 4)},
            "outside_share": round(timing["outside_share"], 4),
            "note": (
                "Carts filled while the delivery promise is slow (local Friday 15:00 to Sunday 24:00, "
                "no next-day delivery) reach checkout with probability x factor['outside'], others "
                "x factor['inside']; completion_rate is the mean planted probability of the carts in "
                "each group ('inside' = fast promise). Saturday and Sunday are slow all day; Friday "
                "from 15:00."
            ),
        },
        "experiment": {
            "name": EXPERIMENT,
            "control": "control",
            "treatment": "local_methods",
            "metric": "purchased",
            "split": {"control": 0.5, "local_methods": 0.5},
            "baseline": round(baseline, 5),
            "abs_lift": round(abs_lift, 5),
            "rel_lift": round(abs_lift / baseline, 5) if baseline else float("nan"),
            "n_assigned": len(p0),
            "broken_split": bool(broken_split),
            "lost_assignment_rows": lost,
        },
        "uplift": uplift_truth(EXPERIMENT, "country", COUNTRIES, u["country"][u["assigned"]], p0, p1),
        "satisfaction": efb.expected_satisfaction(),
        "clv": {**CLV, "time_unit": "days", "note": (
            "BG/NBD: purchase rate lambda ~ Gamma(r, alpha) per day, dropout p ~ Beta(a, b) after each "
            "repeat purchase, from the first order to the end of the window. Gamma-Gamma: repeat "
            "order values ~ Gamma(p, nu), nu ~ Gamma(q, v); first orders are lognormal by shopper type."
        )},
    }  # fmt: skip
