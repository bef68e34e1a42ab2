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
  the true incremental effect of each marketing channel, the conversions each
  one causes (potential outcomes replayed with the same random numbers and
  the channel's touches removed) and their order;
- ``experiment``: the short form's true lift on P(booked);
- ``satisfaction``: the population NPS / mean CSAT per stage (dip at purchase);
- ``clv``: the BG/NBD (time unit: days) and Gamma-Gamma parameters of
  repeat purchases.

Write the sample to disk with::

    python -m journeylab.datasets --out DIR [--seed N] [--n-users N] [--format parquet|csv]
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

from journeylab import _sample_feedback as fb
from journeylab import _sample_journeys as sim
from journeylab.schema import ParameterError, check_in
from journeylab.stages import StageMap, default_stage_map

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
]

CHANNELS = sim.CHANNELS
PAID_CHANNELS = sim.PAID_CHANNELS
DEVICES = sim.DEVICES
PERSONAS = sim.PERSONAS
REGIONS = sim.REGIONS
#: The tables of a sample, in the order they are written to disk.
TABLES = ("events", "users", "assignments", "feedback", "spend", "transactions")

#: Campaigns per paid channel and their share of the channel's daily cost.
CAMPAIGNS = {
    "paid_search": {
        "search_brand": 0.25,
        "search_emergency_repairs": 0.45,
        "search_home_services": 0.30,
    },
    "social": {"social_prospecting": 0.6, "social_retargeting": 0.4},
    "display": {"display_prospecting": 0.7, "display_retargeting": 0.3},
    "email": {"email_newsletter": 0.5, "email_reactivation": 0.5},
    "sms": {"sms_reminders": 0.4, "sms_promotions": 0.6},
}
# Cost per site session (a click or a send that was opened) and per ad
# impression (currency units), and a daily fixed fee per 20,000 users
# (platform fees, creative, tooling). Search impressions are free: search is
# paid per click.
_COST_PER_SESSION = {"paid_search": 12.0, "social": 3.0, "display": 2.5, "email": 0.4, "sms": 0.9}
_COST_PER_IMPRESSION = {
    "paid_search": 0.0,
    "social": 0.01,
    "display": 0.006,
    "email": 0.0,
    "sms": 0.0,
}
_DAILY_FEE = {"paid_search": 150.0, "social": 80.0, "display": 60.0, "email": 40.0, "sms": 30.0}


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
        The effects planted in the data (see :mod:`journeylab.datasets`).
    stage_map : journeylab.stages.StageMap
        The stage map of the event vocabulary.
    """

    events: pd.DataFrame
    users: pd.DataFrame
    assignments: pd.DataFrame
    feedback: pd.DataFrame
    spend: pd.DataFrame
    transactions: pd.DataFrame
    truth: dict[str, Any]
    stage_map: StageMap = field(default_factory=default_stage_map)

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
        Seed of the one random generator; the same seed gives identical tables.
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
    u, raw = run.users, run.events
    run.events = {}  # the sorted copy below replaces the raw arrays
    order = _canonical_order(raw)
    ev = {k: raw.pop(k)[order] for k in list(raw) if k != "customers"}
    del raw, order
    user_ids = pa.array(_ids("u", np.arange(n_users), 7), pa.large_string())

    events = _events_frame(ev, u, user_ids, start_ts)
    users = _users_frame(ev, u, user_ids, start_ts, n_users)
    assignments, lost = _assignments_frame(u, user_ids, start_ts, broken_split, r_split)
    f = fb.simulate_feedback(
        r_feedback, ev["user"], ev["time"], ev["event"], u["service"], u["korean"], horizon
    )
    feedback = _feedback_frame(f, user_ids, start_ts)
    spend = _spend_frame(ev, r_spend, start_ts, end_ts, n_users)
    transactions = _transactions_frame(ev, users, user_ids, start_ts)
    truth = _truth(run, seed, n_users, start_ts, end_ts, broken_split, lost)
    return Sample(
        events, users, assignments, feedback, spend, transactions, truth, default_stage_map()
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


# -- frames -----------------------------------------------------------------------
def _canonical_order(ev: dict[str, np.ndarray]) -> np.ndarray:
    """Sort by user, second, stage-map order of the event, then event name."""
    stage_map = default_stage_map()
    names = sim.EVENTS
    rank = sorted(
        range(len(names)), key=lambda c: (stage_map.index(stage_map.stage_of(names[c])), names[c])
    )
    event_rank = np.empty(len(names), dtype=np.int64)
    event_rank[rank] = np.arange(len(rank))
    seconds = np.round(ev["time"] * 3600.0).astype(np.int64)  # whole seconds, as logs record them
    ev["time"] = seconds / 3600.0
    time_bits = max(int(seconds.max(initial=0)).bit_length(), 1)
    if int(ev["user"].max(initial=0)).bit_length() + time_bits + 4 < 63:
        key = (
            (ev["user"].astype(np.int64) << (time_bits + 4))
            | (seconds << 4)
            | event_rank[ev["event"]]
        )
        return np.argsort(key, kind="stable")
    return np.lexsort((event_rank[ev["event"]], seconds, ev["user"]))


def _ids(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    """Make identifiers such as ``u0000123`` (zero-padded, so they sort like the numbers)."""
    if len(numbers) == 0:
        return np.array([], dtype=str)
    return np.char.add(prefix, np.char.zfill(numbers.astype(str), width))


def _labels(codes: np.ndarray, labels: Sequence[str]) -> pd.Series:
    """Turn integer codes into a str Series of labels (negative codes become missing)."""
    codes = np.asarray(codes)
    mask = codes < 0
    indices = pa.array(np.where(mask, 0, codes).astype(np.int32), mask=mask if mask.any() else None)
    return pd.Series(pa.array(list(labels), pa.large_string()).take(indices), dtype="str")


def _fixed_width(table: np.ndarray, rows: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Arrow strings from a (k, width) byte table of equal-length identifiers."""
    width = table.shape[1]
    data = table[rows].ravel()
    if valid is None:
        offsets = np.arange(len(rows) + 1, dtype=np.int64) * width
        return pa.LargeStringArray.from_buffers(
            len(rows), pa.py_buffer(offsets), pa.py_buffer(data)
        )
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(np.where(valid, width, 0), out=offsets[1:])
    data = data.reshape(-1, width)[valid].ravel()
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.LargeStringArray.from_buffers(
        len(rows), pa.py_buffer(offsets), pa.py_buffer(data), bitmap
    )


def _byte_table(strings: np.ndarray) -> np.ndarray:
    """(k, width) uint8 table of equal-length ASCII strings."""
    width = len(strings[0]) if len(strings) else 1
    return np.frombuffer("".join(strings).encode("ascii"), dtype=np.uint8).reshape(-1, width)


def _timestamps(hours: np.ndarray, start_ts: pd.Timestamp) -> pd.Series:
    hours = np.asarray(hours, dtype=float)
    missing = np.isnan(hours)
    ns = np.round(np.where(missing, 0.0, hours) * 3600.0).astype(np.int64) * 1_000_000_000
    values = np.where(missing, np.iinfo(np.int64).min, ns + start_ts.as_unit("ns").value)
    return pd.Series(pd.DatetimeIndex(values.view("datetime64[ns]")).tz_localize("UTC"))


def _events_frame(ev, u, user_ids, start_ts) -> pd.DataFrame:
    user = ev["user"]
    sess = ev["sess"]
    # ids are fixed width: build the bytes directly (fast for millions of rows)
    id_bytes = _byte_table(user_ids.to_numpy(zero_copy_only=False))
    top = max(int(sess.max(initial=0)), 1)
    width = max(2, len(str(top)))
    suffix = _byte_table(np.array([f"-s{k:0{width}d}" for k in range(top + 1)]))
    session_bytes = np.hstack([id_bytes[user], suffix[np.maximum(sess, 0)]])
    session = _fixed_width(session_bytes, np.arange(len(user)), valid=sess >= 0)
    return pd.DataFrame(
        {
            "user_id": pd.Series(_fixed_width(id_bytes, user), dtype="str"),
            "timestamp": _timestamps(ev["time"], start_ts),
            "event": _labels(ev["event"], sim.EVENTS),
            "channel": _labels(ev["chan"], sim.ALL_CHANNELS),
            "value": ev["value"].astype(float),
            "session_id": pd.Series(session, dtype="str"),
            "device": _labels(u["device"][user], sim.DEVICES),
            "region": _labels(u["region"][user], sim.REGIONS),
            "response_minutes": ev["response"].astype(float),
        }
    )


def _users_frame(ev, u, user_ids, start_ts, n) -> pd.DataFrame:
    user, chan, event, time = ev["user"], ev["chan"], ev["event"], ev["time"]
    first = sim.group_starts(user)
    first_seen = np.full(n, np.nan)
    first_seen[user[first]] = time[first]
    visit = sim.first_per_group(event == sim.E["site_visit"], user, n)
    ad = sim.first_per_group(event == sim.E["ad_impression"], user, n)
    acquisition = np.where(
        visit >= 0, chan[np.maximum(visit, 0)], np.where(ad >= 0, chan[np.maximum(ad, 0)], -1)
    )
    return pd.DataFrame(
        {
            "user_id": pd.Series(user_ids, dtype="str"),
            "device": _labels(u["device"], sim.DEVICES),
            "region": _labels(u["region"], sim.REGIONS),
            "acquisition_channel": _labels(acquisition, sim.ALL_CHANNELS),
            "persona": _labels(u["persona"], sim.PERSONAS),
            "first_seen": _timestamps(first_seen, start_ts),
        }
    )


def _assignments_frame(u, user_ids, start_ts, broken_split, rng):
    idx = np.flatnonzero(u["assigned"])
    idx = idx[np.argsort(u["assigned_at"][idx], kind="stable")]
    lost = 0
    if broken_split:
        # a logging bug drops ~6 % of the treatment arm's assignment rows
        drop = (u["variant"][idx] == 1) & (rng.random(len(idx)) < 0.06)
        lost = int(drop.sum())
        idx = idx[~drop]
    frame = pd.DataFrame(
        {
            "user_id": pd.Series(user_ids.take(pa.array(idx)), dtype="str"),
            "variant": _labels(u["variant"][idx], sim.VARIANTS),
            "assigned_at": _timestamps(u["assigned_at"][idx], start_ts),
            "device": _labels(u["device"][idx], sim.DEVICES),
            "pre_sessions": u["pre_sessions"][idx].astype(np.int64),
            "pre_revenue": u["pre_revenue"][idx].astype(float),
        }
    )
    return frame, lost


def _feedback_frame(f, user_ids, start_ts) -> pd.DataFrame:
    order = np.lexsort((f["time"], f["user"]))
    f = {k: v[order] for k, v in f.items()}
    f["time"] = np.round(f["time"] * 3600) / 3600
    return pd.DataFrame(
        {
            "user_id": pd.Series(user_ids.take(pa.array(f["user"])), dtype="str"),
            "timestamp": _timestamps(f["time"], start_ts),
            "survey": pd.Series(np.where(f["nps"], "nps", "csat"), dtype="str"),
            "score": f["score"].astype(np.int64),
            "text": pd.Series(f["text"], dtype="str"),
            "language": pd.Series(np.where(f["korean"], "ko", "en"), dtype="str"),
            "stage": pd.Series(f["stage"], dtype="str"),
            "touchpoint": pd.Series(f["touchpoint"], dtype="str"),
        }
    )


def _spend_frame(ev, rng, start_ts, end_ts, n_users) -> pd.DataFrame:
    days = int((end_ts.normalize() - start_ts.normalize()) / pd.Timedelta(days=1))
    day = np.floor((ev["time"] + start_ts.hour + start_ts.minute / 60) / 24).astype(np.int64)
    scale = n_users / 20_000
    rows = []
    for ch, campaigns in CAMPAIGNS.items():
        code = sim.C[ch]
        sessions = np.bincount(
            day[(ev["chan"] == code) & (ev["event"] == sim.E["site_visit"])], minlength=days
        )[:days]
        impressions = np.bincount(
            day[(ev["chan"] == code) & (ev["event"] == sim.E["ad_impression"])], minlength=days
        )[:days]
        base = (
            _COST_PER_SESSION[ch] * sessions
            + _COST_PER_IMPRESSION[ch] * impressions
            + _DAILY_FEE[ch] * scale
        )
        for campaign, share in campaigns.items():
            noise = rng.lognormal(0.0, 0.12, days)
            rows.append(
                pd.DataFrame(
                    {
                        "channel": ch,
                        "date": pd.date_range(
                            start_ts.normalize().tz_localize(None), periods=days, freq="D"
                        ),
                        "cost": np.round(base * share * noise, 2),
                        "campaign": campaign,
                    }
                )
            )
    spend = pd.concat(rows, ignore_index=True).sort_values(
        ["date", "channel", "campaign"], kind="stable"
    )
    spend["date"] = spend["date"].astype("datetime64[ns]")
    for col in ("channel", "campaign"):
        spend[col] = spend[col].astype("str")
    return spend.reset_index(drop=True)


def _transactions_frame(ev, users, user_ids, start_ts) -> pd.DataFrame:
    is_order = (ev["event"] == sim.E["booking_completed"]) | (
        ev["event"] == sim.E["repeat_booking"]
    )
    rows = np.flatnonzero(is_order)
    rows = rows[np.lexsort((ev["user"][rows], ev["time"][rows]))]
    user = ev["user"][rows]
    order_id = _ids("o", np.arange(1, len(rows) + 1), 8)
    frame = pd.DataFrame(
        {
            "user_id": pd.Series(user_ids.take(pa.array(user)), dtype="str"),
            "timestamp": _timestamps(ev["time"][rows], start_ts),
            "value": ev["value"][rows].astype(float),
            "order_id": pd.Series(order_id, dtype="str"),
            "channel": users["acquisition_channel"].to_numpy()[user],
        }
    )
    frame["channel"] = frame["channel"].astype("str")
    return frame


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
    """Write the six tables and ``truth.json`` to a folder.

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
        Path of each written file by table name (plus ``"truth"``).

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
    return paths


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m journeylab.datasets --out DIR``."""
    parser = argparse.ArgumentParser(
        prog="python -m journeylab.datasets",
        description="Write the seeded home-services sample (six tables and truth.json) to a folder.",
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
