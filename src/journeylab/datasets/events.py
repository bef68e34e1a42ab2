"""Event log of the home-services sample: sessions, booking routes, jobs, repeats.

Takes the simulated journeys of :mod:`journeylab.datasets.simulation` (touches
up to the moment of intent, and each user's booking route) and writes the
events a company would log: page views and quote requests inside sessions,
the booking form, phone calls and call-backs, bookings with their value
(lognormal by service type), jobs on site (each by one field crew), reviews
and referrals by satisfied customers, and repeat bookings from a BG/NBD
process (time unit: days) with Gamma-Gamma values. Flat numpy arrays, one
entry per event, no Python loop over users or events.

Crews and reviews: a first job's crew ``c`` is drawn with probability
``CREW_SHARES[c]`` and the customer reviews it with probability
``REVIEW_RATE[happy] * CREW_ASK[c]``. The review is drawn first (as it was
before crews existed) and the crew second, from its conditional distribution
given the review (Bayes' rule), so the joint distribution is exactly that of
the forward model while the review rows stay those drawn without crews.
"""

from __future__ import annotations

import numpy as np

from journeylab.datasets.home_services_journeys import Simulation
from journeylab.datasets.simulation import (
    _QUOTE_RATE,
    _SERVICE_MEDIAN,
    _SERVICE_SIGMA,
    _VALUE_FACTOR,
    CLV,
    CREW_ASK,
    CREW_SHARES,
    HAPPY_RATE,
    REVIEW_RATE,
    C,
    E,
    choice_rows,
    segment_rank,
)


def assemble(run: Simulation) -> dict[str, np.ndarray]:
    """Turn a simulation's touches, routes and purchases into flat event arrays.

    Returns columns ``user``, ``time`` (hours since start), ``event`` and
    ``chan`` (codes), ``value``, ``sess`` (session number, -1 off-site),
    ``response`` (call-back minutes) and ``crew`` (code on jobs, -1
    elsewhere), for the events inside the window.
    """
    cal, users = run.cal, run.users
    touches, intent_sess = run.journeys["touches"], run.journeys["intent_sess"]
    route, booked = run.journeys["route"], run.journeys["booked"]
    r_sess, r_post, r_rep, r_crew = (
        run.rngs[k] for k in ("sessions", "purchases", "repeats", "crews")
    )
    horizon = cal.horizon
    persona, device = users["persona"], users["device"]
    n = len(persona)
    t_user, t_time, t_chan, t_sess = touches
    parts: list[dict[str, np.ndarray]] = []

    def add(user, time, event, chan=-1, value=np.nan, sess=-1, response=np.nan, crew=-1):
        k = len(user)
        parts.append(
            {
                "user": np.asarray(user, dtype=np.int32),
                "time": np.asarray(time, dtype=float),
                "event": np.full(k, E[event], dtype=np.int8),
                "chan": np.broadcast_to(np.asarray(chan, dtype=np.int8), (k,)),
                "value": np.broadcast_to(np.asarray(value, dtype=float), (k,)),
                "sess": np.broadcast_to(np.asarray(sess, dtype=np.int32), (k,)),
                "response": np.broadcast_to(np.asarray(response, dtype=float), (k,)),
                "crew": np.broadcast_to(np.asarray(crew, dtype=np.int8), (k,)),
            }
        )

    imp = t_sess < 0
    add(t_user[imp], t_time[imp], "ad_impression", t_chan[imp])
    ses = ~imp
    s_user, s_time, s_chan, s_id = t_user[ses], t_time[ses], t_chan[ses], t_sess[ses]
    # session number within the user, for readable session ids
    s_no = segment_rank(s_user) + 1
    add(s_user, s_time, "site_visit", s_chan, sess=s_no)
    # page views in the first ten minutes of a session, and a quote request
    # later on; in the session where intent forms both come before the
    # booking form or the phone call
    in_intent = s_id == intent_sess[s_user]
    action = np.where(route["web"], route["form_start"], route["call_time"])[s_user]
    room = np.where(in_intent, np.minimum(10 / 60, 0.8 * (action - s_time)), 10 / 60)
    views = r_sess.poisson(np.where(in_intent, 6.5, 5.5))
    v_rows = np.repeat(np.arange(len(s_user)), views)
    v_time = s_time[v_rows] + (1 / 120 + r_sess.random(len(v_rows)) * room[v_rows])
    add(s_user[v_rows], v_time, "service_page_view", sess=s_no[v_rows])
    quote = r_sess.random(len(s_user)) < _QUOTE_RATE[persona[s_user]]
    q_time = s_time[quote] + r_sess.uniform(10, 18, quote.sum()) / 60
    q_time = np.where(
        in_intent[quote], s_time[quote] + 0.9 * (action[quote] - s_time[quote]), q_time
    )
    add(s_user[quote], q_time, "quote_request", sess=s_no[quote])

    # booking route of users with intent (their intent session is their last kept one)
    last_no = np.zeros(n, dtype=np.int64)
    last_no[s_user] = s_no  # rows sorted by time within user: the last write wins
    web = route["web"]
    add(np.flatnonzero(web), route["form_start"][web], "booking_started", sess=last_no[web])
    called = route["called"]
    add(np.flatnonzero(called), route["call_time"][called], "phone_call", C["phone"])
    add(
        np.flatnonzero(called),
        route["callback_time"][called],
        "callback",
        C["phone"],
        response=route["response"][called],
    )

    # first booking: value by service type and persona (lognormal)
    buyers = np.flatnonzero(booked)
    svc = users["service"][buyers]
    value = np.round(
        r_post.lognormal(np.log(_SERVICE_MEDIAN[svc]), _SERVICE_SIGMA[svc])
        * _VALUE_FACTOR[persona[buyers]],
        2,
    )
    t_book = route["booking_time"][buyers]
    on_web = route["completed"][buyers]
    add(
        buyers, t_book, "booking_completed", value=value, sess=np.where(on_web, last_no[buyers], -1)
    )
    job_time = _job_time(r_post, t_book, persona[buyers])
    # satisfied customers review and refer
    happy = r_post.random(len(buyers)) < np.where(
        device[buyers] == 0, HAPPY_RATE["mobile"], HAPPY_RATE["other"]
    )
    base_rate = np.where(happy, REVIEW_RATE["happy"], REVIEW_RATE["other"])
    review = r_post.random(len(buyers)) < base_rate
    add(buyers, job_time, "job_completed", C["onsite"], crew=_crews(r_crew, review, base_rate))
    add(buyers[review], job_time[review] + r_post.uniform(6, 240, review.sum()), "review_posted")
    refer = happy & (r_post.random(len(buyers)) < 0.14)
    add(buyers[refer], job_time[refer] + r_post.uniform(24, 720, refer.sum()), "referral_sent")

    # repeat bookings: BG/NBD in days, Gamma-Gamma values
    rep_user, rep_time, rep_value = _repeat_purchases(r_rep, buyers, t_book, horizon)
    add(rep_user, rep_time, "repeat_booking", value=rep_value)
    rep_crew = choice_rows(r_crew, np.broadcast_to(CREW_SHARES, (len(rep_user), len(CREW_SHARES))))
    add(
        rep_user,
        _job_time(r_rep, rep_time, persona[rep_user]),
        "job_completed",
        C["onsite"],
        crew=rep_crew,
    )

    ev = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    keep = ev["time"] < horizon
    return {k: v[keep] for k, v in ev.items()}


def _crews(rng, review: np.ndarray, base_rate: np.ndarray) -> np.ndarray:
    """Crew of each first job given whether it was reviewed (see the module docstring).

    P(crew = c | review) = share[c] * ask[c] and
    P(crew = c | no review) = share[c] * (1 - rate * ask[c]) / (1 - rate),
    where ``rate`` is the job's review probability without crews.
    """
    reviewed = CREW_SHARES * CREW_ASK
    not_reviewed = CREW_SHARES * (1 - base_rate[:, None] * CREW_ASK) / (1 - base_rate[:, None])
    probs = np.where(review[:, None], reviewed[None, :], not_reviewed)
    return choice_rows(rng, probs)


def _job_time(rng, t_book: np.ndarray, persona: np.ndarray) -> np.ndarray:
    """Jobs happen on site during working hours, soon for urgent customers."""
    days = np.where(persona == 0, rng.integers(0, 2, len(t_book)), rng.integers(1, 12, len(t_book)))
    day = np.floor(t_book / 24) + days
    hour = rng.uniform(8, 18, len(t_book))
    t_job = day * 24 + hour
    return np.where(t_job > t_book + 1.5, t_job, t_book + 1.5 + rng.uniform(0.5, 3, len(t_book)))


def _repeat_purchases(rng, buyers, t_first, horizon, *, clv=CLV):
    """BG/NBD repeat purchases after the first booking (days), Gamma-Gamma spend."""
    k = len(buyers)
    lam = rng.gamma(clv["r"], 1 / clv["alpha"], k)  # purchases per day
    drop = rng.beta(clv["a"], clv["b"], k)
    window = np.maximum(horizon - t_first, 0) / 24  # days observed
    n_events = rng.poisson(lam * window)
    max_repeats = rng.geometric(drop)  # dropout after the D-th repeat
    count = np.minimum(n_events, max_repeats)
    rows = np.repeat(np.arange(k), n_events)
    u = rng.random(len(rows))
    # uniform order statistics within each customer's window, then keep the first `count`
    order = np.lexsort((u, rows))
    u = u[order]
    rank = segment_rank(rows)
    keep = rank < count[rows]
    rows, u = rows[keep], u[keep]
    rep_time = t_first[rows] + u * window[rows] * 24
    nu = rng.gamma(clv["q"], 1 / clv["v"], k)
    value = np.round(rng.gamma(clv["p"], 1 / nu[rows]), 2)
    return buyers[rows], rep_time, value
