"""A seeded, realistic sample of a home-services company's customer journeys.

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
- ``experiment``: the short form's true lift on P(booked);
- ``satisfaction``: the population NPS / mean CSAT per stage (dip at purchase);
- ``clv``: the BG/NBD (time unit: days) and Gamma-Gamma parameters of
  repeat purchases.

As in a real tracking log, about 0.9 % of event rows are exact duplicates or
repeats within one second (page views logged at whole seconds);
:func:`journeylab.io.loaders.load_events` removes and counts them.

Write the sample to disk with::

    python -m journeylab.datasets.sample --out DIR [--seed N] [--n-users N] [--format parquet|csv]
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
from journeylab.datasets import feedback as fb
from journeylab.datasets import simulation as sim
from journeylab.datasets.events import assemble
from journeylab.datasets.frames import (
    assignments_frame,
    canonical_order,
    events_frame,
    feedback_frame,
    ids,
    spend_frame,
    transactions_frame,
    users_frame,
)

__all__ = [
    "Sample",
    "make_sample",
    "write_sample",
    "CHANNELS",
    "PAID_CHANNELS",
    "DEVICES",
    "PERSONAS",
    "REGIONS",
    "TABLES",
    "STAGES_FILE",
    "SAMPLE_STAGE_MAP",
    "DEFAULT_STAGE_MAP",
    "sample_stage_map",
]

CHANNELS = sim.CHANNELS
PAID_CHANNELS = sim.PAID_CHANNELS
DEVICES = sim.DEVICES
PERSONAS = sim.PERSONAS
REGIONS = sim.REGIONS
#: The tables of a sample, in the order they are written to disk.
TABLES = ("events", "users", "assignments", "feedback", "spend", "transactions")
#: The file of a data folder holding its stage map (written beside the tables).
STAGES_FILE = "stages.yaml"


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
            "events": ["site_visit", "service_page_view", "quote_request", "phone_call", "callback"],
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
                {"name": "booking_completions", "events": ["booking_completed"], "measure": "count"},
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
    truth: dict[str, Any]
    stage_map: StageMap = field(default_factory=lambda: sample_stage_map())

    def tables(self) -> dict[str, pd.DataFrame]:
        """Return the six tables by name."""
        return {name: getattr(self, name) for name in TABLES}

    def summary(self) -> str:
        """Describe the sample: sizes, period and the headline planted effects."""
        ev = self.events
        t = self.truth
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
) -> Sample:
    """Generate the seeded home-services sample with known planted effects.

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

    Returns
    -------
    Sample
        Tables ``events``, ``users``, ``assignments``, ``feedback``, ``spend``,
        ``transactions``, the ``truth`` dict and the ``stage_map``.

    Examples
    --------
    >>> s = make_sample(seed=7, n_users=2_000)
    >>> sorted(s.events["event"].unique())[:3]
    ['ad_impression', 'booking_completed', 'booking_started']
    >>> s.truth["experiment"]["treatment"]
    'short_form'
    """
    seed, n_users, start_ts, end_ts = _check_arguments(seed, n_users, start, months, broken_split)
    horizon = (end_ts - start_ts) / pd.Timedelta(hours=1)
    cal = sim.Calendar.build(
        start_hour_of_week=start_ts.day_of_week * 24 + start_ts.hour + start_ts.minute / 60,
        start_day_of_year=start_ts.day_of_year,
        horizon=horizon,
    )
    r_feedback, r_spend, r_split = (
        np.random.default_rng(s) for s in np.random.SeedSequence([seed, 1]).spawn(3)
    )
    run = sim.simulate(seed, n_users, cal)
    u, raw = run.users, assemble(run)
    run.journeys = {}  # free the touch arrays before the tables are built
    order = canonical_order(raw)
    ev = {k: raw.pop(k)[order] for k in list(raw)}  # sorted copies replace the raw arrays
    del raw, order
    width = max(7, len(str(n_users - 1)))  # "u0000123"; wider only past ten million users
    user_ids = pa.array(ids("u", np.arange(n_users), width), pa.large_string())

    events = events_frame(ev, u, user_ids, start_ts)
    users = users_frame(ev, u, user_ids, start_ts, n_users)
    assignments, lost = assignments_frame(u, user_ids, start_ts, broken_split, r_split)
    f = fb.simulate_feedback(
        r_feedback, ev["user"], ev["time"], ev["event"], u["service"], u["korean"], horizon
    )
    feedback = feedback_frame(f, user_ids, start_ts)
    spend = spend_frame(ev, r_spend, start_ts, end_ts, n_users)
    transactions = transactions_frame(ev, users, user_ids, start_ts)
    truth = _truth(run, seed, n_users, start_ts, end_ts, broken_split, lost)
    return Sample(
        events, users, assignments, feedback, spend, transactions, truth, sample_stage_map()
    )


# -- arguments --------------------------------------------------------------------
def _check_arguments(seed, n_users, start, months, broken_split):
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed == {seed!r}, must be a non-negative integer.")
    if isinstance(n_users, bool) or not isinstance(n_users, (int, np.integer)) or n_users < 1:
        raise ParameterError(f"n_users == {n_users!r}, must be a positive integer.")
    if isinstance(months, bool) or not isinstance(months, (int, np.integer)) or months < 1:
        raise ParameterError(f"months == {months!r}, must be an integer >= 1.")
    if not isinstance(broken_split, (bool, np.bool_)):
        raise ParameterError(f"broken_split == {broken_split!r}, must be True or False.")
    try:
        start_ts = pd.Timestamp(start)
    except (ValueError, TypeError) as exc:
        raise ParameterError(f"start == {start!r}, must be a date such as '2026-05-01'.") from exc
    start_ts = (
        start_ts.tz_localize("UTC") if start_ts.tzinfo is None else start_ts.tz_convert("UTC")
    )
    end_ts = start_ts + pd.DateOffset(months=int(months))
    return int(seed), int(n_users), start_ts, end_ts


# -- truth ------------------------------------------------------------------------
def _truth(run, seed, n_users, start_ts, end_ts, broken_split, lost) -> dict[str, Any]:
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
    return {
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
        "satisfaction": fb.expected_satisfaction(),
        "clv": {**sim.CLV, "time_unit": "days", "note": (
            "BG/NBD: purchase rate lambda ~ Gamma(r, alpha) per day, dropout p ~ Beta(a, b) after each "
            "repeat purchase, from the first booking to the end of the window. Gamma-Gamma: repeat "
            "booking values ~ Gamma(p, nu), nu ~ Gamma(q, v); first bookings are lognormal by service."
        )},
    }  # fmt: skip


# -- writing to disk ------------------------------------------------------------------
def write_sample(
    sample: Sample, out: str | Path, fmt: Literal["parquet", "csv"] = "parquet"
) -> dict[str, Path]:
    """Write the six tables, ``truth.json`` and the stage map (``stages.yaml``) to a folder.

    :func:`journeylab.reports.workspace.open_workspace` reads ``stages.yaml``
    from a data folder, so the written sample is analysed with its own map.

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
        yaml.safe_dump(sample.stage_map.to_dict(), sort_keys=False, allow_unicode=True), encoding="utf-8"
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
        description="Write the seeded home-services sample (six tables, truth.json, stages.yaml) to a folder.",
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
