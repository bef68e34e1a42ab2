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

    python -m journeylab.datasets.sample --out DIR [--vertical ecommerce] [--seed N]
                                         [--n-users N] [--format parquet|csv]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml

from journeylab.core.errors import ParameterError, check_in
from journeylab.core.timeparse import to_utc_timestamp
from journeylab.datasets import simulation as sim
from journeylab.datasets.home_services import _home_services
from journeylab.datasets.sample_bundle import TABLES, Sample
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


#: The file of a data folder holding its stage map (written beside the tables).
STAGES_FILE = "stages.yaml"


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


# -- writing to disk ------------------------------------------------------------------
def write_sample(
    sample: Sample, out: str | Path, fmt: Literal["parquet", "csv"] = "parquet"
) -> dict[str, Path]:
    """Write the seven tables, ``truth.json`` and the stage map (``stages.yaml``) to a folder.

    The folder holds them as a company would. The events are written as
    logged (:meth:`Sample.logged_events`: phone calls, jobs ... under the ids
    of their own touchpoints), beside the ``identities`` table that maps those
    ids onto persons;
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
