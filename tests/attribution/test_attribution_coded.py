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
        pd.testing.assert_frame_equal(
            attribute(coded, MODELS, order=2).to_frame(),
            attribute(frame, MODELS, order=2, collapse_repeats=collapse).to_frame(),
        )


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
        ({"touches": [0.0, 1.0, 1.0]}, "integer codes"),
        ({"lengths": [2, 2]}, "sum to the 3 touches"),
        ({"lengths": [4, -1]}, ">= 0"),
        ({"conversions": [1]}, "one number per path"),
        ({"conversions": [1, np.nan]}, "finite and >= 0"),
        ({"names": ["a", "  "]}, "non-empty name"),
    ):
        with pytest.raises(ParameterError, match=re.escape(words)):
            PathTable.from_codes(**{**ok, **change})
    with pytest.raises(DataError, match="conversions but no touch"):
        PathTable.from_codes(["a"], [0], [0, 1], [1, 0])
    direct = PathTable.from_codes(["a"], [0], [0, 1], [1, 0], empty_paths="direct")
    assert direct.channels == ("(direct)", "a")
