"""The stage map of the home-services sample: its events in journey stages.

The library has no default stage map (every company names its own events);
the sample generator keeps its own here, so that :mod:`journeylab.datasets.sample`
and :mod:`journeylab.datasets.frames` (the canonical event order) share it
without importing each other.
"""

from __future__ import annotations

from typing import Any

from journeylab.core.stages import StageMap

__all__ = ["SAMPLE_STAGE_MAP", "DEFAULT_STAGE_MAP", "sample_stage_map"]

#: The stage map of the sample's home-services vocabulary (YAML form).
SAMPLE_STAGE_MAP: dict[str, Any] = {
    "stages": [
        {
            "name": "awareness",
            "description": "Ads seen: paid search, social and display impressions.",
            "events": ["ad_impression"],
            "kpis": [
                {"name": "impressions", "events": ["ad_impression"], "measure": "count"},
                {"name": "reach", "events": ["ad_impression"], "measure": "users"},
            ],
        },
        {
            "name": "consideration",
            "description": "Site sessions, service pages, quote requests, phone calls and call-backs.",
            "events": [
                "site_visit",
                "service_page_view",
                "quote_request",
                "phone_call",
                "callback",
            ],
            "kpis": [
                {"name": "sessions", "events": ["site_visit"], "measure": "count"},
                {"name": "visitors", "events": ["site_visit"], "measure": "users"},
                {"name": "phone_calls", "events": ["phone_call"], "measure": "count"},
                {"name": "quote_requests", "events": ["quote_request"], "measure": "count"},
            ],
        },
        {
            "name": "purchase",
            "description": "Booking form entries and completions, and jobs done on site.",
            "events": ["booking_started", "booking_completed", "job_completed"],
            "kpis": [
                {"name": "booking_entries", "events": ["booking_started"], "measure": "count"},
                {
                    "name": "booking_completions",
                    "events": ["booking_completed"],
                    "measure": "count",
                },
                {"name": "booked_jobs", "events": ["job_completed"], "measure": "count"},
                {"name": "revenue", "events": ["booking_completed"], "measure": "value"},
            ],
        },
        {
            "name": "retention",
            "description": "Customers who book again.",
            "events": ["repeat_booking"],
            "kpis": [
                {"name": "repeat_customers", "events": ["repeat_booking"], "measure": "users"},
                {"name": "repeat_revenue", "events": ["repeat_booking"], "measure": "value"},
            ],
        },
        {
            "name": "advocacy",
            "description": "Reviews and referrals.",
            "events": ["review_posted", "referral_sent"],
            "kpis": [
                {"name": "reviews", "events": ["review_posted"], "measure": "count"},
                {"name": "referrals", "events": ["referral_sent"], "measure": "count"},
            ],
        },
    ]
}


#: The name the sample's map had when it was the library default.
DEFAULT_STAGE_MAP = SAMPLE_STAGE_MAP


def sample_stage_map() -> StageMap:
    """Return the stage map of the sample's home-services events.

    The library has no default stage map; pass this one when analysing the
    sample (or a copy of its tables).

    Examples
    --------
    >>> sample_stage_map().names
    ['awareness', 'consideration', 'purchase', 'retention', 'advocacy']
    """
    return StageMap.from_dict(SAMPLE_STAGE_MAP, source="sample stage map")
