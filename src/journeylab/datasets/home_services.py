"""The home-services sample: its tables simulated, and the planted effects measured back into ``truth``.

The story and the effects are described in :mod:`journeylab.datasets.sample`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from journeylab.datasets import feedback as fb
from journeylab.datasets import simulation as sim
from journeylab.datasets.events import assemble
from journeylab.datasets.frames import (
    assignments_frame,
    canonical_order,
    events_frame,
    feedback_frame,
    hashed_ids,
    id_sources,
    identities_frame,
    identity_truth,
    ids,
    numbered_ids,
    spend_frame,
    transactions_frame,
    uplift_truth,
    users_frame,
)
from journeylab.datasets.home_services_journeys import simulate
from journeylab.datasets.sample_bundle import Sample
from journeylab.datasets.stage_maps import sample_stage_map

#: Which touchpoints log people under an id of their own, in the home-services sample,
#: and the prefix of those ids (call-tracking phone-number hash, CRM customer number).
ALIAS_EVENTS = {"phone_call": "phone", "callback": "phone", "job_completed": "crm"}
ALIAS_PREFIXES = {"phone": "ph_", "crm": "crm_"}


def _home_services(seed, n_users, start_ts, end_ts, *, broken_split) -> Sample:
    horizon = (end_ts - start_ts) / pd.Timedelta(hours=1)
    cal = sim.Calendar.build(
        start_hour_of_week=start_ts.day_of_week * 24 + start_ts.hour + start_ts.minute / 60,
        start_day_of_year=start_ts.day_of_year,
        horizon=horizon,
    ).localize(start_ts, sim.TIMEZONE)
    r_feedback, r_spend, r_split = (
        np.random.default_rng(s) for s in np.random.SeedSequence([seed, 1]).spawn(3)
    )
    r_ids = np.random.default_rng(np.random.SeedSequence([seed, 3]))
    run = simulate(seed, n_users, cal)
    u, raw = run.users, assemble(run)
    run.journeys = {}  # free the touch arrays before the tables are built
    order = canonical_order(raw)
    ev = {k: raw.pop(k)[order] for k in list(raw)}  # sorted copies replace the raw arrays
    del raw, order
    width = max(7, len(str(n_users - 1)))  # "u0000123"; wider only past ten million users
    user_ids = pa.array(ids("u", np.arange(n_users), width), pa.large_string())

    users = users_frame(ev, u, user_ids, start_ts, n_users)
    assignments, lost = assignments_frame(u, user_ids, start_ts, broken_split, r_split)
    f = fb.simulate_feedback(
        r_feedback, ev["user"], ev["time"], ev["event"], u["service"], u["korean"], horizon
    )
    feedback = feedback_frame(f, user_ids, start_ts)
    spend = spend_frame(ev, r_spend, start_ts, end_ts, n_users)
    transactions = transactions_frame(ev, users, user_ids, start_ts)
    # phone calls and jobs are logged under call-tracking and CRM ids of their own
    aliases = {
        "phone": hashed_ids(r_ids, ALIAS_PREFIXES["phone"], n_users),
        "crm": numbered_ids(r_ids, ALIAS_PREFIXES["crm"], n_users, width),
    }
    src = id_sources(ev["event"], sim.EVENTS, ALIAS_EVENTS)
    identities = identities_frame(user_ids, aliases, src, ev["user"])
    truth = _truth(
        run,
        seed=seed,
        n_users=n_users,
        start_ts=start_ts,
        end_ts=end_ts,
        broken_split=broken_split,
        lost=lost,
    )
    truth["identities"] = identity_truth(src, ev["user"], identities, ALIAS_PREFIXES, ALIAS_EVENTS)
    events = events_frame(ev, u, user_ids, start_ts)
    return Sample(
        events,
        users,
        assignments,
        feedback,
        spend,
        transactions,
        identities,
        truth,
        sample_stage_map(),
    )


# -- truth ------------------------------------------------------------------------
def _truth(run, *, seed, n_users, start_ts, end_ts, broken_split, lost) -> dict[str, Any]:
    t = run.truth
    incremental = {ch: int(v) for ch, v in t["incremental"].items()}
    rank = sorted(incremental, key=lambda ch: (-incremental[ch], ch))
    share = 0.5  # designed split
    completion = {
        device: round(
            float((1 - share) * sim.FORM_COMPLETION[0, k] + share * sim.FORM_COMPLETION[1, k]), 4
        )
        for k, device in enumerate(sim.DEVICES)
    }
    by_variant = {
        variant: {device: float(sim.FORM_COMPLETION[v, k]) for k, device in enumerate(sim.DEVICES)}
        for v, variant in enumerate(sim.VARIANTS)
    }
    p0, p1 = t["p0"], t["p1"]
    baseline = float(p0.mean()) if len(p0) else float("nan")
    abs_lift = float((p1 - p0).mean()) if len(p0) else float("nan")
    device = run.users["device"]
    device_assigned = device[run.users["assigned"]]
    timing = t["timing"]
    outside_hours = [h for h in range(24) if not sim.SLOT_HOURS[0] <= h < sim.SLOT_HOURS[1]]
    buyers = np.flatnonzero(t["booked"])
    happy = np.where(device[buyers] == 0, sim.HAPPY_RATE["mobile"], sim.HAPPY_RATE["other"])
    review_rate = (
        float(np.mean(happy * sim.REVIEW_RATE["happy"] + (1 - happy) * sim.REVIEW_RATE["other"]))
        if len(buyers)
        else float("nan")
    )
    return {
        "vertical": "home_services",
        "timezone": sim.TIMEZONE,
        "seed": seed,
        "n_users": n_users,
        "start": start_ts.isoformat(),
        "end": end_ts.isoformat(),
        "channels": list(sim.CHANNELS),
        "offline_channels": ["phone", "onsite"],
        "channel_effects": dict(sim.CHANNEL_EFFECTS),
        "channel_incremental_conversions": incremental,
        "channel_rank": rank,
        "conversions": int(t["booked"].sum()),
        "mobile_form": {
            "step": ("booking_started", "booking_completed"),
            "completion_rate": completion,
            "completion_rate_by_variant": by_variant,
        },
        "phone_response": {
            "slow_minutes": int(sim.SLOW_MINUTES),
            "booking_rate": dict(sim.BOOK_AFTER_CALL),
        },
        "experiment": {
            "name": "short_mobile_form",
            "control": "control",
            "treatment": "short_form",
            "metric": "booked",
            "split": {"control": 0.5, "short_form": 0.5},
            "baseline": round(baseline, 5),
            "abs_lift": round(abs_lift, 5),
            "rel_lift": round(abs_lift / baseline, 5) if baseline else float("nan"),
            "n_assigned": len(p0),
            "broken_split": bool(broken_split),
            "lost_assignment_rows": lost,
        },
        "uplift": uplift_truth("short_mobile_form", "device", sim.DEVICES, device_assigned, p0, p1),
        "inconvenient_timing": {
            "step": ("booking_started", "booking_completed"),
            "timezone": sim.TIMEZONE,
            "dimension": ("hour_of_day", "day_of_week"),
            "segments": {
                "hour_of_day": outside_hours,
                "day_of_week": [_DAY_NAMES[d] for d in range(7) if d not in sim.SLOT_DAYS],
            },
            "slot_hours": {
                "days": [_DAY_NAMES[d] for d in sim.SLOT_DAYS],
                "hours": list(sim.SLOT_HOURS),
            },
            "completion_rate": {
                "inside": round(timing["rate_inside"], 4),
                "outside": round(timing["rate_outside"], 4),
            },
            "factor": {
                "inside": round(timing["inside"], 4),
                "outside": round(timing["outside"], 4),
            },
            "outside_share": round(timing["outside_share"], 4),
            "note": (
                "Form completion is multiplied by factor['inside'] when the form is opened in the "
                "slot hours (local time, days x [start, end) hours) and by factor['outside'] "
                "otherwise; completion_rate is the mean planted probability of the forms started "
                "in each group. Hours 7-18 on weekend days are outside too."
            ),
        },
        "reviews_not_asked": {
            "step": ("job_completed", "review_posted"),
            "dimension": "crew",
            "segments": list(sim.RARELY_ASK),
            "crew_share": {c: float(w) for c, w in zip(sim.CREWS, sim.CREW_SHARES, strict=True)},
            "ask_factor": {c: round(float(a), 4) for c, a in zip(sim.CREWS, sim.CREW_ASK, strict=True)},
            "review_rate": {
                c: round(float(a) * review_rate, 4)
                for c, a in zip(sim.CREWS, sim.CREW_ASK, strict=True)
            },
            "window_hours": [6, 240],
            "note": (
                "P(review | first job by crew c) = review_rate[c]: the customer's review probability "
                "(0.24 if satisfied, else 0.08) times ask_factor[c], averaged over the customers' "
                "devices. Reviews come 6-240 hours after the job; repeat jobs are never reviewed."
            ),
        },
        "satisfaction": fb.expected_satisfaction(),
        "clv": {**sim.CLV, "time_unit": "days", "note": (
            "BG/NBD: purchase rate lambda ~ Gamma(r, alpha) per day, dropout p ~ Beta(a, b) after each "
            "repeat purchase, from the first booking to the end of the window. Gamma-Gamma: repeat "
            "booking values ~ Gamma(p, nu), nu ~ Gamma(q, v); first bookings are lognormal by service."
        )},
    }  # fmt: skip


_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
