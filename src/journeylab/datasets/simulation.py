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

Here are the vocabulary, the planted parameters, the clock and the ragged-array
helpers both samples use; the journeys themselves are drawn by
:func:`journeylab.datasets.home_services_journeys.simulate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

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
