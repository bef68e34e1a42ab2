"""The four findings the sample plants come out of the report's findings pass, from the project file alone.

The case the product is modelled on names four pain points: slow lead response,
a booking form that fails on mobile, inconvenient timing for booking, and field
crews that do not ask for reviews. The sample plants all four (``truth``); the
monthly report's findings (:func:`journeylab.reports.sections.month_findings`,
configured only by the bundled project file) must rank each among its ten
largest counted findings, on the bundled seed and on seeds no other test uses.
"""

from __future__ import annotations

import pytest

from journeylab.reports import sections
from journeylab.reports.workspace import open_report_workspace

TOP = 10


def _planted(truth: dict) -> dict[str, object]:
    timing = truth["inconvenient_timing"]
    outside_hours = set(timing["segments"]["hour_of_day"])
    return {
        "slow lead response": lambda r: (
            r.dimension == "callback_speed" and r.segment == "called back after an hour"
        ),
        "mobile booking form": lambda r: (
            r.dimension == "device"
            and r.segment == "mobile"
            and r.step == "booking_started → booking_completed"
        ),
        "inconvenient timing": lambda r: (
            r.kind == "timing"
            and r.step == " → ".join(timing["step"])
            and (
                r.segment in timing["segments"]["day_of_week"]
                or (
                    r.dimension == "hour_of_day"
                    and set(range(int(r.segment[:2]), int(r.segment[6:8]))) <= outside_hours
                )
            )
        ),
        "reviews not asked": lambda r: (
            r.dimension == truth["reviews_not_asked"]["dimension"]
            and r.segment in truth["reviews_not_asked"]["segments"]
            and r.step == " → ".join(truth["reviews_not_asked"]["step"])
        ),
    }


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2026, 31, 47])
def test_the_four_planted_findings_rank_in_the_top_findings(seed):
    ws = open_report_workspace(seed=seed)
    found = sections.month_findings(ws, "2026-10", min_users=ws.project.min_users)
    top = list(found.top(TOP).itertuples())
    for name, matches in _planted(ws.truth).items():
        hits = [r for r in top if matches(r)]
        assert hits, (
            f"{name} is not among the {TOP} largest findings (seed {seed}): {[r.id for r in top]}"
        )
        assert all(r.value < r.benchmark and r.q_value < 0.05 for r in hits)
