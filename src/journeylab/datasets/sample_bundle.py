"""A generated sample: its tables and its ``truth``, with the log as the touchpoints wrote it."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from journeylab.core.stages import StageMap
from journeylab.datasets.stage_maps import sample_stage_map

__all__ = [
    "Sample",
    "TABLES",
]


#: The tables of a sample, in the order they are written to disk.
TABLES = ("events", "users", "assignments", "feedback", "spend", "transactions", "identities")


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
        >>> from journeylab.datasets.sample import make_sample
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
