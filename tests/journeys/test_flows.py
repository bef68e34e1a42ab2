"""Top paths, transitions and step-by-step flows on hand-made journeys."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from journeylab.core.errors import ParameterError, SchemaError, UnknownNameError
from journeylab.core.project import Project
from journeylab.datasets import sample_stage_map
from journeylab.journeys.build import build_journeys, path_table
from journeylab.journeys.flows import (
    CONVERSION,
    END,
    NULL,
    OTHER,
    START,
    flow,
    top_paths,
    transitions,
)
from journeylab.journeys.rules import DIRECT

END_OF_PERIOD = "2026-06-30"
STAGES = sample_stage_map()
#: The journey rules of these logs: the sample's vocabulary, named explicitly.
JOURNEY = {"conversion": "booking_completed", "stage_map": STAGES, "period_end": END_OF_PERIOD}

# Test table D1 of REFERENCES.md (attribution section): 33 conversions, 49 non-conversions.
D1 = pd.DataFrame(
    {
        "path": [
            ("A", "B"),
            ("A",),
            ("B", "C"),
            ("C",),
            ("A", "C"),
            ("B",),
            ("A", "B", "C"),
            ("C", "A"),
        ],
        "conversions": [10, 3, 6, 2, 4, 1, 5, 2],
        "value": [0.0] * 8,
        "non_conversions": [5, 10, 4, 8, 6, 9, 3, 4],
    }
)


def make_events(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["user_id", "timestamp", "event", "channel", "value"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    frame["value"] = frame["value"].astype("float64")
    return frame


@pytest.fixture
def log() -> pd.DataFrame:
    return make_events(
        [
            ("u1", "2026-05-01 10:00", "ad_impression", "social", None),
            ("u1", "2026-05-01 12:00", "site_visit", "email", None),
            ("u1", "2026-05-01 13:00", "site_visit", "email", None),
            ("u1", "2026-05-01 14:00", "booking_completed", None, 100.0),
            ("u2", "2026-05-02 10:00", "site_visit", "email", None),
            ("u2", "2026-05-02 16:00", "site_visit", "social", None),
            ("u3", "2026-05-03 10:00", "booking_completed", None, 40.0),  # direct
            ("u4", "2026-06-28 10:00", "site_visit", "social", None),  # censored
        ]
    )


def test_top_paths_of_reference_table():
    tp = top_paths(D1, n=3)
    t = tp.to_frame()
    assert t["path"].tolist() == [("A", "B"), ("A",), ("B", "C")]  # 15, 13, 10 journeys
    assert t["journeys"].tolist() == [15, 13, 10]
    assert t["conversions"].tolist() == [10, 3, 6]
    assert t["conversion_rate"].tolist() == pytest.approx([10 / 15, 3 / 13, 6 / 10])
    assert t["share"].tolist() == pytest.approx([15 / 82, 13 / 82, 10 / 82])
    low, high = proportion_confint(10, 15, alpha=0.05, method="wilson")
    assert (t.loc[0, "ci_low"], t.loc[0, "ci_high"]) == pytest.approx((low, high), rel=1e-12)
    assert tp.total_journeys == 82 and tp.total_paths == 8
    assert "top 3 of 8 distinct paths cover 46.3% of 82 journeys" in tp.summary()
    # ties in journeys are broken by conversions, then path: A > C and C both have 10 ... (B,C) 10 with 6 conv first
    full = top_paths(D1, n=20).to_frame()
    assert full["path"].tolist()[2:5] == [("B", "C"), ("A", "C"), ("C",)]
    assert full["share"].sum() == pytest.approx(1.0)


def test_top_paths_from_journeys_and_events_agree(log):
    j = build_journeys(log, **JOURNEY)
    a = top_paths(j).to_frame()
    b = top_paths(log, **JOURNEY).to_frame()
    c = top_paths(path_table(j)).to_frame()
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, c)
    assert dict(zip(a["path"], a["journeys"], strict=True)) == {
        ("social", "email"): 1,
        ("email", "social"): 1,
        (DIRECT,): 1,
    }


def test_top_paths_errors():
    with pytest.raises(SchemaError, match="lacks column"):
        top_paths(D1.drop(columns="non_conversions"))
    with pytest.raises(ParameterError, match="n == 0, must be >= 1"):
        top_paths(D1, n=0)
    with pytest.raises(ParameterError, match="path table already"):
        top_paths(D1, lookback="7D")


def test_transitions_exact(log):
    tr = transitions(log, **JOURNEY)
    t = tr.to_frame()
    got = {(f, to): c for f, to, c in zip(t["from"], t["to"], t["count"], strict=True)}
    assert got == {
        (START, "social"): 1,
        (START, "email"): 1,
        (START, CONVERSION): 1,  # the direct conversion
        ("social", "email"): 1,
        ("email", "email"): 1,
        ("email", CONVERSION): 1,
        ("email", "social"): 1,
        ("social", NULL): 1,
    }
    prob = t.groupby("from")["probability"].sum()
    assert np.allclose(prob, 1.0)
    email = t[t["from"] == "email"].set_index("to")["probability"]
    assert email.to_dict() == pytest.approx({"email": 1 / 3, CONVERSION: 1 / 3, "social": 1 / 3})
    times = t.set_index(["from", "to"])["median_time"]
    assert times[("social", "email")] == pd.Timedelta("2h")
    assert times[("email", CONVERSION)] == pd.Timedelta("1h")
    assert times[("email", "social")] == pd.Timedelta("6h")
    assert pd.isna(times[(START, "social")])
    m = tr.matrix()
    assert m.index[0] == START and list(m.columns[-2:]) == [CONVERSION, NULL]
    assert np.allclose(m.sum(axis=1), 1.0)


def test_transitions_collapse_censored_and_stage(log):
    t = transitions(log, **JOURNEY, collapse_repeats=True).to_frame()
    assert not ((t["from"] == t["to"]) & (t["from"] == "email")).any()
    assert t.set_index(["from", "to"]).loc[("email", CONVERSION), "median_time"] == pd.Timedelta(
        "2h"
    )
    t = transitions(log, **JOURNEY, include_censored=True).to_frame()
    assert t.set_index(["from", "to"]).loc[("social", END), "count"] == 1
    st = transitions(log, **JOURNEY, level="stage", collapse_repeats=True).to_frame()
    pairs = set(zip(st["from"], st["to"], strict=True))
    assert ("awareness", "consideration") in pairs and ("consideration", CONVERSION) in pairs


def test_flow_reconciles(log):
    fl = flow(log, steps=2, top=1, **JOURNEY)
    nodes, links = fl.nodes, fl.links
    # u1: social > email (repeats collapsed) > CONVERSION; u2: email > social > NULL; u3: (direct) > CONVERSION
    step1 = nodes[nodes["step"] == 1].set_index("node")["journeys"].to_dict()
    assert sum(step1.values()) == 3
    assert OTHER in step1  # top=1 keeps one name per step
    conv = nodes[nodes["node"] == CONVERSION]
    assert conv["journeys"].sum() == 2 and conv["conversions"].sum() == 2
    assert set(conv["step"]) == {2, 3}
    for (step, node), n in nodes.set_index(["step", "node"])["journeys"].items():
        incoming = links[(links["target_step"] == step) & (links["target"] == node)][
            "journeys"
        ].sum()
        outgoing = links[(links["source_step"] == step) & (links["source"] == node)][
            "journeys"
        ].sum()
        if step > 1:
            assert incoming == n
        if node not in (CONVERSION, NULL, END):
            assert outgoing == n


def test_flow_plot_and_interactive(log, tmp_path):
    fl = flow(log, steps=3, **JOURNEY)
    ax = fl.plot()
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "touch 1",
        "touch 2",
        "touch 3",
        "outcome",
    ]
    ax.figure.savefig(tmp_path / "flow.png")
    fig = fl.interactive()
    sankey = fig.data[0]
    assert sankey.type == "sankey"
    assert sum(sankey.link.value) == fl.links["journeys"].sum()
    html = fig.to_html(include_plotlyjs=True, full_html=True)
    assert "Plotly.newPlot" in html and len(html) > 1_000_000  # plotly.js inline: works offline
    assert "Journey flow" in fl._repr_html_()


def test_flow_and_transition_plots_render(log, tmp_path):
    tr = transitions(log, **JOURNEY)
    ax = tr.plot()
    assert ax.get_ylabel() == "from"
    ax.figure.savefig(tmp_path / "transitions.png")
    ax = top_paths(D1).plot()
    assert ax.get_yticklabels()[0].get_text() == "A > B"
    ax.figure.savefig(tmp_path / "top_paths.png")


def test_flow_errors(log):
    with pytest.raises(ParameterError, match="steps == 0, must be >= 1"):
        flow(log, steps=0)
    with pytest.raises(ParameterError, match="level == 'chanel'.*did you mean 'channel'"):
        transitions(log, level="chanel")


def test_sample_flows(small_sample):
    j = build_journeys(
        small_sample.events, conversion="booking_completed", stage_map=small_sample.stage_map
    )
    tr = transitions(j)
    t = tr.to_frame()
    assert np.allclose(t.groupby("from")["probability"].sum(), 1.0)
    closed = j.journeys[~j.journeys["censored"]]
    assert t.loc[t["from"] == START, "count"].sum() == len(closed)
    assert t.loc[t["to"] == CONVERSION, "count"].sum() == closed["converted"].sum()
    fl = flow(j, steps=4, top=5)
    assert fl.nodes.loc[fl.nodes["step"] == 1, "journeys"].sum() == len(closed)
    assert (
        fl.nodes.loc[fl.nodes["node"] == CONVERSION, "journeys"].sum() == closed["converted"].sum()
    )
    tp = top_paths(j, n=10).to_frame()
    assert tp["share"].between(0, 1).all() and (tp["conversions"] <= tp["journeys"]).all()


def test_event_level_defaults_agree_between_top_paths_and_transitions(log):
    tp = top_paths(log, level="event", **JOURNEY).to_frame()
    tr = transitions(log, level="event", **JOURNEY).to_frame()
    starts = tr[tr["from"] == START].set_index("to")["count"].to_dict()
    firsts = (
        tp.assign(first=tp["path"].map(lambda p: p[0])).groupby("first")["journeys"].sum().to_dict()
    )
    assert starts == {CONVERSION if k == DIRECT else k: v for k, v in firsts.items()}


def test_plots_draw_on_the_axes_given(log):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    assert top_paths(D1).plot(ax=axes[0]) is axes[0]
    assert transitions(log, **JOURNEY).plot(ax=axes[1]) is axes[1]
    assert flow(log, **JOURNEY).plot(ax=axes[2]) is axes[2]
    plt.close(fig)


def test_journeys_from_events_need_a_conversion_that_occurs(log):
    with pytest.raises(
        ParameterError, match=r"transitions\(\) builds journeys from events and needs conversion="
    ):
        transitions(log, stage_map=STAGES)
    with pytest.raises(ParameterError, match=r"flow\(\) builds journeys"):
        flow(log, stage_map=STAGES)
    with pytest.raises(ParameterError, match=r"top_paths\(\) builds journeys"):
        top_paths(log, stage_map=STAGES)
    for func in (transitions, flow, top_paths):
        with pytest.raises(UnknownNameError) as info:
            func(log, conversion="booking_complete", stage_map=STAGES)
        assert info.value.names == ("booking_complete",)
        assert (
            "conversion event 'booking_complete' occurs in no row (did you mean 'booking_completed'?)"
            in str(info.value)
        )
    with pytest.raises(
        UnknownNameError, match="touch event 'site_vist'.*did you mean 'site_visit'"
    ):
        transitions(log, touch_events=["site_vist"], **JOURNEY)
    with pytest.raises(ParameterError, match="No stage map given"):
        transitions(log, conversion="booking_completed")


def test_journeys_from_a_relation_and_a_parquet_file_are_checked_too(log, tmp_path):
    import duckdb

    path = tmp_path / "events.parquet"
    log.to_parquet(path)
    for source in (duckdb.connect().from_df(log), path, [path]):
        with pytest.raises(UnknownNameError, match="'booking_complete'"):
            transitions(source, conversion="booking_complete", stage_map=STAGES)
    pd.testing.assert_frame_equal(
        transitions(path, **JOURNEY).to_frame(), transitions(log, **JOURNEY).to_frame()
    )


def test_conversion_stage_map_and_lookback_from_the_project_file(log):
    project = Project.from_dict({
        "data": {"events": {"path": "events.csv"}},
        "journey": {"conversion": "booking_completed", "lookback": "30D"},
        "stages": STAGES.to_dict(),
    })  # fmt: skip
    for func in (transitions, flow, top_paths):
        got = func(log, project=project, period_end=END_OF_PERIOD).to_frame()
        pd.testing.assert_frame_equal(got, func(log, **JOURNEY).to_frame())
    # built journeys keep their rules; the project gives the stages of level="stage"
    journeys = build_journeys(log, **JOURNEY)
    pd.testing.assert_frame_equal(
        transitions(journeys, level="stage", project=project).to_frame(),
        transitions(journeys, level="stage", stage_map=STAGES).to_frame(),
    )
