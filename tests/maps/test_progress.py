"""Per-user step and stage progress, against a plain pandas reading of their definitions."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journeylab.core.stages import StageMap
from journeylab.maps.progress import stage_progress, step_progress

T0 = pd.Timestamp("2026-10-01", tz="UTC")
STAGES = StageMap.from_dict(
    {"stages": [{"name": "look", "events": ["view"]}, {"name": "buy", "events": ["cart", "buy"]}]}
)


def _frame(rows, ids):
    return pd.DataFrame(
        {
            "user_id": pd.array([u for u, _, _ in rows], dtype=ids),
            "timestamp": pd.to_datetime(
                [T0 + pd.Timedelta(minutes=m) for _, m, _ in rows], utc=True
            ),
            "event": [e for _, _, e in rows],
        }
    )


def _reference_steps(frame: pd.DataFrame) -> dict[str, tuple]:
    """First "view" per user, then the first "buy" at or after it (NaT when none)."""
    text = frame.assign(user_id=frame["user_id"].astype(str))
    out = {}
    for user, rows in text.groupby("user_id"):
        first = rows.loc[rows["event"] == "view", "timestamp"].min()
        if pd.isna(first):
            continue
        later = rows.loc[(rows["event"] == "buy") & (rows["timestamp"] >= first), "timestamp"]
        out[user] = (first, later.min())
    return out


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", "d"]),
            st.integers(0, 20),
            st.sampled_from(["view", "cart", "buy", "other"]),
        ),
        max_size=25,
    ),
    ids=st.sampled_from(["str", "object"]),
)
def test_step_progress_is_each_users_first_entry_and_next_success(rows, ids):
    frame = _frame(rows, ids)
    got = step_progress(frame, frame["event"] == "view", frame["event"] == "buy")
    assert got["user_id"].map(type).eq(str).all()
    as_dict = {
        u: (f, n) for u, f, n in zip(got["user_id"], got["first_ts"], got["next_ts"], strict=True)
    }
    expected = _reference_steps(frame)
    assert as_dict.keys() == expected.keys()
    for user, (first, after) in expected.items():
        assert as_dict[user][0] == first
        assert (pd.isna(as_dict[user][1]) and pd.isna(after)) or as_dict[user][1] == after


def test_progress_reads_numbers_and_missing_ids_as_their_text():
    """Integer ids come back as text; rows without an id form one group without a name."""
    frame = pd.DataFrame(
        {
            "user_id": pd.array([7, 7, 8, None], dtype="object"),
            "timestamp": [T0, T0 + pd.Timedelta(hours=1), T0, T0],
            "event": ["view", "buy", "view", "view"],
        }
    )
    got = step_progress(frame, frame["event"] == "view", frame["event"] == "buy")
    named = got.dropna(subset=["user_id"]).set_index("user_id")
    assert sorted(named.index) == ["7", "8"] and named.loc["7", "next_ts"] == T0 + pd.Timedelta(
        hours=1
    )
    stages = stage_progress(frame.iloc[:3], STAGES)
    assert sorted(stages["user_id"]) == ["7", "7", "8"]
    assert set(stages.loc[stages["user_id"] == "8", "stage_idx"]) == {0}


@pytest.mark.parametrize("ids", ["str", "object"])
def test_stage_progress_counts_the_next_stage_at_or_after_the_first(ids):
    rows = [("a", 0, "view"), ("a", 5, "cart"), ("b", 3, "cart"), ("b", 4, "view"), ("c", 1, "x")]
    got = stage_progress(_frame(rows, ids), STAGES).sort_values(["user_id", "stage_idx"])
    assert got[["user_id", "stage_idx"]].values.tolist() == [["a", 0], ["a", 1], ["b", 0], ["b", 1]]
    reached = got.set_index(["user_id", "stage_idx"])["next_ts"]
    assert reached[("a", 0)] == T0 + pd.Timedelta(minutes=5)
    assert pd.isna(reached[("b", 0)])  # b's cart came before the view
