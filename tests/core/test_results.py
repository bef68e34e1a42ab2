"""House number formats: an interval's ends always differ in print."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from journeylab.core.results import fmt_ci, fmt_num, fmt_pct, fmt_pp, interval_precision

FINITE = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


def test_close_ends_get_more_digits_until_they_differ():
    # A stratified lift of +0.20 pp [+0.18, +0.23] once printed as "+0.2 pp [+0.2, +0.2]".
    assert fmt_ci(0.00181, 0.00234, fmt_pp) == "[+0.18 pp, +0.23 pp]"
    assert interval_precision(0.00181, 0.00234, fmt_pp) == 2
    assert fmt_ci(0.12341, 0.12346, fmt_pct) == "[12.34%, 12.35%]"
    assert fmt_ci(1.2341, 1.2346) == "[1.234, 1.235]"
    # ends that differ at the default precision keep it
    assert fmt_ci(0.1, 0.25, fmt_pct) == "[10.0%, 25.0%]"
    assert fmt_ci(0.01, 0.02, fmt_pct, signed=True) == "[+1.0%, +2.0%]"
    # other formatters are used as given
    assert fmt_ci(1, 2, lambda v: f"{v:.3f}") == "[1.000, 2.000]"


def test_one_sided_and_missing_ends():
    assert fmt_ci(-0.0021, math.inf, fmt_pp) == "[-0.2 pp, +∞)"
    assert fmt_ci(-math.inf, 0.5) == "(-∞, 0.500]"
    assert fmt_ci(float("nan"), 1.0) == "[–, 1]"


@settings(max_examples=300, deadline=None)
@given(FINITE, FINITE, st.sampled_from([fmt_num, fmt_pct, fmt_pp]))
def test_different_ends_never_print_alike(a, b, fmt):
    low, high = min(a, b), max(a, b)
    # ends closer than 1e-6 of their size are beyond the 6 extra digits the formatter adds
    if high - low <= 1e-6 * max(abs(low), abs(high), 1e-3):
        return
    text = fmt_ci(low, high, fmt)
    left, right = text[1:-1].split(", ")
    assert left != right, text


def test_money_is_written_with_the_currency_sign_the_project_file_uses():
    from journeylab.core.project import Project
    from journeylab.core.results import CURRENCY_SIGNS, currency_sign, fmt_money

    for code in [*CURRENCY_SIGNS, "CHF", "SEK"]:
        project = Project.from_dict(
            {
                "currency": code,
                "data": {"events": {"path": "events.csv"}},
                "journey": {"conversion": "purchase"},
                "stages": {"all": {"events": ["*"]}},
            }
        )
        assert currency_sign(code) == project.currency_sign
        assert fmt_money(1234.5, code) == f"{project.currency_sign}1,234"
    assert fmt_money(12.5) == "$12.50" and fmt_money(-12.5, "$") == "-$12.50"
    assert fmt_money(None, "EUR") == "–"
