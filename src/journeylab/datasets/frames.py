"""Tables of the home-services sample: flat simulation arrays to canonical frames.

Builds the pandas tables of :func:`journeylab.datasets.sample.make_sample` from the
flat arrays of the simulation: the canonical event order (user, second,
stage-map order, event name), string columns built straight from Arrow
buffers (fast for tens of millions of rows), UTC timestamps in nanoseconds,
the daily spend per paid channel and campaign, and the ids touchpoints log
people under (web id, call-tracking phone hash, CRM id) with the identities
table that maps them onto one person.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from journeylab.datasets import simulation as sim
from journeylab.datasets.stage_maps import sample_stage_map

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


def event_ranks(names: Sequence[str], stage_map=None) -> np.ndarray:
    """Rank of each event code by (stage-map order of its stage, event name)."""
    stage_map = stage_map if stage_map is not None else sample_stage_map()
    rank = sorted(
        range(len(names)), key=lambda c: (stage_map.index(stage_map.stage_of(names[c])), names[c])
    )
    event_rank = np.empty(len(names), dtype=np.int64)
    event_rank[rank] = np.arange(len(rank))
    return event_rank


def canonical_order(
    ev: dict[str, np.ndarray], names: Sequence[str] = sim.EVENTS, stage_map=None
) -> np.ndarray:
    """Sort by user, second, stage-map order of the event, then event name."""
    event_rank = event_ranks(names, stage_map)
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


def ids(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
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


def session_ids(user: np.ndarray, sess: np.ndarray, user_ids: pa.Array) -> pd.Series:
    """Session ids such as ``u0000123-s02`` (missing where ``sess`` < 0)."""
    # ids are fixed width: build the bytes directly (fast for millions of rows)
    id_bytes = _byte_table(user_ids.to_numpy(zero_copy_only=False))
    top = max(int(sess.max(initial=0)), 1)
    width = max(2, len(str(top)))
    suffix = _byte_table(np.array([f"-s{k:0{width}d}" for k in range(top + 1)]))
    session_bytes = np.hstack([id_bytes[user], suffix[np.maximum(sess, 0)]])
    return pd.Series(
        _fixed_width(session_bytes, np.arange(len(user)), valid=sess >= 0), dtype="str"
    )


def events_frame(ev, u, user_ids, start_ts) -> pd.DataFrame:
    """Build the events table from the simulated event arrays."""
    user = ev["user"]
    sess = ev["sess"]
    id_bytes = _byte_table(user_ids.to_numpy(zero_copy_only=False))
    session = session_ids(user, sess, user_ids)
    return pd.DataFrame(
        {
            "user_id": pd.Series(_fixed_width(id_bytes, user), dtype="str"),
            "timestamp": _timestamps(ev["time"], start_ts),
            "event": _labels(ev["event"], sim.EVENTS),
            "channel": _labels(ev["chan"], sim.ALL_CHANNELS),
            "value": ev["value"].astype(float),
            "session_id": session,
            "device": _labels(u["device"][user], sim.DEVICES),
            "region": _labels(u["region"][user], sim.REGIONS),
            "response_minutes": ev["response"].astype(float),
            "crew": _labels(ev["crew"], sim.CREWS),
        }
    )


def users_frame(ev, u, user_ids, start_ts, n) -> pd.DataFrame:
    """Build the users table: one row per person with their attributes and first touch."""
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


def assignments_frame(u, user_ids, start_ts, broken_split, rng):
    """Build the experiment's assignments table (optionally with a broken split)."""
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


def feedback_frame(f, user_ids, start_ts) -> pd.DataFrame:
    """Build the survey answers table, sorted by person and time."""
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


def spend_frame(ev, rng, start_ts, end_ts, n_users) -> pd.DataFrame:
    """Build the daily spend per paid channel."""
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


def transactions_frame(
    ev, users, user_ids, start_ts, orders=(sim.E["booking_completed"], sim.E["repeat_booking"])
) -> pd.DataFrame:
    """First and repeat orders (the event codes in ``orders``), oldest first."""
    is_order = np.isin(ev["event"], orders)
    rows = np.flatnonzero(is_order)
    rows = rows[np.lexsort((ev["user"][rows], ev["time"][rows]))]
    user = ev["user"][rows]
    order_id = ids("o", np.arange(1, len(rows) + 1), 8)
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


# -- identities ---------------------------------------------------------------------
#: Sources of the ids people are logged under, in the order a person's ids
#: are listed in the identities table.
ID_SOURCES = ("web", "phone", "crm", "email")
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _hex_ids(prefix: str, numbers: np.ndarray, digits: int) -> pa.Array:
    """``prefix`` + fixed-width lowercase hex of each number."""
    shifts = np.arange(digits - 1, -1, -1, dtype=np.uint64) * np.uint64(4)
    nibbles = (numbers[:, None] >> shifts[None, :]) & np.uint64(15)
    head = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    table = np.hstack([np.broadcast_to(head, (len(numbers), len(head))), _HEX[nibbles]])
    return _fixed_width(np.ascontiguousarray(table, dtype=np.uint8), np.arange(len(numbers)))


def hashed_ids(rng: np.random.Generator, prefix: str, n: int) -> pa.Array:
    """One hash-like id per person: ``prefix`` and 12 hex digits, never colliding.

    An odd multiplier and an offset modulo 2**48 (a bijection) make the ids
    look random, like the hash of a phone number or an e-mail address.
    """
    mult = np.uint64(rng.integers(1, 2**46) * 2 + 1)
    offset = np.uint64(rng.integers(0, 2**48))
    numbers = (np.arange(n, dtype=np.uint64) * mult + offset) & np.uint64(2**48 - 1)
    return _hex_ids(prefix, numbers, 12)


def numbered_ids(rng: np.random.Generator, prefix: str, n: int, width: int) -> pa.Array:
    """One customer number per person: ``prefix`` and a random permutation of 1..n."""
    numbers = rng.permutation(n).astype(np.int64) + 1
    return pa.array(ids(prefix, numbers, width), pa.large_string())


def id_sources(event: np.ndarray, events: Sequence[str], aliases: dict[str, str]) -> np.ndarray:
    """Source of the id each event row is logged under (index into ID_SOURCES).

    ``aliases`` maps event names to a source ("phone", "crm", "email"); every
    other row is logged under the web id.
    """
    src = np.full(len(event), ID_SOURCES.index("web"), dtype=np.int64)
    for name, source in aliases.items():
        src[event == events.index(name)] = ID_SOURCES.index(source)
    return src


def identities_frame(
    user_ids: pa.Array, aliases: dict[str, pa.Array], src: np.ndarray, user: np.ndarray
) -> pd.DataFrame:
    """Every person's own id, then each of their aliases that occurs in the log."""
    n = len(user_ids)
    tables = {"web": user_ids, **aliases}
    names = [name for name in ID_SOURCES if name in tables]
    person, source = [np.arange(n)], [np.zeros(n, dtype=np.int64)]
    for k, name in enumerate(names[1:], start=1):
        seen = np.unique(user[src == ID_SOURCES.index(name)])
        person.append(seen)
        source.append(np.full(len(seen), k))
    person_, source_ = np.concatenate(person), np.concatenate(source)
    order = np.lexsort((source_, person_))
    person_, source_ = person_[order], source_[order]
    table = pa.concat_arrays([tables[name] for name in names])
    return pd.DataFrame(
        {
            "id": pd.Series(table.take(pa.array(source_ * n + person_)), dtype="str"),
            "user_id": pd.Series(user_ids.take(pa.array(person_)), dtype="str"),
        }
    )


def uplift_truth(experiment, dimension, values, segment, p0, p1) -> dict[str, Any]:
    """Planted lift and control rate per segment: means of p1 - p0 and p0 over assigned users."""
    lift, baseline = {}, {}
    for k, value in enumerate(values):
        mine = segment == k
        lift[value] = round(float((p1[mine] - p0[mine]).mean()), 5) if mine.any() else float("nan")
        baseline[value] = round(float(p0[mine].mean()), 5) if mine.any() else float("nan")
    return {"experiment": experiment, "dimension": dimension, "lift": lift, "baseline": baseline}


def identity_truth(src, user, identities, prefixes, aliases) -> dict[str, Any]:
    """How many ids and rows each touchpoint logs under an id of its own."""
    out: dict[str, Any] = {"aliases": {e: prefixes[k] for e, k in aliases.items()}}
    for name in prefixes:
        rows = src == ID_SOURCES.index(name)
        out[f"{name}_ids"] = int(len(np.unique(user[rows])))
        out[f"{name}_rows"] = int(rows.sum())
    alias_rows = src != ID_SOURCES.index("web")
    out["alias_rows"] = int(alias_rows.sum())
    out["persons_with_aliases"] = int(len(np.unique(user[alias_rows])))
    out["identity_rows"] = len(identities)
    return out
