"""Seeded, realistic samples of two businesses' customer journeys.

``make_sample(vertical="home_services")`` (the default) is a home-services
company; ``make_sample(vertical="ecommerce")`` an online shop (see
:mod:`journeylab.datasets.ecommerce`) with its own events, channels, stages
and segment columns (``platform``, ``country`` instead of ``device``,
``region``), so that code which assumes one sample's names breaks visibly on
the other. Both return the same tables and a ``truth`` dict in the same style.

Home services
-------------

Customers find a plumber, electrician, cleaner ... online or by phone: they
see ads, visit the site from eight traffic sources, request quotes, call and
get called back, start and complete (or abandon) the booking form, have the
job done on site, book again, post reviews and refer friends, and answer
NPS/CSAT surveys in English or Korean. The company spends daily on paid
channels and runs one experiment (a shorter mobile booking form).

Known effects are planted in the data and returned in ``Sample.truth`` so an
analysis can be checked against the answer:

- ``mobile_form``: booking-form completion far lower on mobile than desktop;
- ``phone_response``: call-backs slower than 60 minutes lose customers;
- ``channel_effects`` / ``channel_incremental_conversions`` / ``channel_rank``:
  the true per-touch effect of each marketing channel (each ad impression or
  site visit from channel c multiplies the chance of *not* forming booking
  intent by ``1 - effect[c]``; intent then becomes a booking through the form
  or a call), the first bookings each channel causes (potential outcomes
  replayed with the same random numbers and the channel's touches removed)
  and their order. ``phone`` and ``onsite`` are offline touchpoints with no
  planted effect;
- ``experiment``: the short form's true lift on P(booked); ``uplift``: the
  lift and control rate per device (largest on mobile);
- ``inconvenient_timing``: booking forms opened outside the hours with free
  slots (Monday-Friday 07:00-19:00, America/New_York) complete far less;
- ``reviews_not_asked``: jobs by crews ``crew_c`` and ``crew_f`` rarely get
  a review (``crew`` is a column of the job rows);
- ``identities``: phone calls and call-backs are logged under a call-tracking
  phone hash (``ph_…``), jobs under a CRM id (``crm_…``);
- ``satisfaction``: the population NPS / mean CSAT per stage (dip at purchase);
- ``clv``: the BG/NBD (time unit: days) and Gamma-Gamma parameters of
  repeat purchases.

As in a real tracking log, about 0.9 % of event rows are exact duplicates or
repeats within one second (page views logged at whole seconds);
:func:`journeylab.io.loaders.load_events` removes and counts them.

E-commerce
----------
``android_payment`` (payment fails far more in the Android app),
``inconvenient_timing`` (carts filled while the delivery promise is slow,
Friday 15:00 to Sunday, reach checkout far less), ``experiment`` and
``uplift`` (local payment methods: large lift in NL and DE, small
elsewhere), channel incrementality by potential outcomes (affiliate is
over-credited by last touch), an NPS dip at retention (returns), BG/NBD
repeat orders, and newsletter opens logged under an e-mail hash (``em_…``).

Identities
----------
``Sample.events`` is resolved to persons; ``Sample.logged_events()`` is the
log as the touchpoints wrote it, and ``Sample.identities`` (``id``,
``user_id``) maps those ids onto persons. :func:`write_sample` writes the
logged events, and :func:`journeylab.reports.workspace.open_workspace` resolves them.

Write a sample to disk with::

    python -m journeylab.datasets.sample --out DIR [--vertical ecommerce] [--seed N] [--n-users N] [--format parquet|csv]
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import yaml

from journeylab.core.errors import ParameterError, check_in
from journeylab.core.stages import StageMap
from journeylab.core.timeparse import to_utc_timestamp
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
from journeylab.datasets.stage_maps import DEFAULT_STAGE_MAP, SAMPLE_STAGE_MAP, sample_stage_map

__all__ = [
    "sample_project",
    "Sample",
    "make_sample",
    "write_sample",
    "CHANNELS",
    "PAID_CHANNELS",
    "DEVICES",
    "PERSONAS",
    "REGIONS",
    "CREWS",
    "TABLES",
    "VERTICALS",
    "STAGES_FILE",
    "SAMPLE_STAGE_MAP",
    "DEFAULT_STAGE_MAP",
    "sample_stage_map",
]

#: The sample businesses :func:`make_sample` can generate.
VERTICALS = ("home_services", "ecommerce")
CHANNELS = sim.CHANNELS
PAID_CHANNELS = sim.PAID_CHANNELS
DEVICES = sim.DEVICES
PERSONAS = sim.PERSONAS
REGIONS = sim.REGIONS
CREWS = sim.CREWS
#: The tables of a sample, in the order they are written to disk.
TABLES = ("events", "users", "assignments", "feedback", "spend", "transactions", "identities")
#: The file of a data folder holding its stage map (written beside the tables).
STAGES_FILE = "stages.yaml"
#: Which touchpoints log people under an id of their own, in the home-services sample,
#: and the prefix of those ids (call-tracking phone-number hash, CRM customer number).
ALIAS_EVENTS = {"phone_call": "phone", "callback": "phone", "job_completed": "crm"}
ALIAS_PREFIXES = {"phone": "ph_", "crm": "crm_"}


@dataclass(eq=False)
class Sample:
    """The sample's tables, the effects planted in them and the stage map.

    Attributes
    ----------
    events : pandas.DataFrame
        Canonical event log: ``user_id``, ``timestamp`` (UTC), ``event``,
        ``channel``, ``value``, ``session_id``, ``device``, ``region``,
        ``response_minutes``; sorted by user, time, stage order, event name.
    users : pandas.DataFrame
        One row per user: ``user_id``, ``device``, ``region``,
        ``acquisition_channel``, ``persona``, ``first_seen``.
    assignments : pandas.DataFrame
        The experiment: ``user_id``, ``variant``, ``assigned_at``, ``device``,
        ``pre_sessions``, ``pre_revenue``.
    feedback : pandas.DataFrame
        Survey answers: ``user_id``, ``timestamp``, ``survey``, ``score``,
        ``text``, ``language``, ``stage``, ``touchpoint``.
    spend : pandas.DataFrame
        Daily cost per paid channel and campaign: ``channel``, ``date``,
        ``cost``, ``campaign``.
    transactions : pandas.DataFrame
        First and repeat bookings: ``user_id``, ``timestamp``, ``value``,
        ``order_id``, ``channel`` (the user's acquisition channel).
    identities : pandas.DataFrame
        ``id``, ``user_id``: every id the touchpoints log people under and
        the person it belongs to (each person's own id maps to itself).
        ``events`` are already resolved to persons; :meth:`logged_events`
        gives the log as it came in.
    truth : dict
        The effects planted in the data (see :mod:`journeylab.datasets.sample`).
    stage_map : journeylab.core.stages.StageMap
        The stage map of the event vocabulary.
    """

    events: pd.DataFrame
    users: pd.DataFrame
    assignments: pd.DataFrame
    feedback: pd.DataFrame
    spend: pd.DataFrame
    transactions: pd.DataFrame
    identities: pd.DataFrame
    truth: dict[str, Any]
    stage_map: StageMap = field(default_factory=lambda: sample_stage_map())

    def tables(self) -> dict[str, pd.DataFrame]:
        """Return the seven tables by name."""
        return {name: getattr(self, name) for name in TABLES}

    def logged_events(self) -> pd.DataFrame:
        """Return the event log as the touchpoints logged it, before identity resolution.

        Rows of the touchpoints listed in ``truth["identities"]["aliases"]``
        (home services: phone calls and call-backs under a call-tracking
        phone hash ``ph_…``, jobs on site under a CRM id ``crm_…``) carry the
        person's id of that kind from ``identities``; all other rows the
        person's own id. Rows stay in the order of :attr:`events`, so a
        person's web rows sit beside the rows logged under their other ids.
        :func:`write_sample` writes this log, and
        :func:`journeylab.reports.workspace.open_workspace` resolves it again, so
        analyses see :attr:`events`.

        Examples
        --------
        >>> s = make_sample(seed=7, n_users=500)
        >>> s.logged_events()["user_id"].str[:3].value_counts().index.tolist()
        ['u00', 'crm', 'ph_']
        >>> s.logged_events()["event"].equals(s.events["event"])
        True
        """
        events, ids = self.events, self.identities
        aliases = self.truth.get("identities", {}).get("aliases", {})
        person = events["user_id"].to_numpy(dtype=object)
        logged = person.copy()
        for prefix in sorted(set(aliases.values())):
            own = ids[ids["id"].str.startswith(prefix)]
            alias_of = pd.Series(own["id"].to_numpy(), index=own["user_id"].to_numpy())
            rows = events["event"].isin([e for e, p in aliases.items() if p == prefix]).to_numpy()
            mapped = alias_of.reindex(person[rows]).to_numpy(dtype=object)
            logged[rows] = np.where(pd.isna(mapped), person[rows], mapped)
        return events.assign(user_id=pd.Series(logged, index=events.index, dtype="str"))

    def summary(self) -> str:
        """Describe the sample: sizes, period and the headline planted effects."""
        ev = self.events
        t = self.truth
        if t.get("vertical") == "ecommerce":
            return self._shop_summary()
        lines = [
            f"Home-services sample (seed {t['seed']}): {len(self.users):,} users, {len(ev):,} events, "
            f"{ev['timestamp'].min():%Y-%m-%d} to {ev['timestamp'].max():%Y-%m-%d}.",
            f"Bookings: {int((ev['event'] == 'booking_completed').sum()):,} first, "
            f"{int((ev['event'] == 'repeat_booking').sum()):,} repeat; "
            f"{len(self.feedback):,} survey answers; spend {self.spend['cost'].sum():,.0f}.",
            "Mobile form completion "
            + ", ".join(f"{k} {v:.0%}" for k, v in t["mobile_form"]["completion_rate"].items())
            + f"; booking after a call: fast {t['phone_response']['booking_rate']['fast']:.0%}, "
            f"slow {t['phone_response']['booking_rate']['slow']:.0%}.",
            f"Experiment {t['experiment']['name']}: baseline {t['experiment']['baseline']:.1%}, "
            f"true lift {100 * t['experiment']['abs_lift']:+.2f} pp.",
            "Channel rank (incremental conversions): " + " > ".join(t["channel_rank"]) + ".",
        ]
        return "\n".join(lines)

    def _shop_summary(self) -> str:
        ev, t = self.events, self.truth
        pay = t["android_payment"]["completion_rate"]
        timing = t["inconvenient_timing"]["completion_rate"]
        lift = t["uplift"]["lift"]
        return "\n".join(
            [
                f"E-commerce sample (seed {t['seed']}): {len(self.users):,} users, {len(ev):,} events, "
                f"{ev['timestamp'].min():%Y-%m-%d} to {ev['timestamp'].max():%Y-%m-%d}.",
                f"Orders: {int((ev['event'] == 'purchase').sum()):,} first, "
                f"{int((ev['event'] == 'repeat_purchase').sum()):,} repeat; "
                f"{len(self.feedback):,} survey answers; spend {self.spend['cost'].sum():,.0f} "
                f"{t['currency']}.",
                "Payment success "
                + ", ".join(f"{k} {v:.0%}" for k, v in pay.items())
                + f"; carts to checkout: fast delivery promise {timing['inside']:.0%}, "
                f"slow (Fri 15:00-Sun) {timing['outside']:.0%}.",
                f"Experiment {t['experiment']['name']}: baseline {t['experiment']['baseline']:.1%}, "
                f"true lift {100 * t['experiment']['abs_lift']:+.2f} pp "
                "(" + ", ".join(f"{k} {100 * v:+.1f}" for k, v in lift.items()) + ").",
                "Channel rank (incremental conversions): " + " > ".join(t["channel_rank"]) + ".",
            ]
        )

    def __repr__(self) -> str:
        return f"Sample({len(self.users)} users, {len(self.events)} events)"

    def _repr_html_(self) -> str:
        sizes = pd.DataFrame(
            {
                "table": list(TABLES),
                "rows": [len(getattr(self, name)) for name in TABLES],
                "columns": [", ".join(getattr(self, name).columns) for name in TABLES],
            }
        )
        text = "".join(f"<p>{html.escape(line)}</p>" for line in self.summary().splitlines())
        return f"<h4>Sample</h4>{text}" + sizes.to_html(index=False, border=0)


def make_sample(
    seed: int = 2026,
    n_users: int = 20_000,
    start: str | pd.Timestamp = "2026-05-01",
    months: int = 6,
    broken_split: bool = False,
    vertical: Literal["home_services", "ecommerce"] = "home_services",
) -> Sample:
    """Generate a seeded sample business with known planted effects.

    Parameters
    ----------
    seed : int
        Seed of the random streams (children of one ``numpy.random.SeedSequence``);
        the same seed gives identical tables.
    n_users : int
        Number of people (about 24 events each); the cost grows linearly.
    start : str or Timestamp
        First day of the window (UTC).
    months : int
        Length of the window in calendar months (at least 1; default 6).
    broken_split : bool
        Simulate a logging bug that loses about 6 % of the treatment arm's
        assignment rows (the designed split stays 50/50), so a sample-ratio
        check flags it.
    vertical : {"home_services", "ecommerce"}
        The business: a home-services company (bookings by web form and
        phone, jobs on site; segments ``device``, ``region``, ``crew``) or an
        online shop (carts, checkout and payment; segments ``platform``,
        ``country``). They share no segment column and, of their events,
        only ``ad_impression``.

    Returns
    -------
    Sample
        Tables ``events``, ``users``, ``assignments``, ``feedback``, ``spend``,
        ``transactions``, ``identities``, the ``truth`` dict and the
        ``stage_map``. ``events`` are resolved to persons; some touchpoints
        log people under ids of their own (``identities``), and
        :meth:`Sample.logged_events` returns the log as they wrote it.

    Examples
    --------
    >>> s = make_sample(seed=7, n_users=2_000)
    >>> sorted(s.events["event"].unique())[:3]
    ['ad_impression', 'booking_completed', 'booking_started']
    >>> s.truth["experiment"]["treatment"]
    'short_form'
    >>> shop = make_sample(seed=7, n_users=2_000, vertical="ecommerce")
    >>> shop.truth["uplift"]["dimension"]
    'country'
    """
    seed, n_users, start_ts, end_ts = _check_arguments(
        seed=seed, n_users=n_users, start=start, months=months, broken_split=broken_split
    )
    check_in("vertical", vertical, list(VERTICALS))
    if vertical == "ecommerce":
        from journeylab.datasets.ecommerce import make_ecommerce

        return Sample(**make_ecommerce(seed, n_users, start_ts, end_ts, bool(broken_split)))
    return _home_services(seed, n_users, start_ts, end_ts, broken_split=bool(broken_split))


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
    run = sim.simulate(seed, n_users, cal)
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


# -- arguments --------------------------------------------------------------------
def _check_arguments(*, seed, n_users, start, months, broken_split):
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed == {seed!r}, must be a non-negative integer.")
    if isinstance(n_users, bool) or not isinstance(n_users, (int, np.integer)) or n_users < 1:
        raise ParameterError(f"n_users == {n_users!r}, must be a positive integer.")
    if isinstance(months, bool) or not isinstance(months, (int, np.integer)) or months < 1:
        raise ParameterError(f"months == {months!r}, must be an integer >= 1.")
    if not isinstance(broken_split, (bool, np.bool_)):
        raise ParameterError(f"broken_split == {broken_split!r}, must be True or False.")
    start_ts = to_utc_timestamp(start, "start")
    end_ts = start_ts + pd.DateOffset(months=int(months))
    return int(seed), int(n_users), start_ts, end_ts


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


# -- writing to disk ------------------------------------------------------------------
def write_sample(
    sample: Sample, out: str | Path, fmt: Literal["parquet", "csv"] = "parquet"
) -> dict[str, Path]:
    """Write the seven tables, ``truth.json`` and the stage map (``stages.yaml``) to a folder, as a company would hold them.

    The events are written as logged (:meth:`Sample.logged_events`: phone
    calls, jobs ... under the ids of their own touchpoints), beside the
    ``identities`` table that maps those ids onto persons;
    :func:`journeylab.reports.workspace.open_workspace` resolves them on reading
    and reads ``stages.yaml`` from a data folder, so the written sample is
    analysed with its own map.

    Parameters
    ----------
    sample : Sample
        The sample to write.
    out : str or Path
        Target folder (created if needed).
    fmt : {"parquet", "csv"}
        File format of the tables.

    Returns
    -------
    dict
        Path of each written file by table name (plus ``"truth"`` and ``"stages"``).

    Examples
    --------
    >>> paths = write_sample(make_sample(n_users=500), "/tmp/journeylab-sample", fmt="csv")
    """
    check_in("fmt", fmt, ["parquet", "csv"])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, frame in sample.tables().items():
        if name == "events":
            frame = sample.logged_events()
        path = out / f"{name}.{fmt}"
        tmp = path.with_suffix(path.suffix + ".tmp")
        if fmt == "parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(
                tmp,
                index=False,
                date_format="%Y-%m-%dT%H:%M:%S%z" if name != "spend" else "%Y-%m-%d",
            )
        tmp.replace(path)
        paths[name] = path
    truth_path = out / "truth.json"
    truth_path.write_text(
        json.dumps(sample.truth, indent=2, ensure_ascii=False, default=_json_default),
        encoding="utf-8",
    )
    paths["truth"] = truth_path
    stages_path = out / STAGES_FILE
    stages_path.write_text(
        yaml.safe_dump(sample.stage_map.to_dict(), sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    paths["stages"] = stages_path
    return paths


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m journeylab.datasets.sample --out DIR``."""
    parser = argparse.ArgumentParser(
        prog="python -m journeylab.datasets.sample",
        description="Write a seeded sample (seven tables, truth.json, stages.yaml) to a folder.",
    )
    parser.add_argument(
        "--vertical",
        choices=list(VERTICALS),
        default="home_services",
        help="the sample business (default home_services)",
    )
    parser.add_argument("--out", required=True, help="folder to write into (created if needed)")
    parser.add_argument("--seed", type=int, default=2026, help="random seed (default 2026)")
    parser.add_argument(
        "--n-users", type=int, default=20_000, help="number of users (default 20000)"
    )
    parser.add_argument("--start", default="2026-05-01", help="first day, UTC (default 2026-05-01)")
    parser.add_argument("--months", type=int, default=6, help="length in months (default 6)")
    parser.add_argument(
        "--format", choices=["parquet", "csv"], default="parquet", help="file format"
    )
    parser.add_argument(
        "--broken-split", action="store_true", help="lose ~6%% of treatment assignment rows"
    )
    args = parser.parse_args(argv)
    try:
        sample = make_sample(
            seed=args.seed,
            n_users=args.n_users,
            start=args.start,
            months=args.months,
            broken_split=args.broken_split,
            vertical=args.vertical,
        )
    except ParameterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    paths = write_sample(sample, args.out, fmt=args.format)
    print(sample.summary())
    for name, path in paths.items():
        print(f"wrote {name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


#: The verticals the generator knows, each with its project file (package data).
PROJECT_FILES = {"home_services": "home_services.yaml", "ecommerce": "ecommerce.yaml"}


def sample_project(vertical: str = "home_services"):
    """Return the bundled sample's project file (a :class:`journeylab.core.project.Project`).

    Examples
    --------
    >>> sample_project().conversion
    ('booking_completed',)
    """
    from importlib import resources

    from journeylab.core.project import load_project

    check_in("vertical", vertical, list(PROJECT_FILES))
    path = resources.files("journeylab.datasets").joinpath(PROJECT_FILES[vertical])
    return load_project(Path(str(path)))
