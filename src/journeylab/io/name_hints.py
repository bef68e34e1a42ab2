"""The words ``journeylab init`` reads in column and event names.

Column names hint at a canonical role (``ts`` → ``timestamp``), event names at
a stage (``cart`` → purchase) and at the conversion (``purchase``, ``sign_up``);
:mod:`journeylab.io.infer` weighs these hints against what the values show.
"""

from __future__ import annotations

import re

_ROLE_NAMES = {
    "user_id": (
        "user_id",
        "userid",
        "user",
        "visitor_id",
        "visitor",
        "customer_id",
        "customer",
        "client_id",
        "cookie_id",
        "anonymous_id",
        "person_id",
        "uid",
        "id",
    ),
    "timestamp": (
        "timestamp",
        "ts",
        "event_time",
        "event_timestamp",
        "time",
        "datetime",
        "created_at",
        "occurred_at",
        "date",
        "event_date",
    ),
    "event": (
        "event",
        "event_name",
        "event_type",
        "action",
        "activity",
        "type",
        "name",
        "page",
        "step",
    ),
    "channel": (
        "channel",
        "source",
        "utm_source",
        "medium",
        "utm_medium",
        "traffic_source",
        "campaign_source",
        "marketing_channel",
    ),
    "value": ("value", "revenue", "amount", "price", "order_value", "total", "sales"),
    "session_id": ("session_id", "session", "sessionid", "visit_id"),
    "order_id": (
        "order_id",
        "invoice_no",
        "invoiceno",
        "invoice",
        "order",
        "transaction_id",
        "receipt",
        "basket_id",
    ),
    "quantity": ("quantity", "qty", "units", "count"),
    "price": ("unit_price", "unitprice", "price", "amount", "revenue", "sales", "total", "value"),
}
_STAGE_WORDS = (
    (
        "advocacy",
        (
            "review",
            "referral",
            "refer",
            "share",
            "rating",
            "rate",
            "nps",
            "recommend",
            "testimonial",
        ),
    ),
    (
        "retention",
        (
            "repeat",
            "renew",
            "reorder",
            "return_visit",
            "subscription_renew",
            "second_purchase",
            "reactivat",
            "retain",
            "loyalty",
        ),
    ),
    (
        "purchase",
        (
            "purchase",
            "order",
            "checkout",
            "cart",
            "payment",
            "pay",
            "booking",
            "book",
            "signup",
            "sign_up",
            "subscribe",
            "transaction",
            "conversion",
            "convert",
            "buy",
            "quote_accept",
            "job_completed",
            "complete",
        ),
    ),
    (
        "awareness",
        ("impression", "ad_", "_ad", "display", "banner", "email_sent", "sms_sent", "reach"),
    ),
    (
        "consideration",
        (
            "view",
            "visit",
            "search",
            "browse",
            "page",
            "session",
            "home",
            "landing",
            "click",
            "call",
            "open",
            "product",
            "quote",
            "compare",
            "wishlist",
            "login",
        ),
    ),
)
_CONVERSION_WORDS = (
    "purchase",
    "order_completed",
    "order_complete",
    "completed",
    "complete",
    "conversion",
    "booking",
    "checkout_complete",
    "signup",
    "sign_up",
    "subscribe",
    "order",
    "transaction",
)


def _name_score(name: str, role: str) -> int:
    key = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    words = _ROLE_NAMES[role]
    if key in words:
        return 100 - words.index(key)
    for i, word in enumerate(words):
        if len(word) > 2 and word in key:
            return 50 - i
    return 0


def _guess_stage(event: str) -> str:
    key = event.lower()
    for stage, words in _STAGE_WORDS:
        if any(word in key for word in words):
            return stage
    return "consideration"


_CONVERSION_WEIGHTS = {
    "purchase": 3,
    "signup": 3,
    "sign_up": 3,
    "conversion": 3,
    "order": 2,
    "booking": 2,
    "checkout": 2,
    "subscribe": 2,
    "transaction": 2,
    "buy": 2,
    "complete": 1,
    "paid": 1,
}
_NOT_CONVERSION = (
    "start",
    "begin",
    "abandon",
    "cancel",
    "fail",
    "repeat",
    "view",
    "click",
    "refund",
    "return",
)


def _guess_conversion(event_counts: list[tuple[str, int]]) -> tuple[str | None, str]:
    scored = []
    for rank, (event, n) in enumerate(event_counts):
        key = event.lower()
        if any(word in key for word in _NOT_CONVERSION):
            continue
        score = sum(w for word, w in _CONVERSION_WEIGHTS.items() if word in key)
        if score:
            scored.append((score, -rank, event, n))
    if not scored:
        return None, "no event is named like a purchase, order, booking or sign-up"
    score, _, event, n = max(scored)
    return event, f"its name reads like a conversion ({n:,} rows)"
