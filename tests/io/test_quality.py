"""The quality report: counts add up, every step is named, and it renders as text and HTML."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journeylab.core.errors import JourneylabError
from journeylab.datasets import sample_stage_map
from journeylab.io import loaders
from journeylab.io.loaders import load_assignments
from journeylab.io.quality import QualityReport

#: These logs use the sample's vocabulary: the loaders are given its stage map
#: explicitly (there is no default stage map).
SAMPLE_STAGES = sample_stage_map()


def load_events(*args, **kwargs):
    """``load_events`` with the sample's stage map unless the test gives one."""
    kwargs.setdefault("stage_map", SAMPLE_STAGES)
    return loaders.load_events(*args, **kwargs)


def test_counts_add_up_and_zero_steps_are_not_recorded():
    report = QualityReport("events", "events.csv", rows_read=100, row_label="line")
    report.add(
        "missing user_id",
        "dropped",
        7,
        column="user_id",
        reason="no id",
        rows=[3, 9, 12, 15, 20, 31, 40],
    )
    report.add("exact duplicate", "deduplicated", 3, rows=[5])
    report.add("ambiguous local time", "repaired", 2, column="timestamp")
    report.add("refund", "flagged", 4, column="value")
    report.add("nothing", "dropped", 0)
    assert report.rows_dropped == 10 and report.rows_kept == 90
    assert [s.step for s in report.steps] == [
        "missing user_id",
        "exact duplicate",
        "ambiguous local time",
        "refund",
    ]
    assert report.steps[0].rows == (3, 9, 12, 15, 20)  # the first five only
    assert report.count("missing user_id") == 7 and report.count("nothing") == 0
    report.check(90)
    with pytest.raises(JourneylabError, match="Internal check failed"):
        report.check(91)


def test_to_frame_summary_and_html():
    report = QualityReport("events", "events.csv", rows_read=135_090, row_label="line")
    report.add(
        "missing user_id", "dropped", 135_080, column="user_id", reason="no id", rows=[623, 1444]
    )
    report.channel_mapping = pd.DataFrame(
        {"raw": ["email ", "E\u200bmail"], "channel": ["Email", "Email"], "rows": [3, 1]}
    )
    report.note("timestamp: times without a time zone were read as UTC.")
    frame = report.to_frame()
    assert list(frame.columns) == ["step", "action", "column", "rows", "reason", "example_rows"]
    assert frame.loc[0, "rows"] == 135_080 and frame.loc[0, "example_rows"] == "623, 1444"
    text = report.summary()
    assert (
        text.splitlines()[0]
        == "events from events.csv: 135,090 rows read, 10 kept, 135,080 dropped."
    )
    assert "missing user_id: 135,080 rows dropped (first lines 623, 1444) — no id" in text
    assert "'email ' → 'Email' (3)" in text
    assert "note: timestamp: times without a time zone were read as UTC." in text
    page = report._repr_html_()
    assert "135,080" in page and "first lines" in page and "Email" in page and "<ul>" in page
    assert "'E\\u200bmail'" in page  # invisible characters shown as escapes
    assert str(report) == text and repr(report).startswith("<QualityReport>")


def test_html_escapes_source_text():
    report = QualityReport("events", "<script>x</script>.csv", rows_read=1)
    assert "<script>" not in report._repr_html_()


# Random dirty event logs: the report must always add up to the rows returned.
dirty_rows = st.lists(
    st.tuples(
        st.sampled_from(["u1", "00123", "123", "", "  ", "u9"]),
        st.sampled_from(
            [
                "2024-03-10 02:30:00",
                "2024-11-03 01:30:00",
                "2024-03-10 09:00:00",
                "2024-03-10 09:00:00.5",
                "",
            ]
        ),
        st.sampled_from(["site_visit", "booking_started", "booking_completed", " site_visit", ""]),
        st.sampled_from(["Email", "email ", "E\u200bmail", "Café", "Cafe\u0301", ""]),
        st.sampled_from(["", "10", "10.0", "-5"]),
    ),
    min_size=0,
    max_size=40,
)


@settings(max_examples=25, deadline=None)
@given(rows=dirty_rows)
def test_rows_read_equals_kept_plus_dropped_for_any_dirty_log(rows):
    frame = pd.DataFrame(rows, columns=["user_id", "timestamp", "event", "channel", "value"])
    loaded = load_events(frame, tz="America/New_York")
    q = loaded.quality
    assert q.rows_read == len(rows) == q.rows_kept + q.rows_dropped
    assert len(loaded.frame) == q.rows_kept
    assert all(s.count > 0 for s in q.steps)
    assert all(1 <= r <= len(rows) for s in q.steps for r in s.rows)
    blank_ids = sum(1 for r in rows if not r[0].strip())
    assert q.count("missing user_id") == blank_ids
    assert loaded.frame["user_id"].notna().all() and loaded.frame["timestamp"].notna().all()


@settings(max_examples=12, deadline=None)
@given(
    users=st.lists(st.sampled_from([str(i) for i in range(8)] + [""]), min_size=1, max_size=30),
    seed=st.integers(0, 2**16),
)
def test_assignment_report_adds_up(users, seed):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {"user_id": users, "variant": rng.choice(["control", "treatment"], len(users))}
    )
    loaded = load_assignments(frame)
    q = loaded.quality
    assert (
        q.rows_read
        == len(users)
        == q.rows_kept + q.rows_dropped
        == len(loaded.frame) + q.rows_dropped
    )
    assert loaded.frame["user_id"].is_unique
