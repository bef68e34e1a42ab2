"""Simulation core of the home-services sample (see :mod:`journeylab.datasets.sample`).

Everything here works on flat numpy arrays: one array per column, rows
grouped by user (a "ragged" layout), so the cost grows linearly with the
number of users and no Python loop ever runs over users or events.

The generative story, per user:

1. a persona (urgency, channel mix, value), a device, a region, a latent
   engagement and, for some, a purchase history before the sample window;
2. ad impressions and site sessions whose clock follows the calendar
   (diurnal, weekly and summer seasonality, by warping "activity time");
3. booking intent, decided at each session by a noisy-OR of the marketing
   touches seen so far: ``P_j = 1 - (1 - b0) * prod(1 - effect[channel])``,
   evaluated against one uniform per user, so the same uniforms replay the
   journey with a channel's touches removed (potential outcomes);
4. the booking route: the web form (completion depends on device, the
   short-form experiment and whether the form is opened in the hours when
   the slot picker offers free slots) or a phone call with a call-back whose
   delay decides the booking rate; abandoned forms sometimes fall back to a
   call;
5. the job on site by one of six field crews, reviews (far fewer after the
   crews that do not ask for one) and referrals by satisfied customers, and
   repeat bookings from a BG/NBD process with Gamma-Gamma spend.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

# -- vocabularies --------------------------------------------------------------
EVENTS = (
    "ad_impression",
    "site_visit",
    "service_page_view",
    "quote_request",
    "phone_call",
    "callback",
    "booking_started",
    "booking_completed",
    "job_completed",
    "repeat_booking",
    "review_posted",
    "referral_sent",
)
E = {name: code for code, name in enumerate(EVENTS)}

#: Marketing channels (traffic sources of site sessions), then offline ones.
CHANNELS = (
    "paid_search",
    "organic_search",
    "social",
    "display",
    "referral",
    "email",
    "sms",
    "direct",
)
ALL_CHANNELS = (*CHANNELS, "phone", "onsite")
C = {name: code for code, name in enumerate(ALL_CHANNELS)}
AD_CHANNELS = ("display", "social", "paid_search")  # channels that serve impressions
PAID_CHANNELS = ("paid_search", "social", "display", "email", "sms")
DEVICES = ("mobile", "desktop", "tablet")
REGIONS = ("north", "south", "east", "west", "central")
REGION_SHARES = (0.24, 0.22, 0.18, 0.21, 0.15)
PERSONAS = ("urgent_fixer", "planner", "deal_seeker", "loyal_homeowner")
PERSONA_SHARES = (0.30, 0.25, 0.30, 0.15)
SERVICES = ("plumbing", "electrical", "hvac", "cleaning", "handyman", "appliance_repair")
VARIANTS = ("control", "short_form")

#: True per-touch incremental effect of each marketing channel on booking intent.
CHANNEL_EFFECTS = {
    "paid_search": 0.11,
    "organic_search": 0.095,
    "social": 0.03,
    "display": 0.003,
    "referral": 0.085,
    "email": 0.08,
    "sms": 0.028,
    "direct": 0.04,
}

# Per persona (rows in PERSONAS order).
_DEVICE_MIX = np.array(
    [[0.74, 0.20, 0.06], [0.44, 0.46, 0.10], [0.72, 0.20, 0.08], [0.55, 0.35, 0.10]]
)
#: Session traffic-source mix, columns in CHANNELS order.
_SESSION_MIX = np.array(
    [
        [0.40, 0.28, 0.05, 0.01, 0.08, 0.04, 0.05, 0.09],
        [0.15, 0.37, 0.07, 0.01, 0.16, 0.14, 0.03, 0.07],
        [0.22, 0.21, 0.22, 0.01, 0.06, 0.13, 0.08, 0.07],
        [0.10, 0.18, 0.04, 0.01, 0.09, 0.35, 0.12, 0.11],
    ]
)
#: Share of users each ad channel targets, columns in AD_CHANNELS order, and
#: the mean number of impressions a targeted user sees (frequency).
_AD_REACH = np.array(
    [[0.01, 0.08, 0.45], [0.02, 0.15, 0.25], [0.03, 0.30, 0.20], [0.01, 0.10, 0.10]]
)
_AD_FREQUENCY = np.array([40.0, 12.0, 4.0])
_EXTRA_SESSIONS = np.array([1.2, 5.0, 3.5, 3.0])  # mean sessions beyond the first
_SESSION_GAP_HOURS = np.array([6.0, 110.0, 50.0, 70.0])  # mean gap in activity-hours
_BASE_INTENT = np.array([0.22, 0.07, 0.05, 0.14])  # intent with no marketing touch
_WEB_SHARE = np.array([0.35, 0.75, 0.80, 0.55])  # P(book online | intent)
_QUOTE_RATE = np.array([0.04, 0.22, 0.10, 0.05])  # quote requests per session
_EXISTING_CUSTOMER = np.array([0.08, 0.10, 0.08, 0.45])  # bought before the window
_VALUE_FACTOR = np.array([1.15, 1.40, 0.80, 1.00])
_SERVICE_MIX = np.array(
    [
        [0.40, 0.25, 0.15, 0.02, 0.08, 0.10],
        [0.15, 0.20, 0.25, 0.05, 0.30, 0.05],
        [0.15, 0.10, 0.10, 0.35, 0.20, 0.10],
        [0.15, 0.10, 0.20, 0.35, 0.15, 0.05],
    ]
)
#: Median job value (currency units) and log-sd per service.
_SERVICE_MEDIAN = np.array([230.0, 260.0, 420.0, 140.0, 180.0, 200.0])
_SERVICE_SIGMA = np.array([0.55, 0.50, 0.60, 0.35, 0.50, 0.45])

#: Booking-form completion by variant (rows) and device (columns).
FORM_COMPLETION = np.array([[0.36, 0.75, 0.62], [0.58, 0.75, 0.66]])
#: Local time zone of the business (hours of the slot picker and of the crews).
TIMEZONE = "America/New_York"
#: The slot picker offers free slots Monday-Friday, 07:00-19:00 local time;
#: outside those hours it shows the first free slot days ahead.
SLOT_DAYS = (0, 1, 2, 3, 4)
SLOT_HOURS = (7, 19)
#: Form completion outside the slot hours relative to inside. The two factors
#: are scaled so that their mean over the forms started is 1, which keeps the
#: completion rate per device (``FORM_COMPLETION``) what it was.
SLOT_RATIO = 0.55
#: Field crews doing the jobs, their share of jobs, and how often each asks
#: for a review relative to the average (``sum(share * ask) == 1``, so the
#: overall review rate stays what it is without crews).
CREWS = ("crew_a", "crew_b", "crew_c", "crew_d", "crew_e", "crew_f")
CREW_SHARES = np.array([0.20, 0.19, 0.16, 0.18, 0.14, 0.13])
RARELY_ASK = ("crew_c", "crew_f")
_RARE_ASK = 0.15
CREW_ASK = np.where(
    np.isin(CREWS, RARELY_ASK),
    _RARE_ASK,
    (1 - _RARE_ASK * CREW_SHARES[np.isin(CREWS, RARELY_ASK)].sum())
    / CREW_SHARES[~np.isin(CREWS, RARELY_ASK)].sum(),
)
#: P(review) after a first job, for satisfied and other customers (crews aside).
REVIEW_RATE = {"happy": 0.24, "other": 0.08}
#: P(satisfied) after a first job: mobile users, everyone else.
HAPPY_RATE = {"mobile": 0.72, "other": 0.78}
FALLBACK_CALL = 0.30  # abandoned form -> phone call
#: Booking rate after a call, by call-back speed.
SLOW_MINUTES = 60.0
BOOK_AFTER_CALL = {"fast": 0.55, "slow": 0.25}
# Call-back delay (minutes): lognormal during opening hours, otherwise the
# wait until opening plus a lognormal backlog.
_OPEN_MEDIAN, _OPEN_SIGMA = 22.0, 0.9
_CLOSED_MEDIAN, _CLOSED_SIGMA = 25.0, 0.7
_OPEN_HOURS = (8, 19)  # Monday-Saturday
_CALL_DELAY = (2 / 60, 30 / 60)  # hours after the session (phone route)
_FALLBACK_DELAY = (10 / 60, 2.0)  # hours after the abandoned form

#: Repeat purchases: BG/NBD (time unit: days) and Gamma-Gamma spend.
CLV = {"r": 0.9, "alpha": 50.0, "a": 0.8, "b": 2.6, "p": 6.0, "q": 3.5, "v": 100.0}


@dataclass
class Calendar:
    """Clock of the sample: hours since ``start`` and the activity warp."""

    start_hour_of_week: float  # Monday 00:00 = 0
    start_day_of_year: int
    horizon: float  # hours in the window
    grid: np.ndarray = field(repr=False)  # calendar hours
    activity: np.ndarray = field(repr=False)  # cumulative activity at grid points
    #: Local hour of the week (Monday 00:00 = 0) of each whole UTC hour since
    #: the hour the window starts in, and that start's fraction of an hour;
    #: set by :meth:`localize`. None reads the calendar clock as local time.
    local_how: np.ndarray | None = field(default=None, repr=False)
    local_offset: float = 0.0

    @classmethod
    def build(cls, start_hour_of_week: float, start_day_of_year: int, horizon: float) -> Calendar:
        """Build the calendar of the simulated period."""
        total = int(np.ceil(horizon)) + 24 * 150
        hours = np.arange(total)
        how = (start_hour_of_week + hours) % 168
        hod = how % 24
        dow = how // 24
        diurnal = np.array(
            [0.15, 0.08, 0.05, 0.04, 0.05, 0.12, 0.35, 0.70, 1.00, 1.15, 1.20, 1.25,
             1.35, 1.30, 1.20, 1.15, 1.15, 1.25, 1.45, 1.60, 1.65, 1.45, 0.95, 0.45]
        )  # fmt: skip
        weekly = np.array([1.12, 1.08, 1.02, 1.00, 0.93, 0.88, 0.97])
        day_of_year = (start_day_of_year + hours / 24.0) % 365.25
        seasonal = 1.0 + 0.15 * np.cos(2 * np.pi * (day_of_year - 200) / 365.25)  # peak mid-July
        rate = diurnal[hod.astype(int)] * weekly[dow.astype(int)] * seasonal
        activity = np.concatenate([[0.0], np.cumsum(rate)])
        activity *= horizon / np.interp(horizon, np.arange(total + 1), activity)
        return cls(
            start_hour_of_week,
            start_day_of_year,
            horizon,
            np.arange(total + 1, dtype=float),
            activity,
        )

    def to_hours(self, activity_time: np.ndarray) -> np.ndarray:
        """Calendar hours for activity times (busy hours pass faster)."""
        return np.interp(activity_time, self.activity, self.grid)

    def to_activity(self, hours: np.ndarray) -> np.ndarray:
        """Return the activity level at the given hours."""
        return np.interp(hours, self.grid, self.activity)

    def hour_of_week(self, hours: np.ndarray) -> np.ndarray:
        """Return the hour of the week (0-168) of the given hours."""
        return (self.start_hour_of_week + hours) % 168.0

    def localize(self, start_ts, tz: str) -> Calendar:
        """Attach the local clock of time zone ``tz`` (daylight saving included)."""
        import pandas as pd

        base = start_ts.floor("h")
        stamps = pd.date_range(base, periods=len(self.grid) + 1, freq="h").tz_convert(tz)
        self.local_how = np.asarray(stamps.day_of_week * 24 + stamps.hour, dtype=np.int64)
        self.local_offset = (start_ts - base) / pd.Timedelta(hours=1)
        return self

    def local_hour_of_week(self, hours: np.ndarray) -> np.ndarray:
        """Local whole hour of the week (Monday 00:00 = 0) at calendar hours."""
        hours = np.nan_to_num(np.asarray(hours, dtype=float))
        if self.local_how is None:
            return np.floor(self.hour_of_week(hours)).astype(np.int64) % 168
        k = np.clip(
            np.floor(hours + self.local_offset).astype(np.int64), 0, len(self.local_how) - 1
        )
        return self.local_how[k]

    def in_slot_hours(self, hours: np.ndarray) -> np.ndarray:
        """Tell where the slot picker offers free slots (local weekday, slot hours)."""
        how = self.local_hour_of_week(hours)
        return (
            np.isin(how // 24, SLOT_DAYS) & (how % 24 >= SLOT_HOURS[0]) & (how % 24 < SLOT_HOURS[1])
        )

    def wait_until_open(self, hours: np.ndarray) -> np.ndarray:
        """Hours until the call centre opens (0 when open)."""
        how = self.hour_of_week(hours)
        whole = np.floor(how).astype(int) % 168
        return np.where(_OPEN_MASK[whole], 0.0, _NEXT_OPEN[whole] - (how - np.floor(how)))


def _opening_table() -> tuple[np.ndarray, np.ndarray]:
    """Open hours of the week (Monday 00:00 = 0) and whole hours to the next opening."""
    is_open = np.zeros(168, dtype=bool)
    for day in range(6):
        is_open[day * 24 + _OPEN_HOURS[0] : day * 24 + _OPEN_HOURS[1]] = True
    ahead = np.array([next(k for k in range(1, 169) if is_open[(i + k) % 168]) for i in range(168)])
    return is_open, ahead


_OPEN_MASK, _NEXT_OPEN = _opening_table()


# -- ragged-array helpers ------------------------------------------------------
def group_starts(group: np.ndarray) -> np.ndarray:
    """Boolean mask of the first row of each run of equal (sorted) group ids."""
    first = np.ones(len(group), dtype=bool)
    first[1:] = group[1:] != group[:-1]
    return first


def segment_cumsum(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at each new group (rows sorted by group)."""
    if len(values) == 0:
        return values.astype(float)
    total = np.cumsum(values)
    first = group_starts(group)
    base = (total - values)[first]
    runs = np.diff(np.append(np.flatnonzero(first), len(values)))
    return total - np.repeat(base, runs)


def segment_rank(group: np.ndarray) -> np.ndarray:
    """0, 1, 2 ... within each run of equal group ids."""
    return segment_cumsum(np.ones(len(group), dtype=np.int64), group) - 1


def first_per_group(mask: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Row index of the first True per group, -1 where none (rows sorted by group)."""
    out = np.full(n_groups, -1, dtype=np.int64)
    rows = np.flatnonzero(mask)
    if len(rows):
        keep = group_starts(group[rows])
        out[group[rows[keep]]] = rows[keep]
    return out


def choice_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of a (rows, k) probability matrix."""
    cum = np.cumsum(probs, axis=1)
    cum[:, -1] = 1.0
    u = rng.random(len(probs))[:, None]
    return (u > cum).sum(axis=1).astype(np.int64)


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


def _randomize(assigned: np.ndarray, assigned_at: np.ndarray, coins: np.ndarray) -> np.ndarray:
    """50/50 assignment in blocks of two, in order of first visit (0 control, 1 short form).

    Each pair of consecutive visitors gets one user per arm, so the logged
    split is balanced up to one user and a sample-ratio check is sharp.
    Users never assigned get 0 (they never see the booking form).
    """
    variant = np.zeros(len(assigned), dtype=np.int64)
    order = np.flatnonzero(assigned)
    order = order[np.argsort(assigned_at[order], kind="stable")]
    position = np.arange(len(order))
    pair_coin = coins[order[position - position % 2]] < 0.5  # the pair's first user flips
    variant[order] = np.where(position % 2 == 0, pair_coin, ~pair_coin)
    odd = len(order) % 2 == 1
    if odd:  # the last, unpaired user flips a coin of their own
        variant[order[-1]] = coins[order[-1]] < 0.5
    return variant


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
