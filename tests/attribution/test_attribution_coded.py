"""The coded path table: ``path_table(..., coded=True)`` and ``PathTable.from_codes``.

The coded table must be exactly what reading the frame gives
(``read_path_table(path_table(...))``), on both sample verticals, and every
model must credit the same on either input.
"""

from __future__ import annotations

import pickle
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeylab.attribution import PathTable, attribute, read_path_table
from journeylab.core.errors import DataError, ParameterError
from journeylab.core.stages import StageMap
from journeylab.datasets.sample import make_sample, sample_project
from journeylab.io.loaders import load_events
from journeylab.journeys.build import build_journeys, path_table

MODELS = ["first_touch", "last_touch", "last_non_direct", "linear", "position", "markov", "shapley"]


def assert_same_table(coded: PathTable, read: PathTable, *, value_rtol: float = 0.0) -> None:
    assert coded.channels == read.channels
    assert coded.paths == read.paths
    for name in ("conversions", "non_conversions"):
        np.testing.assert_array_equal(getattr(coded, name), getattr(read, name))
    np.testing.assert_allclose(coded.value, read.value, rtol=value_rtol, atol=0)
    for a, b in zip(coded.flat(), read.flat(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.fixture(scope="module", params=["home_services", "ecommerce"])
def vertical(request):
    """Each sample vertical's events and the journey rules of its project file."""
    sample = make_sample(seed=5, n_users=2_500, vertical=request.param)
    project = sample_project(request.param)
    events = load_events(sample.logged_events(), stage_map=project.stage_map).frame
    rules = {
        "conversion": list(project.conversion),
        "stage_map": project.stage_map,
        "lookback": "30D",
    }
    return events, rules


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"collapse_repeats": False},
        {"include_censored": True},
        {"level": "event", "touch_events": "all"},
        {"level": "stage", "touch_events": "all"},
        {"month": "2026-09"},
    ],
    ids=["default", "repeats", "censored", "event", "stage", "month"],
)
def test_coded_table_is_the_read_frame(vertical, options):
    events, rules = vertical
    frame = path_table(events, **rules, **options)
    coded = path_table(events, **rules, coded=True, **options)
    collapse = options.get("collapse_repeats", True)
    assert_same_table(
        coded, read_path_table(frame, collapse_repeats=collapse, empty_paths="direct")
    )
    assert coded.attrs["left_out"] == frame.attrs["left_out"]
    assert coded.attrs["settings"] == frame.attrs["settings"]
    assert coded.attrs["censoring"] == frame.attrs["censoring"]
    assert coded.conversions.sum() == frame["conversions"].sum() > 0
    if options.get("level") in (None, "channel"):
        for how in {collapse, True}:  # attribute collapses repeats by default, on either input
            a = attribute(coded, MODELS, order=2, collapse_repeats=how)
            b = attribute(frame, MODELS, order=2, collapse_repeats=how)
            pd.testing.assert_frame_equal(a.to_frame(), b.to_frame())
            assert a.settings["collapse_repeats"] == b.settings["collapse_repeats"] == how


def test_coded_table_from_journeys_and_pickled(vertical):
    events, rules = vertical
    journeys = build_journeys(events, **rules)
    from_journeys = path_table(journeys, coded=True)
    # the journeys' values are summed by DuckDB, in another order: equal to the last bits
    assert_same_table(from_journeys, path_table(events, **rules, coded=True), value_rtol=1e-12)
    assert from_journeys.attrs["censoring"] == path_table(journeys).attrs["censoring"]
    again = pickle.loads(pickle.dumps(from_journeys))
    assert_same_table(again, from_journeys)
    assert again.attrs == from_journeys.attrs


def test_censoring_warning_and_extra_channels_carry_over(vertical):
    events, rules = vertical
    coded = path_table(events, **rules, coded=True)
    frame = path_table(events, **rules)
    a = attribute(coded, ["linear", "markov"], channels=["tv (not touched)"])
    b = attribute(frame, ["linear", "markov"], channels=["tv (not touched)"])
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame())
    assert a.to_frame().loc["tv (not touched)"].eq(0).all()
    assert a.censoring == b.censoring
    assert "tv (not touched)" not in coded.channels  # the table given is left as it was


# -- PathTable.from_codes against reading the same paths as tuples of names -----------
NAMES = ["email", " email", "ｅｍａｉｌ", "social", "paid", "(direct)", "sms"]
PROPS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def coded_paths(draw):
    n = draw(st.integers(1, 9))
    lengths = draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
    touches = draw(
        st.lists(st.integers(0, len(NAMES) - 1), min_size=sum(lengths), max_size=sum(lengths))
    )
    conv = draw(st.lists(st.integers(0, 9), min_size=n, max_size=n))
    null = draw(st.lists(st.integers(0, 9), min_size=n, max_size=n))
    value = [c * draw(st.floats(1, 100, allow_nan=False)) for c in conv]
    return np.array(touches, dtype=np.int64), np.array(lengths), conv, value, null


@PROPS
@given(coded_paths(), st.booleans())
def test_from_codes_equals_reading_the_tuples(data, collapse):
    touches, lengths, conv, value, null = data
    ends = np.cumsum(lengths)
    tuples = [
        tuple(NAMES[c] for c in touches[e - k : e]) for e, k in zip(ends, lengths, strict=True)
    ]
    frame = pd.DataFrame(
        {"path": tuples, "conversions": conv, "value": value, "non_conversions": null}
    )
    options = {"collapse_repeats": collapse, "empty_paths": "direct", "channels": ["tv"]}
    coded = PathTable.from_codes(NAMES, touches, lengths, conv, value, null, **options)
    read = read_path_table(frame, **options)
    assert_same_table(coded, read)
    assert coded.notes == read.notes


def test_from_codes_checks_its_input():
    ok = dict(names=["a", "b"], touches=[0, 1, 1], lengths=[2, 1], conversions=[1, 0])
    PathTable.from_codes(**ok)
    for change, words in (
        ({"touches": [0, 2, 1]}, "must lie in [0, 2)"),
        ({"touches": [0.0, 1.0, 1.0]}, "touches must be a one-dimensional array of whole numbers"),
        ({"lengths": [2, 2]}, "sum to the 3 touches"),
        ({"lengths": [4, -1]}, ">= 0"),
        ({"conversions": [1]}, "one number per path"),
        ({"conversions": [1, np.nan]}, "finite and >= 0"),
    ):
        with pytest.raises(ParameterError, match=re.escape(words)):
            PathTable.from_codes(**{**ok, **change})
    with pytest.raises(DataError, match="empty name"):
        PathTable.from_codes(["a", "  "], [0, 1, 1], [2, 1], [1, 0])
    with pytest.raises(DataError, match="conversions but no touch"):
        PathTable.from_codes(["a"], [0], [0, 1], [1, 0])
    direct = PathTable.from_codes(["a"], [0], [0, 1], [1, 0], empty_paths="direct")
    assert direct.channels == ("(direct)", "a")


def _log(rows):
    """A tiny event log: (user, day, event, channel, value) rows."""
    frame = pd.DataFrame(rows, columns=["user_id", "day", "event", "channel", "value"])
    frame["timestamp"] = pd.Timestamp("2026-05-01", tz="UTC") + pd.to_timedelta(
        frame.pop("day"), "D"
    )
    return frame


STAGES = StageMap.from_dict(
    {
        "stages": [
            {"name": "consideration", "events": ["visit"]},
            {"name": "purchase", "events": ["purchase"]},
        ]
    }
)


def test_spellings_of_one_channel_in_a_row_are_one_touch():
    ev = _log(
        [
            ("u1", 0, "visit", "Email", None),
            ("u1", 1, "visit", "Email ", None),
            ("u1", 2, "visit", "\uff25mail", None),  # fullwidth E: NFKC gives "Email"
            ("u1", 3, "visit", "Social", None),
            ("u1", 4, "purchase", None, 10.0),
        ]
    )
    rules = {"conversion": "purchase", "stage_map": STAGES, "period_end": "2026-06-30"}
    for source in (ev, build_journeys(ev, **rules)):
        options = {} if not isinstance(source, pd.DataFrame) else rules
        coded = path_table(source, coded=True, **options)
        assert coded.channels == ("Email", "Social")
        assert coded.paths == ((0, 1),)
        assert_same_table(coded, read_path_table(path_table(source, **options)))
        assert "2 channel spelling(s) normalised" in " ".join(coded.notes)
    credit = attribute(path_table(ev, coded=True, **rules), ["position"]).to_frame()["position"]
    assert credit.to_dict() == {"Email": 0.5, "Social": 0.5}


def test_coded_errors_name_the_problem_and_the_paths():
    ev = _log([("u1", 0, "visit", "  ", None), ("u1", 1, "purchase", None, 5.0)])
    with pytest.raises(DataError, match="empty name") as caught:
        path_table(ev, conversion="purchase", stage_map=STAGES, period_end="2026-06-30", coded=True)
    assert caught.value.rows == [0]
    with pytest.raises(DataError, match="not text"):
        PathTable.from_codes([1, "a"], [0, 1], [2], [1])
    with pytest.raises(ParameterError, match="must hold numbers"):
        PathTable.from_codes(["a"], [0], [1], ["x"])
    with pytest.raises(ParameterError, match="past the largest code"):
        PathTable.from_codes(["a"], np.array([2**63], dtype=np.uint64), [1], [1])


def test_notes_and_records_are_the_tables_own():
    twice = PathTable.from_codes([" a", " a"], [0, 1], [2], [1])
    once = read_path_table(pd.DataFrame({"path": [(" a", " a")], "conversions": [1]}))
    assert twice.notes == once.notes
    fractional = PathTable.from_codes(["a", "b"], [0, 1], [1, 1], [0.5, 1.0])
    result = attribute(fractional, ["linear"], channels=["tv"])
    assert sum("fractional" in note for note in result.table.notes) == 1
    coded = PathTable.from_codes(["a"], [0], [1], [1]).with_attrs(
        {"settings": {"level": "channel"}}
    )
    result = attribute(coded, ["linear"], channels=["tv"])
    result.table.attrs["settings"]["level"] = "changed"
    assert coded.attrs["settings"]["level"] == "channel"
