"""require_names: one fail-closed check for the names an argument gives and the data do not carry."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journeylab.core.errors import (
    ParameterError,
    SchemaError,
    UnknownNameError,
    did_you_mean,
    require_names,
)


def test_present_names_and_matching_patterns_pass():
    require_names(["visit", "purchase"], ["visit", "view", "purchase"])
    require_names("cart_*", ["cart_add", "purchase"])  # a pattern matching a name
    require_names([], [])


def test_one_missing_name_is_named_with_the_closest_and_the_names_present():
    with pytest.raises(UnknownNameError) as info:
        require_names(["visit", "purchse"], ["visit", "purchase", "view"], what="funnel step")
    error = info.value
    assert str(error).splitlines()[0] == (
        "funnel step 'purchse' occurs in no row (did you mean 'purchase'?); "
        "names present: 'purchase', 'view', 'visit'."
    )
    assert (error.names, error.suggestions, error.what, error.column) == (
        ("purchse",),
        {"purchse": "purchase"},
        "funnel step",
        "event",
    )
    # both a bad argument and a mismatch between the data and the names
    assert isinstance(error, ParameterError) and isinstance(error, SchemaError)


def test_several_missing_names_columns_and_empty_data():
    with pytest.raises(
        UnknownNameError,
        match=r"^2 segments are not columns of the events: 'devise' \(did you mean "
        r"'device'\?\), 'x'; columns present: 'device', 'user_id'\.",
    ):
        require_names(["devise", "x"], ["user_id", "device"], what="segment", column=None,
                      absent="is not a column of the events")  # fmt: skip
    with pytest.raises(
        UnknownNameError, match="event 'visit' occurs in no row; the data are empty"
    ):
        require_names("visit", [])
    with pytest.raises(UnknownNameError, match=r"'dev\*' is not a column"):
        require_names(
            "dev*",
            ["device"],
            what="segment",
            column=None,
            absent="is not a column",
            patterns=False,
        )


def test_long_listings_are_cut():
    present = [f"event_{i:02d}" for i in range(30)]
    with pytest.raises(UnknownNameError, match=r"'event_11' \.\.\. \(18 more\)\."):
        require_names("nothing", present)


@settings(max_examples=50, deadline=None)
@given(
    present=st.lists(
        st.text(alphabet="abcdefgh_", min_size=1, max_size=6), min_size=1, max_size=8, unique=True
    ),
    asked=st.lists(st.text(alphabet="abcdefgh_", min_size=1, max_size=6), min_size=1, max_size=5),
)
def test_it_raises_exactly_for_the_absent_names_and_suggests_like_did_you_mean(present, asked):
    missing = list(dict.fromkeys(n for n in asked if n not in present))
    if not missing:
        require_names(asked, present)
        return
    with pytest.raises(UnknownNameError) as info:
        require_names(asked, present)
    assert list(info.value.names) == missing
    for name in missing:
        hint = did_you_mean(name, present)
        assert info.value.suggestions.get(name) == (
            hint[len(" (did you mean '") : -len("'?)")] if hint else None
        )
        assert repr(name) in str(info.value)
