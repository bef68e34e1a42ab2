"""The monthly report's computations: stage KPIs against the previous month, trend, metrics.json schema."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from statsmodels.stats import rates

from journeylab.core.errors import DataError, NotComputableError
from journeylab.core.project import Project
from journeylab.datasets import SAMPLE_STAGE_MAP, make_sample
from journeylab.reports.monthly import kpi_trend, metrics_document, stage_kpis, validate_metrics


@pytest.fixture(scope="module")
def sample():
    return make_sample(seed=11, n_users=3_000)


@pytest.fixture(scope="module")
def project():
    return Project.from_dict(
        {
            "name": "Sample",
            "data": {"sample": {}},
            "journey": {"conversion": "booking_completed"},
            "funnel": ["site_visit", "booking_started", "booking_completed"],
            "stages": SAMPLE_STAGE_MAP,
            "labels": {"booked_jobs": "Jobs booked"},
        }
    )


def test_stage_kpis_come_from_the_data_for_both_months(sample, project):
    kpis = stage_kpis(sample.events, project, "2026-10").set_index("kpi")
    ev = sample.events
    oct_ = ev[(ev["timestamp"] >= "2026-10-01") & (ev["timestamp"] < "2026-11-01")]
    sep = ev[(ev["timestamp"] >= "2026-09-01") & (ev["timestamp"] < "2026-10-01")]
    assert kpis.loc["sessions", "value"] == (oct_["event"] == "site_visit").sum()
    assert kpis.loc["sessions", "previous"] == (sep["event"] == "site_visit").sum()
    assert (
        kpis.loc["visitors", "value"]
        == oct_.loc[oct_["event"] == "site_visit", "user_id"].nunique()
    )
    assert kpis.loc["revenue", "value"] == pytest.approx(
        oct_.loc[oct_["event"] == "booking_completed", "value"].sum()
    )
    assert kpis.loc["booked_jobs", "label"] == "Jobs booked"
    row = kpis.loc["sessions"]
    assert row["change"] == pytest.approx(row["value"] / row["previous"] - 1)
    # distinct users: the Wald test of two Poisson counts (statsmodels)
    users = kpis.loc["visitors"]
    p = rates.test_poisson_2indep(users["value"], 1.0, users["previous"], 1.0, method="wald").pvalue
    assert users["p_value"] == pytest.approx(p, rel=1e-9)
    # event counts allow for heavy users: a wider test than the plain Poisson one
    plain = rates.test_poisson_2indep(row["value"], 1.0, row["previous"], 1.0, method="wald").pvalue
    assert row["p_value"] >= plain - 1e-12
    assert not math.isnan(kpis.loc["revenue", "p_value"])  # money is tested as a compound total
    assert (
        kpis.loc["sessions", "change_ci_low"]
        < row["change"]
        < kpis.loc["sessions", "change_ci_high"]
    )


def test_first_month_has_no_previous_value(sample, project):
    kpis = stage_kpis(sample.events, project, "2026-05")
    assert kpis["previous"].isna().all() and kpis["change"].isna().all()
    assert not kpis["significant"].any()


def test_trend_leaves_months_before_the_data_out(sample, project):
    trend = kpi_trend(sample.events, project, "2026-06", months=6)
    assert sorted(trend["month"].unique()) == ["2026-05", "2026-06"]
    full = kpi_trend(sample.events, project, "2026-10", months=6)
    assert sorted(full["month"].unique()) == [
        "2026-05",
        "2026-06",
        "2026-07",
        "2026-08",
        "2026-09",
        "2026-10",
    ]
    oct_kpis = stage_kpis(sample.events, project, "2026-10").set_index("kpi")["value"]
    last = full[full["month"] == "2026-10"].set_index("kpi")["value"]
    pd.testing.assert_series_equal(last.sort_index(), oct_kpis.sort_index(), check_names=False)


def test_trend_counts_distinct_users_whatever_the_id_storage(sample, project):
    """Users KPIs: distinct non-missing ids per month, with Arrow text ids (numbered once) or objects."""
    events = sample.events.copy()
    events.loc[events.index[::97], "user_id"] = None
    users_kpis = {k.name for s in project.stage_map for k in s.kpis if k.measure == "users"}
    assert users_kpis
    trends = []
    for ids in ("str", "object"):
        trend = kpi_trend(events.assign(user_id=events["user_id"].astype(ids)), project, "2026-10")
        trends.append(trend.loc[trend["kpi"].isin(users_kpis)].reset_index(drop=True))
        month = events["timestamp"].dt.tz_convert("UTC").dt.strftime("%Y-%m")
        for row in trends[-1].itertuples():
            kpi = next(k for s in project.stage_map for k in s.kpis if k.name == row.kpi)
            rows = (month == row.month) & events["event"].isin(kpi.events)
            assert row.value == events.loc[rows, "user_id"].nunique()
    pd.testing.assert_frame_equal(trends[0], trends[1])


def test_metrics_document_validates_and_rejects_what_does_not_fit(sample, project):
    kpis = stage_kpis(sample.events, project, "2026-10")
    doc = metrics_document(
        month="2026-10",
        project=project,
        headline={"users": 10},
        kpis=kpis,
        findings=[],
        sections={"channels": "shown"},
    )
    assert validate_metrics(json.loads(json.dumps(doc, allow_nan=False))) == []
    bad = dict(doc, month="Oct 2026", findings=[{"rank": "one"}])
    problems = validate_metrics(bad)
    assert any("metrics.month" in p for p in problems)
    assert any("metrics.findings[0]: 'id' is missing" in p for p in problems)
    with pytest.raises(DataError, match="does not fit its schema"):
        metrics_document(
            month="10/2026", project=project, headline={}, kpis=kpis, findings=[], sections={}
        )


def test_sections_without_their_table_say_why_in_one_line():
    """A workspace without feedback, assignments or channels: each section records its one-line reason."""
    from dataclasses import replace

    from journeylab.reports import customer_sections, journey_sections, sections
    from journeylab.reports.workspace import open_report_workspace

    ws = open_report_workspace(n_users=1500, seed=3)
    ws = replace(ws, feedback=None, assignments=None)
    ws.events.frame = ws.events.frame.drop(columns="channel")
    said: list[str] = []
    statuses: dict[str, str] = {}
    for name, run in (
        ("voice", lambda: customer_sections.voice_section(ws, "2026-10", say=said.append)),
        (
            "experiments",
            lambda: customer_sections.experiments_section(ws, "2026-10", say=said.append),
        ),
        (
            "channels",
            lambda: journey_sections.channels_section(
                ws, "2026-10", n_boot=0, seed=1, money=None, say=said.append
            ),
        ),
    ):
        with sections.section(statuses, name, said.append):
            run()
    assert statuses == {
        "voice": "no feedback table: no survey answers to show.",
        "experiments": "no assignments table: no experiment to read out.",
        "channels": "the events carry no channel: no attribution.",
    }
    assert said == [f"*Not shown: {sections.md(reason)}*" for reason in statuses.values()]


def test_retention_with_a_short_history_says_why_the_repeat_rate_is_missing_and_goes_on():
    """Purchases over less than 90 days: the repeat rate gives its reason in one line, churn follows."""
    from types import SimpleNamespace

    from journeylab.core.safe_text import md
    from journeylab.reports import customer_sections
    from journeylab.reports.prose import Money

    rows = [(f"u{i}", f"2026-10-{1 + i % 28:02d} 12:00", 20.0 + i) for i in range(40)]
    rows += [(f"u{i}", f"2026-10-{2 + i % 27:02d} 15:00", 9.0) for i in range(0, 40, 3)]
    frame = pd.DataFrame(rows, columns=["user_id", "timestamp", "value"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    ws = SimpleNamespace(transactions=SimpleNamespace(frame=frame), project=None)
    said: list[str] = []
    with pytest.raises(NotComputableError, match="fewer than 20 repeat customers"):
        customer_sections.retention_section(ws, "2026-10", money=Money("$"), say=said.append)
    reason = [s for s in said if s.startswith("*Repeat-purchase rate not shown:")]
    assert len(reason) == 1 and md("less than 90 days before 2026-11-01") in reason[0]
    assert any("churn" in s.lower() for s in said[said.index(reason[0]) + 1 :])


def test_first_month_of_data_says_once_that_there_is_no_previous_month(sample, project):
    from journeylab.maps.findings import find
    from journeylab.reports import sections
    from journeylab.reports.prose import Money

    head = sections.headline(sample.events, project, "2026-05")
    assert "users_previous" not in head
    kpis = stage_kpis(sample.events, project, "2026-05")
    found = find(
        sample.events,
        project.stage_map,
        month="2026-05",
        conversion="booking_completed",
        funnel=["site_visit", "booking_started", "booking_completed"],
    )
    text = sections.executive_summary(project, "2026-05", head, kpis, found, {}, Money("$"))
    assert text.count("no change to show") == 1 and "no events in 2026-04" in text
    trend = kpi_trend(sample.events, project, "2026-05")
    with pytest.raises(NotComputableError, match="fewer than two months of data"):
        sections.plot_trend(trend, project)
