"""The e-commerce sample's shop: its vocabulary, its planted parameters and its stage map.

Events, channels, platforms, countries and shopper types; the channel effects,
rates and delivery promise the simulation
(:mod:`journeylab.datasets.ecommerce_simulation`) plants and the tests recover.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from journeylab.core.stages import StageMap
from journeylab.datasets.simulation import Calendar

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
