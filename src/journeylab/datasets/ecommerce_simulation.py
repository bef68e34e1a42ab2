"""The e-commerce sample's simulation: each user's journey drawn on flat arrays, then assembled into events.

The generative story is that of :mod:`journeylab.datasets.ecommerce`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from journeylab.datasets.ecommerce_shop import (
    _AD_FREQUENCY,
    _AD_REACH,
    _BASE_INTENT,
    _EXISTING_CUSTOMER,
    _EXTRA_SESSIONS,
    _EXTRA_VIEWS,
    _OPENS_PER_WEEK,
    _ORDER_MEDIAN,
    _ORDER_SIGMA,
    _PLATFORM_MIX,
    _SEARCH_RATE,
    _SESSION_GAP_HOURS,
    _SESSION_MIX,
    _SUBSCRIBER,
    AD_CHANNELS,
    CHANNEL_EFFECTS,
    CHANNELS,
    CLV,
    COUNTRIES,
    COUNTRY_SHARES,
    DETAILS_RATE,
    PAYMENT_SUCCESS,
    PLATFORMS,
    RETURN_RATE,
    REVIEW_RATE,
    SHOPPER_SHARES,
    C,
    E,
    _delivery_factors,
    checkout_probability,
    slow_delivery,
)
from journeylab.datasets.events import _repeat_purchases
from journeylab.datasets.simulation import (
    Calendar,
    _randomize,
    choice_rows,
    first_per_group,
    group_starts,
    segment_cumsum,
    segment_rank,
)


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
