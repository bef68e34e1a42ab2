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
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from journeylab.core.stages import StageMap
from journeylab.datasets import ecommerce_feedback as efb
from journeylab.datasets.events import _repeat_purchases
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
from journeylab.datasets.simulation import (
    Calendar,
    _randomize,
    choice_rows,
    first_per_group,
    group_starts,
    segment_cumsum,
    segment_rank,
)

# -- vocabularies --------------------------------------------------------------
EVENTS = (
    "ad_impression",
    "email_open",
    "session_start",
    "search",
    "product_view",
    "add_to_cart",
    "checkout_start",
    "payment_details",
    "purchase",
    "repeat_purchase",
    "return_request",
    "review_submitted",
)
E = {name: code for code, name in enumerate(EVENTS)}
#: Marketing channels: traffic sources of sessions, ads and newsletter opens.
CHANNELS = ("paid_search", "paid_social", "affiliate", "email", "organic", "direct", "push")
C = {name: code for code, name in enumerate(CHANNELS)}
AD_CHANNELS = ("paid_social", "paid_search")
PAID_CHANNELS = ("paid_search", "paid_social", "affiliate", "email", "push")
PLATFORMS = ("web", "ios", "android")
COUNTRIES = ("NL", "DE", "GB", "US", "KR")
COUNTRY_SHARES = (0.30, 0.25, 0.18, 0.15, 0.12)
SHOPPER_TYPES = ("bargain_hunter", "brand_loyal", "impulse_buyer", "researcher")
SHOPPER_SHARES = (0.30, 0.20, 0.25, 0.25)
VARIANTS = ("control", "local_methods")
EXPERIMENT = "local_payment_methods"
TIMEZONE = "Europe/Amsterdam"
CURRENCY = "EUR"
NAME = "Lumen & Loom (sample)"
#: Newsletter opens are logged by the e-mail platform under a hash of the address.
ALIAS_EVENTS = {"email_open": "email"}
ALIAS_PREFIXES = {"email": "em_"}

#: True per-touch incremental effect of each channel on purchase intent.
#: Affiliate (coupon and cash-back sites) shows up late in many journeys but
#: causes few purchases: last-touch attribution over-credits it.
CHANNEL_EFFECTS = {
    "paid_search": 0.10,
    "paid_social": 0.035,
    "affiliate": 0.003,
    "email": 0.06,
    "organic": 0.085,
    "direct": 0.025,
    "push": 0.07,
}

# Per shopper type (rows in SHOPPER_TYPES order).
_PLATFORM_MIX = np.array(
    [[0.45, 0.20, 0.35], [0.30, 0.40, 0.30], [0.30, 0.35, 0.35], [0.65, 0.15, 0.20]]
)
#: Session traffic-source mix, columns in CHANNELS order (push moves to direct on the web).
_SESSION_MIX = np.array(
    [
        [0.18, 0.12, 0.22, 0.10, 0.20, 0.10, 0.08],
        [0.08, 0.05, 0.04, 0.22, 0.14, 0.32, 0.15],
        [0.14, 0.34, 0.06, 0.08, 0.14, 0.12, 0.12],
        [0.28, 0.06, 0.08, 0.06, 0.40, 0.10, 0.02],
    ]
)
_AD_REACH = np.array([[0.30, 0.20], [0.15, 0.10], [0.50, 0.10], [0.10, 0.30]])  # AD_CHANNELS
_AD_FREQUENCY = np.array([10.0, 3.0])
_SUBSCRIBER = np.array([0.35, 0.60, 0.30, 0.30])
_OPENS_PER_WEEK = 0.7
_EXTRA_SESSIONS = np.array([3.0, 4.0, 2.0, 4.5])
_SESSION_GAP_HOURS = np.array([60.0, 120.0, 30.0, 90.0])  # activity-hours
_BASE_INTENT = np.array([0.05, 0.12, 0.09, 0.04])
_EXISTING_CUSTOMER = np.array([0.15, 0.50, 0.15, 0.15])
_SEARCH_RATE = np.array([0.5, 0.3, 0.2, 0.7])  # searches per session
_EXTRA_VIEWS = np.array([3.0, 2.0, 2.5, 4.5])  # product views per session beyond the first
_ORDER_MEDIAN = np.array([38.0, 85.0, 52.0, 70.0])
_ORDER_SIGMA = 0.55

#: P(checkout_start | add_to_cart) per shopper type, before the delivery factor.
CHECKOUT_RATE = np.array([0.66, 0.80, 0.70, 0.74])
#: The delivery promise is slow from Friday 15:00 to Sunday 24:00 local time;
#: checkout starts then relative to other times, and the factors' scaling
#: (mean 1 over the carts filled, as for the home-services slot hours).
SLOW_DELIVERY_FROM = 4 * 24 + 15  # local hour of the week, Monday 00:00 = 0
DELIVERY_RATIO = 0.5
#: P(payment_details | checkout_start) by variant (rows) and country (columns).
DETAILS_RATE = np.array([[0.57, 0.58, 0.80, 0.81, 0.72], [0.82, 0.81, 0.82, 0.82, 0.77]])
#: P(purchase | payment_details) per platform: the Android payment SDK fails.
PAYMENT_SUCCESS = np.array([0.93, 0.94, 0.58])
RETURN_RATE = 0.15
REVIEW_RATE = {"returned": 0.04, "kept": 0.14}
#: Repeat purchases: BG/NBD (time unit: days) and Gamma-Gamma spend.
CLV = {"r": 0.7, "alpha": 35.0, "a": 0.9, "b": 2.4, "p": 5.0, "q": 4.0, "v": 60.0}

_KPI = "measure"
STAGE_MAP: dict[str, Any] = {
    "stages": [
        {
            "name": "awareness",
            "description": "Paid-social and paid-search ads seen, newsletters opened.",
            "events": ["ad_impression", "email_open"],
            "kpis": [
                {"name": "impressions", "events": ["ad_impression"], _KPI: "count"},
                {"name": "reach", "events": ["ad_impression"], _KPI: "users"},
                {"name": "newsletter_opens", "events": ["email_open"], _KPI: "count"},
            ],
        },
        {
            "name": "consideration",
            "description": "Sessions on the web and in the apps, searches, product pages, carts.",
            "events": ["session_start", "search", "product_view", "add_to_cart"],
            "kpis": [
                {"name": "sessions", "events": ["session_start"], _KPI: "count"},
                {"name": "visitors", "events": ["session_start"], _KPI: "users"},
                {"name": "product_views", "events": ["product_view"], _KPI: "count"},
                {"name": "shoppers_with_a_cart", "events": ["add_to_cart"], _KPI: "users"},
            ],
        },
        {
            "name": "purchase",
            "description": "Checkout, payment details and first orders.",
            "events": ["checkout_start", "payment_details", "purchase"],
            "kpis": [
                {"name": "checkouts", "events": ["checkout_start"], _KPI: "count"},
                {"name": "orders", "events": ["purchase"], _KPI: "count"},
                {"name": "revenue", "events": ["purchase"], _KPI: "value"},
            ],
        },
        {
            "name": "retention",
            "description": "Repeat orders and returns.",
            "events": ["repeat_purchase", "return_request"],
            "kpis": [
                {"name": "repeat_customers", "events": ["repeat_purchase"], _KPI: "users"},
                {"name": "repeat_revenue", "events": ["repeat_purchase"], _KPI: "value"},
                {"name": "returns", "events": ["return_request"], _KPI: "count"},
            ],
        },
        {
            "name": "advocacy",
            "description": "Product reviews.",
            "events": ["review_submitted"],
            "kpis": [{"name": "reviews", "events": ["review_submitted"], _KPI: "count"}],
        },
    ]
}


def stage_map() -> StageMap:
    """Return the stage map of the e-commerce sample."""
    return StageMap.from_dict(STAGE_MAP, source="e-commerce sample stage map")


# -- clock -----------------------------------------------------------------------
def slow_delivery(cal: Calendar, hours: np.ndarray) -> np.ndarray:
    """Tell where the delivery promise is slow (Friday 15:00 to Sunday 24:00 local)."""
    return cal.local_hour_of_week(hours) >= SLOW_DELIVERY_FROM


def _delivery_factors(cal: Calendar, cart_times: np.ndarray) -> dict[str, float]:
    """Checkout factors for fast and slow delivery promises, mean 1 over the carts filled."""
    cart_times = cart_times[cart_times < cal.horizon]
    share = float(np.mean(slow_delivery(cal, cart_times))) if len(cart_times) else 0.3
    share = min(max(share, 0.15), 0.6)
    inside = 1.0 / (1.0 - share + DELIVERY_RATIO * share)
    return {"inside": inside, "outside": DELIVERY_RATIO * inside, "outside_share": share}


def checkout_probability(cal, cart_time, shopper, timing) -> np.ndarray:
    """P(checkout_start | add_to_cart at ``cart_time``)."""
    factor = np.where(slow_delivery(cal, cart_time), timing["outside"], timing["inside"])
    return np.minimum(CHECKOUT_RATE[shopper] * factor, 1.0)


# -- the simulation ----------------------------------------------------------------
def _draws(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Per-user uniforms and delays shared by the factual and counterfactual checkouts."""
    return {
        "checkout": rng.random(n),
        "details": rng.random(n),
        "pay": rng.random(n),
        "cart_delay": rng.uniform(2, 12, n) / 60,
        "checkout_delay": rng.uniform(1, 6, n) / 60,
        "details_delay": rng.uniform(1, 4, n) / 60,
        "pay_delay": rng.uniform(0.3, 2, n) / 60,
    }


def _checkout(cal, intent_time, user, variant, *, d, timing) -> dict[str, np.ndarray]:
    """Realised checkout for users with intent at ``intent_time`` (NaN: none)."""
    has = ~np.isnan(intent_time)
    cart = np.where(has, intent_time + d["cart_delay"], np.nan)
    start = has & (d["checkout"] < checkout_probability(cal, cart, user["shopper"], timing))
    start_time = cart + d["checkout_delay"]
    details = start & (d["details"] < DETAILS_RATE[variant, user["country"]])
    details_time = start_time + d["details_delay"]
    paid = details & (d["pay"] < PAYMENT_SUCCESS[user["platform"]])
    paid_time = details_time + d["pay_delay"]
    return {
        "cart": cart,
        "start": start,
        "start_time": start_time,
        "details": details,
        "details_time": details_time,
        "paid": paid,
        "paid_time": paid_time,
        "purchased": paid & (paid_time < cal.horizon),
    }


def simulate(seed: int, n: int, cal: Calendar) -> dict[str, Any]:
    """Run the shop's generative story; return users, checkouts, touches, truth and streams."""
    streams = np.random.SeedSequence([seed, 20]).spawn(10)
    r_user, r_sess, r_imp, r_route, r_post, r_rep, r_mail, r_fb, r_spend, r_split = (
        np.random.default_rng(s) for s in streams
    )
    horizon = cal.horizon
    uid = np.arange(n)

    # 1. users -----------------------------------------------------------------
    shopper = choice_rows(r_user, np.tile(SHOPPER_SHARES, (n, 1)))
    platform = choice_rows(r_user, _PLATFORM_MIX[shopper])
    country = choice_rows(r_user, np.tile(COUNTRY_SHARES, (n, 1)))
    engagement = r_user.gamma(2.0, 0.5, n)
    existing = r_user.random(n) < _EXISTING_CUSTOMER[shopper]
    arrival = r_user.random(n) * horizon  # activity time
    visits = r_user.random(n) > 0.12
    subscriber = r_user.random(n) < _SUBSCRIBER[shopper]
    pre_orders = r_user.poisson(0.6 * engagement * (1 + 3.0 * existing))
    order_size = r_user.lognormal(np.log(_ORDER_MEDIAN[shopper]), 0.5)
    pre_revenue = np.round(order_size * pre_orders, 2)
    base_intent = np.clip(_BASE_INTENT[shopper] * engagement * (1 + 0.6 * existing), 0, 0.9)
    coins = r_user.random(n)
    targeted = r_imp.random((n, 2)) < _AD_REACH[shopper]
    targeted[:, 0] |= ~visits & ~targeted.any(axis=1)  # ad-only users saw social ads
    has_ads = targeted.any(axis=1)

    # 2. sessions ----------------------------------------------------------------
    n_sess = np.where(visits, 1 + r_sess.poisson(_EXTRA_SESSIONS[shopper] * np.sqrt(engagement)), 0)
    n_sess = np.minimum(n_sess, 40)
    s_user = np.repeat(uid, n_sess)
    s_rank = segment_rank(s_user)
    first_delay = np.where(has_ads, r_sess.exponential(30.0, n), 0.0)
    gap = np.where(
        s_rank == 0,
        first_delay[s_user],
        0.5 + r_sess.exponential(_SESSION_GAP_HOURS[shopper[s_user]]),
    )
    s_offset = segment_cumsum(gap, s_user)
    s_time = cal.to_hours(arrival[s_user] + s_offset)
    spaced = s_time - s_rank * 0.5  # at least 30 minutes between session starts
    spaced = np.maximum.accumulate(spaced + s_user * 1e7) - s_user * 1e7
    s_time = spaced + s_rank * 0.5
    mix = _SESSION_MIX[shopper].copy()
    web = platform == PLATFORMS.index("web")
    mix[web, C["direct"]] += mix[web, C["push"]]
    mix[web, C["push"]] = 0.0
    s_chan = choice_rows(r_sess, mix[s_user])
    span = np.zeros(n)
    last = np.flatnonzero(np.append(s_user[1:] != s_user[:-1], True)) if len(s_user) else []
    span[s_user[last]] = s_offset[last]
    span = np.where(visits, span + 24.0, r_imp.exponential(72.0, n))

    # 3. ads and newsletters --------------------------------------------------------
    counts = targeted * (1 + r_imp.poisson(_AD_FREQUENCY * np.sqrt(engagement)[:, None]))
    i_user = np.repeat(uid, counts.sum(axis=1))
    ad_codes = np.array([C[c] for c in AD_CHANNELS])
    i_chan = ad_codes[np.repeat(np.tile(np.arange(2), n), counts.ravel())]
    before = visits[i_user] & (r_imp.random(len(i_user)) < 0.7)
    i_offset = r_imp.random(len(i_user)) * np.where(before, first_delay[i_user], span[i_user])
    i_offset[group_starts(i_user)] = 0.0  # the first ad marks the user's arrival
    i_time = cal.to_hours(arrival[i_user] + i_offset)
    # newsletter opens over the rest of the window, in activity time
    weeks = np.maximum(horizon - arrival, 0) / 168.0
    opens = np.where(subscriber, r_mail.poisson(_OPENS_PER_WEEK * weeks), 0)
    m_user = np.repeat(uid, opens)
    m_time = cal.to_hours(
        arrival[m_user] + r_mail.random(len(m_user)) * (horizon - arrival[m_user])
    )
    # clicks: a paid session starts seconds after its ad, an e-mail session minutes after the open
    paid_click = np.isin(s_chan, ad_codes) & (r_imp.random(len(s_chan)) < 0.7)
    mail_click = (s_chan == C["email"]) & (r_mail.random(len(s_chan)) < 0.9)
    click = paid_click | mail_click
    c_user, c_chan = s_user[click], s_chan[click]
    c_time = (
        s_time[click]
        - np.where(
            mail_click[click],
            r_mail.uniform(60, 1800, click.sum()),
            r_imp.uniform(3, 40, click.sum()),
        )
        / 3600
    )

    # 4. touches and purchase intent ----------------------------------------------
    t_user = np.concatenate([i_user, m_user, c_user, s_user])
    t_time = np.concatenate([i_time, m_time, c_time, s_time])
    t_chan = np.concatenate([i_chan, np.full(len(m_user), C["email"]), c_chan, s_chan])
    t_sess = np.concatenate([np.full(len(t_user) - len(s_user), -1), np.arange(len(s_user))])
    ticks = np.clip((t_time + 1.0) * 28_800, 0, 2**31 - 1).astype(np.int64)
    order = np.argsort(
        (t_user.astype(np.int64) << 32) | (ticks << 1) | (t_sess >= 0), kind="stable"
    )
    t_user, t_time, t_chan, t_sess = t_user[order], t_time[order], t_chan[order], t_sess[order]
    log_keep = np.log1p(-np.array([CHANNEL_EFFECTS[c] for c in CHANNELS]))[t_chan]
    u_intent = r_route.random(n)
    draws = _draws(r_route, n)
    is_session = (t_sess >= 0) & (t_time < horizon)

    def intent_rows(drop: int | None = None, rows: np.ndarray | slice = slice(None)):
        """First session row (within ``rows``) where intent forms, per user; -1 if none."""
        user, chan, keep = t_user[rows], t_chan[rows], log_keep[rows]
        eligible = is_session[rows]
        if drop is not None:
            keep = np.where(chan == drop, 0.0, keep)
            eligible = eligible & (chan != drop)
        prob = 1 - (1 - base_intent[user]) * np.exp(segment_cumsum(keep, user))
        return first_per_group(eligible & (prob > u_intent[user]), user, n), prob

    intent_row, prob = intent_rows()
    has_intent = intent_row >= 0
    intent_time = np.where(has_intent, t_time[intent_row], np.nan)
    intent_sess = np.where(has_intent, t_sess[intent_row], -1)

    first_sess = first_per_group(is_session, t_user, n)
    assigned = first_sess >= 0
    assigned_at = np.where(assigned, t_time[first_sess], np.nan)
    variant = _randomize(assigned, assigned_at, coins)

    users = {"shopper": shopper, "platform": platform, "country": country}
    timing = _delivery_factors(cal, (intent_time + draws["cart_delay"])[has_intent])
    checkout = _checkout(cal, intent_time, users, variant, d=draws, timing=timing)
    purchased = checkout["purchased"]

    # potential outcomes: the same uniforms with one channel's touches removed
    incremental = {}
    for ch in CHANNELS:
        exposed = np.zeros(n, dtype=bool)
        exposed[t_user[t_chan == C[ch]]] = True
        rows = np.flatnonzero(exposed[t_user])
        first_alt, _ = intent_rows(C[ch], rows)
        who = np.flatnonzero(exposed)
        alt_row = rows[first_alt[who].clip(0)]
        t_alt = np.where(first_alt[who] >= 0, t_time[alt_row], np.nan)
        mine = {k: v[who] for k, v in users.items()}
        alt = _checkout(
            cal, t_alt, mine, variant[who], d={k: v[who] for k, v in draws.items()}, timing=timing
        )
        incremental[ch] = int(purchased[who].sum() - alt["purchased"].sum())

    # experiment truth: P(purchase) under each arm given the user's touches
    sess_rows = np.flatnonzero(is_session)
    su = t_user[sess_rows]
    p_sess = prob[sess_rows]
    dp = p_sess - np.where(group_starts(su), 0.0, np.roll(p_sess, 1))
    cart_at = t_time[sess_rows] + 7 / 60  # mean cart delay
    ok = checkout_probability(cal, cart_at, shopper[su], timing) * PAYMENT_SUCCESS[platform[su]]
    ok = ok * (t_time[sess_rows] < horizon)
    p_arm = [
        np.bincount(su, weights=dp * ok * DETAILS_RATE[v, country[su]], minlength=n) for v in (0, 1)
    ]

    # planted rates of the delivery-promise and Android effects, over the carts filled
    carts = has_intent & (checkout["cart"] < horizon)
    p_start = checkout_probability(cal, checkout["cart"][carts], shopper[carts], timing)
    slow = slow_delivery(cal, checkout["cart"][carts])
    timing["rate_inside"] = float(p_start[~slow].mean()) if (~slow).any() else float("nan")
    timing["rate_outside"] = float(p_start[slow].mean()) if slow.any() else float("nan")

    t_keep = np.where(has_intent[t_user], t_time <= intent_time[t_user], True) & (t_time < horizon)
    users.update(
        {
            "assigned": assigned,
            "assigned_at": assigned_at,
            "variant": variant,
            "pre_orders": pre_orders,
            "pre_revenue": pre_revenue,
            "korean": country == COUNTRIES.index("KR"),
        }
    )
    return {
        "users": users,
        "touches": (t_user[t_keep], t_time[t_keep], t_chan[t_keep], t_sess[t_keep]),
        "intent_sess": intent_sess,
        "checkout": checkout,
        "truth": {
            "incremental": incremental,
            "p0": p_arm[0][assigned],
            "p1": p_arm[1][assigned],
            "purchased": purchased,
            "timing": timing,
        },
        "rngs": {"sessions": r_sess, "purchases": r_post, "repeats": r_rep, "feedback": r_fb,
                 "spend": r_spend, "split": r_split},
    }  # fmt: skip


# -- events --------------------------------------------------------------------------
def assemble(run: dict[str, Any], horizon: float) -> dict[str, np.ndarray]:
    """Turn touches, checkouts and purchases into flat event arrays inside the window.

    Returns ``user``, ``time`` (hours since start), ``event`` and ``chan``
    (codes), ``value`` and ``sess`` (session number, -1 off-site).
    """
    users, checkout = run["users"], run["checkout"]
    r_sess, r_post, r_rep = (run["rngs"][k] for k in ("sessions", "purchases", "repeats"))
    shopper = users["shopper"]
    n = len(shopper)
    t_user, t_time, t_chan, t_sess = run["touches"]
    parts: list[dict[str, np.ndarray]] = []

    def add(user, time, event, chan=-1, value=np.nan, sess=-1):
        k = len(user)
        parts.append(
            {
                "user": np.asarray(user, dtype=np.int32),
                "time": np.asarray(time, dtype=float),
                "event": np.full(k, E[event], dtype=np.int8),
                "chan": np.broadcast_to(np.asarray(chan, dtype=np.int8), (k,)),
                "value": np.broadcast_to(np.asarray(value, dtype=float), (k,)),
                "sess": np.broadcast_to(np.asarray(sess, dtype=np.int32), (k,)),
            }
        )

    off_site = t_sess < 0
    ads = off_site & np.isin(t_chan, [C[c] for c in AD_CHANNELS])
    add(t_user[ads], t_time[ads], "ad_impression", t_chan[ads])
    mails = off_site & (t_chan == C["email"])
    add(t_user[mails], t_time[mails], "email_open", C["email"])
    s_user, s_time, s_chan, s_id = (a[~off_site] for a in (t_user, t_time, t_chan, t_sess))
    s_no = segment_rank(s_user) + 1
    add(s_user, s_time, "session_start", s_chan, sess=s_no)
    # searches and product pages in the first quarter hour; in the session where
    # intent forms, before the add to cart
    in_intent = s_id == run["intent_sess"][s_user]
    cart = checkout["cart"][s_user]
    room = np.where(in_intent, np.minimum(0.25, 0.8 * (cart - s_time)), 0.25) - 1 / 120
    views = 1 + r_sess.poisson(_EXTRA_VIEWS[shopper[s_user]])
    v_rows = np.repeat(np.arange(len(s_user)), views)
    v_time = s_time[v_rows] + 1 / 120 + r_sess.random(len(v_rows)) * room[v_rows]
    add(s_user[v_rows], v_time, "product_view", sess=s_no[v_rows])
    search = r_sess.random(len(s_user)) < _SEARCH_RATE[shopper[s_user]]
    q_time = s_time[search] + 1 / 120 + r_sess.random(search.sum()) * 0.3 * room[search]
    add(s_user[search], q_time, "search", sess=s_no[search])

    # the checkout, in the intent session (the last kept session of the user)
    last_no = np.zeros(n, dtype=np.int64)
    last_no[s_user] = s_no
    carted = np.flatnonzero(~np.isnan(checkout["cart"]))
    add(carted, checkout["cart"][carted], "add_to_cart", sess=last_no[carted])
    for event, mask, time in (
        ("checkout_start", checkout["start"], checkout["start_time"]),
        ("payment_details", checkout["details"], checkout["details_time"]),
    ):
        who = np.flatnonzero(mask)
        add(who, time[who], event, sess=last_no[who])
    buyers = np.flatnonzero(checkout["paid"])
    value = np.round(r_post.lognormal(np.log(_ORDER_MEDIAN[shopper[buyers]]), _ORDER_SIGMA), 2)
    t_buy = checkout["paid_time"][buyers]
    add(buyers, t_buy, "purchase", value=value, sess=last_no[buyers])
    # after the order: returns, reviews and repeat orders
    returned = r_post.random(len(buyers)) < RETURN_RATE
    add(
        buyers[returned],
        t_buy[returned] + 24 * r_post.uniform(3, 20, returned.sum()),
        "return_request",
    )
    review = r_post.random(len(buyers)) < np.where(
        returned, REVIEW_RATE["returned"], REVIEW_RATE["kept"]
    )
    add(
        buyers[review], t_buy[review] + 24 * r_post.uniform(4, 25, review.sum()), "review_submitted"
    )
    rep_user, rep_time, rep_value = _repeat_purchases(r_rep, buyers, t_buy, horizon, clv=CLV)
    add(rep_user, rep_time, "repeat_purchase", value=rep_value)

    ev = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    keep = ev["time"] < horizon
    return {k: v[keep] for k, v in ev.items()}


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
