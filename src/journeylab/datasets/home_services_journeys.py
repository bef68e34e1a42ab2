"""The home-services journeys, simulated per user on flat arrays: touches, intent, the booking route, the job.

The generative story and its parameters are those of :mod:`journeylab.datasets.simulation`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from journeylab.datasets.simulation import (
    _AD_FREQUENCY,
    _AD_REACH,
    _BASE_INTENT,
    _CALL_DELAY,
    _CLOSED_MEDIAN,
    _CLOSED_SIGMA,
    _DEVICE_MIX,
    _EXISTING_CUSTOMER,
    _EXTRA_SESSIONS,
    _FALLBACK_DELAY,
    _OPEN_MEDIAN,
    _OPEN_SIGMA,
    _SERVICE_MIX,
    _SESSION_GAP_HOURS,
    _SESSION_MIX,
    _WEB_SHARE,
    AD_CHANNELS,
    BOOK_AFTER_CALL,
    CHANNEL_EFFECTS,
    CHANNELS,
    FALLBACK_CALL,
    FORM_COMPLETION,
    PERSONA_SHARES,
    REGION_SHARES,
    SLOT_RATIO,
    SLOW_MINUTES,
    C,
    Calendar,
    _randomize,
    choice_rows,
    first_per_group,
    group_starts,
    segment_cumsum,
    segment_rank,
)


# -- the simulation ------------------------------------------------------------
@dataclass
class Simulation:
    """Simulated journeys as flat arrays (hours since start, integer codes).

    ``journeys`` holds the touches kept (up to the moment of intent), each
    user's intent session, booking route and whether they booked; ``rngs``
    the random streams the event writer continues.
    """

    n_users: int
    cal: Calendar
    users: dict[str, np.ndarray]
    journeys: dict
    truth: dict
    rngs: dict[str, np.random.Generator]


def simulate(seed: int, n_users: int, cal: Calendar) -> Simulation:
    """Run the generative story up to each user's booking; return users, journeys, truth."""
    (r_user, r_sess, r_imp, r_route, r_post, r_rep) = [
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6)
    ]
    n = n_users
    uid = np.arange(n)
    horizon = cal.horizon

    # 1. users ---------------------------------------------------------------
    persona = choice_rows(r_user, np.tile(PERSONA_SHARES, (n, 1)))
    device = choice_rows(r_user, _DEVICE_MIX[persona])
    region = choice_rows(r_user, np.tile(REGION_SHARES, (n, 1)))
    engagement = r_user.gamma(2.0, 0.5, n)
    existing = r_user.random(n) < _EXISTING_CUSTOMER[persona]
    arrival = r_user.random(n) * horizon  # activity time
    service = choice_rows(r_user, _SERVICE_MIX[persona])
    korean = r_user.random(n) < 0.2
    visits_site = r_user.random(n) > 0.15  # the rest only ever see ads
    pre_sessions = r_user.poisson(1.2 * engagement * (1 + 2.0 * existing))
    pre_revenue = np.where(
        existing,
        np.round(r_user.lognormal(np.log(260.0), 0.6, n) * (1 + r_user.poisson(0.6, n)), 2),
        0.0,
    )
    base_intent = np.clip(_BASE_INTENT[persona] * engagement * (1 + 0.8 * existing), 0, 0.9)
    coins = r_user.random(n)  # assignment coin flips, used in order of first visit

    # ad targeting is decided up front: users with ads see them before visiting
    targeted = r_imp.random((n, 3)) < _AD_REACH[persona]
    targeted[:, 0] |= ~visits_site & ~targeted.any(axis=1)  # ad-only users saw some ad
    has_ads = targeted.any(axis=1)

    # 2. sessions --------------------------------------------------------------
    n_sess = np.where(
        visits_site, 1 + r_sess.poisson(_EXTRA_SESSIONS[persona] * np.sqrt(engagement)), 0
    )
    n_sess = np.minimum(n_sess, 40)
    s_user = np.repeat(uid, n_sess)
    s_rank = segment_rank(s_user)
    first_delay = np.where(has_ads, r_sess.exponential(36.0, n), 0.0)  # first ad -> first visit
    gap = np.where(
        s_rank == 0,
        first_delay[s_user],
        0.5 + r_sess.exponential(_SESSION_GAP_HOURS[persona[s_user]]),
    )
    s_offset = segment_cumsum(gap, s_user)
    s_time = cal.to_hours(arrival[s_user] + s_offset)
    # at least 40 minutes between session starts, on the calendar clock
    spaced = s_time - s_rank * (40 / 60)
    spaced = np.maximum.accumulate(spaced + s_user * 1e7) - s_user * 1e7
    s_time = spaced + s_rank * (40 / 60)
    s_chan = choice_rows(r_sess, _SESSION_MIX[persona[s_user]])
    span = np.zeros(n)
    last = (
        np.flatnonzero(np.append(s_user[1:] != s_user[:-1], True))
        if len(s_user)
        else np.array([], int)
    )
    span[s_user[last]] = s_offset[last]
    span = np.where(visits_site, span + 24.0, r_imp.exponential(72.0, n))

    # 3. ad impressions -------------------------------------------------------
    counts = targeted * (1 + r_imp.poisson(_AD_FREQUENCY * np.sqrt(engagement)[:, None]))  # (n, 3)
    per_user = counts.sum(axis=1)
    i_user = np.repeat(uid, per_user)
    ad_codes = np.array([C[c] for c in AD_CHANNELS])
    # channel per impression: channel k repeated counts[u, k] times, user by user
    i_chan = ad_codes[np.repeat(np.tile(np.arange(3), n), counts.ravel())]
    # most impressions come before the first visit (awareness), the rest retarget
    before = visits_site[i_user] & (
        r_imp.random(len(i_user)) < np.where(i_chan == C["display"], 0.9, 0.7)
    )
    i_span = np.where(before, first_delay[i_user], span[i_user])
    i_offset = r_imp.random(len(i_user)) * i_span
    i_offset[group_starts(i_user)] = 0.0  # the first ad marks the user's arrival
    i_time = cal.to_hours(arrival[i_user] + i_offset)
    # impressions clicked: a paid session starts seconds after its ad
    paid_click = np.isin(s_chan, ad_codes) & (r_imp.random(len(s_chan)) < 0.7)
    c_user = s_user[paid_click]
    c_time = s_time[paid_click] - r_imp.uniform(3, 40, paid_click.sum()) / 3600
    c_chan = s_chan[paid_click]

    # 4. touches and booking intent -------------------------------------------
    t_user = np.concatenate([i_user, c_user, s_user])
    t_time = np.concatenate([i_time, c_time, s_time])
    t_chan = np.concatenate([i_chan, c_chan, s_chan])
    t_sess = np.concatenate([np.full(len(i_user) + len(c_user), -1), np.arange(len(s_user))])
    # one integer sort key: user, then time (1/8 s), sessions after their click
    ticks = np.clip((t_time + 1.0) * 28_800, 0, 2**31 - 1).astype(np.int64)
    order = np.argsort(
        (t_user.astype(np.int64) << 32) | (ticks << 1) | (t_sess >= 0), kind="stable"
    )
    t_user, t_time, t_chan, t_sess = t_user[order], t_time[order], t_chan[order], t_sess[order]
    effects = np.array([CHANNEL_EFFECTS[c] for c in CHANNELS])
    log_keep = np.log1p(-effects)[t_chan]
    u_intent = r_route.random(n)
    route_draws = _route_draws(r_route, n)
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

    intent_row, prob = intent_rows(None)
    has_intent = intent_row >= 0
    intent_time = np.where(has_intent, t_time[intent_row], np.nan)
    intent_sess = np.where(has_intent, t_sess[intent_row], -1)

    # experiment: assignment at the first site visit inside the window
    first_sess = first_per_group(is_session, t_user, n)
    assigned = first_sess >= 0
    assigned_at = np.where(assigned, t_time[first_sess], np.nan)
    variant = _randomize(assigned, assigned_at, coins)

    timing = _slot_factors(cal, intent_time, persona, route_draws)
    route = _route(
        cal,
        intent_time,
        persona=persona,
        device=device,
        variant=variant,
        d=route_draws,
        timing=timing,
    )
    booked = route["booked"] & (route["booking_time"] < horizon)
    # planted completion of the forms started, inside and outside the slot hours
    started = route["web"] & (route["form_start"] < horizon)
    form_start = route["form_start"][started]
    p_form = form_completion(cal, form_start, variant[started], device[started], timing)
    inside = cal.in_slot_hours(form_start)
    timing["rate_inside"] = float(p_form[inside].mean()) if inside.any() else float("nan")
    timing["rate_outside"] = float(p_form[~inside].mean()) if (~inside).any() else float("nan")

    # potential outcomes: the same uniforms with one channel's touches removed
    # (only users who saw the channel can change, so only they are replayed)
    incremental = {}
    for ch in CHANNELS:
        exposed = np.zeros(n, dtype=bool)
        exposed[t_user[t_chan == C[ch]]] = True
        rows = np.flatnonzero(exposed[t_user])
        first_alt, _ = intent_rows(C[ch], rows)
        who = np.flatnonzero(exposed)
        alt_row = rows[first_alt[who].clip(0)]
        t_alt = np.where(first_alt[who] >= 0, t_time[alt_row], np.nan)
        draws = {k: v[who] for k, v in route_draws.items()}
        alt = _route(
            cal,
            t_alt,
            persona=persona[who],
            device=device[who],
            variant=variant[who],
            d=draws,
            timing=timing,
        )
        booked_alt = alt["booked"] & (alt["booking_time"] < horizon)
        incremental[ch] = int(booked[who].sum() - booked_alt.sum())

    # experiment truth: P(booked) under each arm given the user's touches
    sess_rows = np.flatnonzero(is_session)
    p_sess = prob[sess_rows]
    su = t_user[sess_rows]
    prev = np.where(group_starts(su), 0.0, np.roll(p_sess, 1))
    dp = p_sess - prev
    p_arm = []
    for v in (0, 1):
        success = _route_success(
            cal, t_time[sess_rows], persona=persona[su], device=device[su], variant=v, timing=timing
        )
        ok = dp * success * (t_time[sess_rows] < horizon)
        p_arm.append(np.bincount(su, weights=ok, minlength=n))
    p0, p1 = p_arm[0][assigned], p_arm[1][assigned]

    # keep the pre-intent part of each journey (browsing stops once a user acts)
    t_keep = np.where(has_intent[t_user], t_time <= intent_time[t_user], True) & (t_time < horizon)
    users = {
        "persona": persona,
        "device": device,
        "region": region,
        "korean": korean,
        "service": service,
        "assigned": assigned,
        "assigned_at": assigned_at,
        "variant": variant,
        "pre_sessions": pre_sessions,
        "pre_revenue": pre_revenue,
    }
    truth = {
        "incremental": incremental,
        "p0": p0,
        "p1": p1,
        "booked": booked,
        "timing": timing,
    }
    journeys = {
        "touches": (t_user[t_keep], t_time[t_keep], t_chan[t_keep], t_sess[t_keep]),
        "intent_sess": intent_sess,
        "route": route,
        "booked": booked,
    }
    # the event writer continues these streams; crews draw from a stream of their own
    r_crew = np.random.default_rng(np.random.SeedSequence([seed, 2]).spawn(1)[0])
    rngs = {"sessions": r_sess, "purchases": r_post, "repeats": r_rep, "crews": r_crew}
    return Simulation(n, cal, users, journeys, truth, rngs)


# -- booking route ---------------------------------------------------------------
def _route_draws(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Per-user uniforms shared by the factual and counterfactual routes."""
    return {
        "web": rng.random(n),
        "complete": rng.random(n),
        "fallback": rng.random(n),
        "response_z": rng.standard_normal(n),
        "book_call": rng.random(n),
        "call_delay": rng.uniform(*_CALL_DELAY, n),
        "fallback_delay": rng.uniform(*_FALLBACK_DELAY, n),
        "start_delay": rng.uniform(4, 14, n) / 60,
        "form_minutes": rng.uniform(2, 8, n) / 60,
        "talk_minutes": rng.uniform(3, 12, n) / 60,
    }


def _response_minutes(cal: Calendar, call_time: np.ndarray, z: np.ndarray) -> np.ndarray:
    wait = cal.wait_until_open(np.nan_to_num(call_time)) * 60
    open_now = wait == 0
    backlog = np.where(
        open_now,
        np.exp(np.log(_OPEN_MEDIAN) + _OPEN_SIGMA * z),
        np.exp(np.log(_CLOSED_MEDIAN) + _CLOSED_SIGMA * z),
    )
    return np.maximum(1.0, np.round(wait + backlog, 1))


def _p_fast(cal: Calendar, call_time: np.ndarray) -> np.ndarray:
    """P(call-back within SLOW_MINUTES) for a call at ``call_time``."""
    wait = cal.wait_until_open(call_time) * 60
    open_now = wait == 0
    in_hours = stats.norm.cdf((np.log(SLOW_MINUTES) - np.log(_OPEN_MEDIAN)) / _OPEN_SIGMA)
    left = np.maximum(SLOW_MINUTES - wait, 1e-9)
    closed = np.where(
        wait < SLOW_MINUTES,
        stats.norm.cdf((np.log(left) - np.log(_CLOSED_MEDIAN)) / _CLOSED_SIGMA),
        0.0,
    )
    return np.where(open_now, in_hours, closed)


def _slot_factors(cal, intent_time, persona, d) -> dict[str, float]:
    """Form-completion factors inside and outside the slot hours.

    Their ratio is ``SLOT_RATIO``; they are scaled so that their mean over the
    forms this sample starts is 1 (the share started outside the slot hours,
    ``outside_share``, is clipped to [0.2, 0.7] for tiny samples).
    """
    web = ~np.isnan(intent_time) & (d["web"] < _WEB_SHARE[persona])
    starts = intent_time[web] + d["start_delay"][web]
    starts = starts[starts < cal.horizon]
    share = float(np.mean(~cal.in_slot_hours(starts))) if len(starts) else 0.45
    share = min(max(share, 0.2), 0.7)
    inside = 1.0 / (1.0 - share + SLOT_RATIO * share)
    return {"inside": inside, "outside": SLOT_RATIO * inside, "outside_share": share}


def form_completion(cal, form_start, variant, device, timing) -> np.ndarray:
    """P(form completed) for forms opened at ``form_start`` (calendar hours)."""
    factor = np.where(cal.in_slot_hours(form_start), timing["inside"], timing["outside"])
    return np.minimum(FORM_COMPLETION[variant, device] * factor, 1.0)


def _route_success(cal, t, *, persona, device, variant: int, timing) -> np.ndarray:
    """P(booking | intent at a session at time t) for one arm (mean delays)."""
    web = _WEB_SHARE[persona]
    fast, slow = BOOK_AFTER_CALL["fast"], BOOK_AFTER_CALL["slow"]
    q_phone = slow + (fast - slow) * _p_fast(cal, t + np.mean(_CALL_DELAY))
    q_back = slow + (fast - slow) * _p_fast(cal, t + np.mean(_FALLBACK_DELAY) + 0.15)
    complete = form_completion(cal, t + 9 / 60, variant, device, timing)  # mean start delay
    return web * (complete + (1 - complete) * FALLBACK_CALL * q_back) + (1 - web) * q_phone


def _route(cal, intent_time, *, persona, device, variant, d, timing) -> dict[str, np.ndarray]:
    """Realised booking route for users with intent at ``intent_time`` (NaN: none)."""
    has = ~np.isnan(intent_time)
    web = has & (d["web"] < _WEB_SHARE[persona])
    form_start = np.where(web, intent_time + d["start_delay"], np.nan)
    completed = web & (d["complete"] < form_completion(cal, form_start, variant, device, timing))
    form_done = np.where(completed, form_start + d["form_minutes"], np.nan)
    fallback = web & ~completed & (d["fallback"] < FALLBACK_CALL)
    phone = has & ~web
    call_time = np.where(
        phone,
        intent_time + d["call_delay"],
        np.where(fallback, form_start + d["fallback_delay"], np.nan),
    )
    called = phone | fallback
    response = np.where(called, _response_minutes(cal, call_time, d["response_z"]), np.nan)
    callback_time = call_time + response / 60
    rate = np.where(response > SLOW_MINUTES, BOOK_AFTER_CALL["slow"], BOOK_AFTER_CALL["fast"])
    booked_call = called & (d["book_call"] < rate)
    booking_time = np.where(
        completed, form_done, np.where(booked_call, callback_time + d["talk_minutes"], np.nan)
    )
    return {
        "web": web,
        "form_start": form_start,
        "completed": completed,
        "called": called,
        "call_time": call_time,
        "response": response,
        "callback_time": callback_time,
        "booked": completed | booked_call,
        "booking_time": booking_time,
    }
