"""Stage maps: there is no default one; the sample's lives with the sample generator."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journeylab.core.errors import ParameterError
from journeylab.core.stages import StageMap
from journeylab.datasets import DEFAULT_STAGE_MAP, SAMPLE_STAGE_MAP, sample_stage_map
from journeylab.io.loaders import load_events, sort_events

SHOP = {"stages": [{"name": "consideration", "events": ["view"]},
                   {"name": "purchase", "events": ["cart", "purchase"]}]}  # fmt: skip


def test_no_stage_map_is_a_clear_error():
    with pytest.raises(ParameterError) as info:
        StageMap.coerce(None)
    text = str(info.value)
    assert "No stage map given, and there is no default one" in text
    assert "StageMap.from_dict" in text and "StageMap.from_yaml" in text and "project" in text


def test_coerce_accepts_a_map_a_dict_and_a_yaml_file(tmp_path):
    import yaml

    stages = StageMap.from_dict(SHOP)
    path = tmp_path / "stages.yaml"
    path.write_text(yaml.safe_dump(SHOP), encoding="utf-8")
    assert StageMap.coerce(stages) is stages
    assert StageMap.coerce(SHOP) == StageMap.coerce(path) == stages


def test_the_sample_map_lives_with_the_sample():
    sm = sample_stage_map()
    assert sm.names == ["awareness", "consideration", "purchase", "retention", "advocacy"]
    assert sm.stage_of("booking_completed") == "purchase"
    assert DEFAULT_STAGE_MAP is SAMPLE_STAGE_MAP and StageMap.from_dict(DEFAULT_STAGE_MAP) == sm
    import journeylab.core.stages as core

    assert not hasattr(core, "default_stage_map") and not hasattr(core, "DEFAULT_STAGE_MAP")


def test_identical_timestamps_follow_the_map_or_else_the_event_name():
    t = pd.Timestamp("2026-05-01 10:00", tz="UTC")
    events = pd.DataFrame(
        {"user_id": ["u1", "u1"], "event": ["purchase", "cart"], "timestamp": [t, t]}
    )
    assert sort_events(events, StageMap.from_dict(SHOP))["event"].tolist() == ["cart", "purchase"]
    assert load_events(events, stage_map=SHOP).frame["event"].tolist() == ["cart", "purchase"]
    # loading needs no map: ties are then ordered by event name (deterministic, not journey order)
    reversed_names = events.assign(event=["zeta", "alpha"])
    assert sort_events(reversed_names)["event"].tolist() == ["alpha", "zeta"]
    assert load_events(reversed_names).frame["event"].tolist() == ["alpha", "zeta"]


def test_assign_looks_up_each_distinct_name_once_and_keeps_missing_and_unmapped_apart():
    """Stages of every row equal mapping each row's name through ``stage_of``; NaN stays NaN."""
    sm = StageMap.from_dict(SHOP)
    names = ["view", None, "refund", "purchase", "cart", "view", "refund"]
    for dtype in ("str", "object", "category"):
        got = sm.assign(pd.Series(names, dtype=dtype, index=range(10, 17)))
        expected = [None if n is None else sm.stage_of(n) for n in names]
        assert [None if pd.isna(s) else s for s in got] == expected
        assert list(got.index) == list(range(10, 17)) and got.name == "stage"
        assert list(got.cat.categories) == sm.names and got.cat.ordered
    assert len(sm.assign(pd.Series([], dtype="str"))) == 0


def test_a_stage_may_be_named_by_the_empty_string():
    sm = StageMap.from_dict({"stages": [{"name": "", "events": ["view"]}, *SHOP["stages"][1:]]})
    assert sm.assign(pd.Series(["view", "cart", "x"])).tolist()[:2] == ["", "purchase"]


# -- names and patterns: the same answers as fnmatch, however many names a stage lists ----
@settings(max_examples=200, deadline=None)
@given(
    patterns=st.lists(st.text(alphabet="ab*?[]!", min_size=1, max_size=4), min_size=1, max_size=6),
    events=st.lists(st.text(alphabet="ab[]!", max_size=4), max_size=20),
)
def test_an_event_belongs_to_the_first_stage_whose_name_or_pattern_matches_it(patterns, events):
    import fnmatch

    from journeylab.core.errors import SchemaError

    spec = {"stages": [{"name": f"s{i}", "events": [p]} for i, p in enumerate(patterns)]}
    try:
        sm = StageMap.from_dict(spec)
    except SchemaError:
        return  # an exact name listed in two stages
    for event in events:
        expected = next(
            (f"s{i}" for i, p in enumerate(patterns) if fnmatch.fnmatchcase(event, p)), None
        )
        assert sm.stage_of(event) == expected


def test_a_stage_listing_tens_of_thousands_of_names_maps_every_event():
    names = [f"product_{i}_viewed" for i in range(40_000)]
    sm = StageMap.from_dict(
        {
            "stages": [
                {"name": "browse", "events": [*names, "search_*"]},
                {"name": "buy", "events": ["order", "refund_?"]},
            ]
        }
    )
    found = sm.event_to_stage([*names, "search_x", "order", "refund_1", "refund_12", "other"])
    assert sum(v == "browse" for v in found.values()) == 40_001
    assert found["order"] == found["refund_1"] == "buy"
    assert found["refund_12"] is None and found["other"] is None


def test_event_codes_that_are_numbers_map_to_the_stages_that_list_them():
    import numpy as np

    import journeylab

    # YAML reads `events: [101]` as a number; the stage map keeps it as text
    sm = StageMap.from_dict(
        {"stages": [{"name": "visit", "events": [101]}, {"name": "buy", "events": [202, "x*"]}]}
    )
    events = pd.DataFrame(
        {
            "user_id": ["a", "a", "b"],
            "timestamp": pd.to_datetime(["2026-05-01", "2026-05-03", "2026-05-02"], utc=True),
            "event": [101, 202, 101],
        }
    )
    assert sm.assign(events).tolist() == ["visit", "buy", "visit"]
    assert [sm.stage_of(e) for e in (np.int64(202), 101, None, np.nan, pd.NA)] == [
        "buy",
        "visit",
        None,
        None,
        None,
    ]
    reached = journeylab.journey_map(events, stage_map=sm).stages.set_index("stage")["users"]
    assert reached.to_dict() == {"visit": 2, "buy": 1}


def test_a_stage_map_pickles_and_copies_the_same_whether_or_not_it_was_used():
    import copy
    import pickle

    sm = StageMap.from_dict({"stages": [{"name": "a", "events": ["x", "y*"]}]})
    fresh = pickle.dumps(sm)
    assert sm.stage_of("yes") == "a"  # the matcher is made on first use
    assert pickle.dumps(sm) == fresh
    again = pickle.loads(fresh)
    assert again == sm and again.stage_of("x") == "a" and again.stage_of("z") is None
    assert copy.deepcopy(sm).stage_of("yy") == "a"


@settings(max_examples=200, deadline=None)
@given(
    entries=st.lists(st.text(alphabet="ab*?[]!", min_size=1, max_size=4), max_size=8),
    event=st.text(alphabet="ab[]!", max_size=4),
)
def test_event_names_give_the_first_entry_fnmatch_matches(entries, event):
    import fnmatch

    from journeylab.core.stages import EventNames

    expected = next((i for i, p in enumerate(entries) if fnmatch.fnmatchcase(event, p)), None)
    assert EventNames(entries).position(event) == expected


def test_event_order_and_masks_read_a_stage_of_tens_of_thousands_of_names():
    from journeylab.io.loaders import event_rank
    from journeylab.maps.progress import events_matching

    names = [f"product_{i}_viewed" for i in range(40_000)]
    sm = StageMap.from_dict(
        {
            "stages": [
                {"name": "browse", "events": [*names, "search_*"]},
                {"name": "buy", "events": ["order"]},
            ]
        }
    )
    events = pd.Series([names[-1], "order", "search_x", "other", None])
    assert event_rank(events, sm).tolist() == [39_999, 40_001, 40_000, 40_002, 40_003]
    frame = pd.DataFrame({"event": events.astype("string[pyarrow]")})
    assert events_matching(frame, sm["browse"].events).tolist() == [True, False, True, False, False]
