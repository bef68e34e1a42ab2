"""The findings ledger: appending months, re-runs, concurrent writers, history and fix timelines."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import shared_file
from journeylab.actions.ledger_file import LEDGER_NAME, append_findings, ledger_path, read_ledger
from journeylab.actions.ledger_fixes import experiments_addressing, fix_timeline
from journeylab.actions.ledger_history import RESOLVED, finding_history
from journeylab.core.errors import DataError, ParameterError, SchemaError
from journeylab.core.project import Project
from journeylab.maps.findings import FINDING_FIELDS

MOBILE = "segment_gap:booking_started→booking_completed:device=mobile"
NIGHT = "timing:site_visit→booking_started:hour_of_day=00:00-03:00"
CHANGE = "change_vs_previous:site_visit→booking_started:month="


def finding(
    fid: str = MOBILE,
    *,
    rank: int = 1,
    vas: float = 1000.0,
    half: float = 200.0,
    value: float = 0.30,
    benchmark: float = 0.40,
    **extra,
) -> dict:
    """A finding record with every field of metrics.json, as FindingsResult.records() writes it."""
    kind, step, rest = fid.split(":", 2)
    dimension, _, segment = rest.partition("=")
    record = {
        "rank": rank,
        "id": fid,
        "kind": kind,
        "step": step,
        "dimension": dimension,
        "segment": segment,
        "reached": 1200,
        "value": value,
        "benchmark": benchmark,
        "benchmark_label": "other users at the step",
        "difference": value - benchmark,
        "difference_ci_low": value - benchmark - 0.02,
        "difference_ci_high": value - benchmark + 0.02,
        "p_value": 1e-5,
        "q_value": 1e-4,
        "value_at_stake": vas,
        "value_at_stake_ci_low": vas - half,
        "value_at_stake_ci_high": vas + half,
        "counted": True,
        "overlaps": None,
        "text": f"{segment or 'the month'}: {step} at {value:.0%}; worth ${vas:,.0f} a month.",
    }
    record.update(extra)
    assert set(record) >= set(FINDING_FIELDS)
    return record


def lines(root: Path) -> list[dict]:
    path = ledger_path(root)
    assert path == root / LEDGER_NAME == root / "findings.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# -- two consecutive months --------------------------------------------------------
def test_a_finding_keeps_its_id_and_is_open_two_months(tmp_path):
    append_findings(
        tmp_path,
        "2026-09",
        [finding(vas=1000), finding(NIGHT, rank=2, vas=400)],
        project="Shop",
        run_id="sep-run",
        run_time="2026-10-02T06:00:00+00:00",
    )
    append_findings(
        tmp_path,
        "2026-10",
        [finding(vas=1500), finding(CHANGE, rank=2, vas=300)],
        project="Shop",
        run_id="oct-run",
    )
    written = lines(tmp_path)
    assert [(e["month"], e["finding"]["id"]) for e in written] == [
        ("2026-09", MOBILE),
        ("2026-09", NIGHT),
        ("2026-10", MOBILE),
        ("2026-10", CHANGE),
    ]
    assert written[0]["project"] == "Shop" and written[0]["run_id"] == "sep-run"
    assert written[0]["run_time"] == "2026-10-02T06:00:00+00:00"

    ledger = read_ledger(tmp_path)
    assert ledger.loc[ledger["id"] == MOBILE, "month"].tolist() == ["2026-09", "2026-10"]
    history = finding_history(ledger, "2026-10")
    frame = history.to_frame().set_index("id")
    mobile = frame.loc[MOBILE]
    assert (
        mobile["months_open"] == 2
        and mobile["months_seen"] == 2
        and mobile["first_seen"] == "2026-09"
    )
    assert mobile["trend_months"] == ["2026-09", "2026-10"] and mobile["trend"] == [1000.0, 1500.0]
    # 1500 > the September interval's high end (1000 + 200): growing
    assert mobile["status"] == "growing"
    assert frame.loc[CHANGE, "status"] == "new" and frame.loc[CHANGE, "months_open"] == 1
    # found in September, not in October
    assert frame.loc[NIGHT, "status"] == RESOLVED
    assert (
        np.isnan(frame.loc[NIGHT, "value_at_stake"])
        and frame.loc[NIGHT, "previous_value_at_stake"] == 400
    )
    assert list(frame.index) == [MOBILE, CHANGE, NIGHT]  # rank order, resolved last
    assert history.counts() == {
        "new": 1,
        "growing": 1,
        "persisting": 0,
        "shrinking": 0,
        RESOLVED: 1,
    }
    text = history.summary()
    assert "2 finding(s) — 1 new, 1 growing, 0 persisting, 0 shrinking" in text
    assert f"1 finding(s) of 2026-09 no longer found ({RESOLVED})" in text
    assert "open 2 month(s), first seen 2026-09" in text


@pytest.mark.parametrize(
    ("october", "status"),
    [
        (1201.0, "growing"),  # above September's high end (1000 + 200)
        (1200.0, "persisting"),  # on the edge: inside the interval
        (800.0, "persisting"),
        (799.0, "shrinking"),  # below September's low end (1000 − 200)
    ],
)
def test_growing_and_shrinking_follow_the_previous_months_interval(tmp_path, october, status):
    append_findings(tmp_path, "2026-09", [finding(vas=1000, half=200)], project="Shop")
    append_findings(tmp_path, "2026-10", [finding(vas=october, half=50)], project="Shop")
    assert finding_history(tmp_path, "2026-10").to_frame()["status"].tolist() == [status]


def test_a_month_not_reported_breaks_the_run_of_open_months(tmp_path):
    for month in ("2026-06", "2026-07", "2026-09", "2026-10"):  # August did not run
        append_findings(tmp_path, month, [finding()], project="Shop")
    row = finding_history(tmp_path, "2026-10").to_frame().iloc[0]
    assert row["first_seen"] == "2026-06" and row["months_seen"] == 4 and row["months_open"] == 2
    # and September, whose previous month is missing, counts its findings as new and says why
    september = finding_history(tmp_path, "2026-09")
    assert september.to_frame()["status"].tolist() == ["new"]
    assert "No report of 2026-08 in the ledger" in september.summary()


def test_a_month_with_no_finding_is_recorded_and_resolves_the_previous_ones(tmp_path):
    append_findings(tmp_path, "2026-09", [finding()], project="Shop")
    append_findings(tmp_path, "2026-10", [], project="Shop")
    assert lines(tmp_path)[-1]["finding"] is None
    ledger = read_ledger(tmp_path)
    assert ledger["month"].tolist() == ["2026-09", "2026-10"] and ledger["id"].tolist() == [
        MOBILE,
        None,
    ]
    history = finding_history(ledger, "2026-10")
    assert history.to_frame()[["id", "status"]].values.tolist() == [[MOBILE, RESOLVED]]
    assert "no finding this month" in history.summary()
    # history only looks back: months after the one asked for are ignored
    assert finding_history(ledger, "2026-09").to_frame()["status"].tolist() == ["new"]


# -- re-runs -------------------------------------------------------------------------
def test_a_rerun_of_a_month_replaces_its_lines(tmp_path):
    append_findings(tmp_path, "2026-09", [finding(vas=1000)], project="Shop", run_id="sep")
    append_findings(
        tmp_path, "2026-10", [finding(vas=1200), finding(NIGHT, rank=2)], project="Shop", run_id="a"
    )
    append_findings(tmp_path, "2026-10", [finding(vas=1900)], project="Shop", run_id="b")
    append_findings(tmp_path, "2026-10", [finding(vas=1900)], project="Other", run_id="other")
    written = lines(tmp_path)
    assert [(e["month"], e["project"], e["run_id"]) for e in written] == [
        ("2026-09", "Shop", "sep"),
        ("2026-10", "Other", "other"),
        ("2026-10", "Shop", "b"),
    ]
    assert written[-1]["finding"]["value_at_stake"] == 1900
    # several projects: history needs to be told which
    with pytest.raises(
        ParameterError, match=r"several projects \['Other', 'Shop'\]: pass project="
    ):
        finding_history(tmp_path, "2026-10")
    with pytest.raises(ParameterError, match="did you mean 'Shop'"):
        finding_history(tmp_path, "2026-10", project="shop ")
    assert finding_history(tmp_path, "2026-10", project="Shop").to_frame()[
        "months_open"
    ].tolist() == [2]


def test_ledger_equals_the_last_write_of_each_month(tmp_path_factory):
    """Property: after any sequence of appends (with re-runs), the ledger holds each month's last records."""
    ids = [MOBILE, NIGHT, CHANGE]

    @settings(
        max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(
        st.lists(
            st.tuples(
                st.sampled_from(["2026-08", "2026-09", "2026-10"]),
                st.lists(st.sampled_from(ids), unique=True, max_size=3),
                st.floats(0, 1e6, allow_nan=False),
            ),
            min_size=1,
            max_size=8,
        )
    )
    def check(appends):
        root = tmp_path_factory.mktemp("ledger")
        expected = {}
        for month, chosen, vas in appends:
            records = [finding(fid, rank=i + 1, vas=vas) for i, fid in enumerate(chosen)]
            append_findings(root, month, records, project="Shop")
            expected[month] = [(fid, vas) for fid in chosen]
        ledger = read_ledger(root)
        for month, want in expected.items():
            got = ledger.loc[ledger["month"] == month]
            pairs = [
                (fid, v)
                for fid, v in zip(got["id"], got["value_at_stake"], strict=True)
                if fid is not None
            ]
            assert pairs == want
            assert len(got) == max(len(want), 1)  # an empty month is one row
        assert set(ledger["month"]) == set(expected)

    check()


# -- concurrent writers ----------------------------------------------------------
def _writer(root: str, months: list[str], tag: str, rounds: int) -> None:
    for r in range(rounds):
        for month in months:
            records = [
                finding(fid, rank=i + 1, vas=float(r), text=f"{tag}-{r}")
                for i, fid in enumerate([MOBILE, NIGHT, CHANGE])
            ]
            append_findings(root, month, records, project="Shop", run_id=f"{tag}-{r}")


def test_concurrent_appends_from_two_processes_lose_no_line(tmp_path):
    ctx = multiprocessing.get_context("fork")
    own_a = [f"2025-{m:02d}" for m in range(1, 7)]
    own_b = [f"2025-{m:02d}" for m in range(7, 13)]
    shared = ["2026-01"]  # both processes re-run this month: whichever wins, its lines are whole
    procs = [
        ctx.Process(target=_writer, args=(str(tmp_path), own_a + shared, "a", 10)),
        ctx.Process(target=_writer, args=(str(tmp_path), own_b + shared, "b", 10)),
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    written = lines(tmp_path)  # every line parses
    by_month = pd.DataFrame(
        [{"month": e["month"], "run": e["run_id"], "id": e["finding"]["id"]} for e in written]
    )
    assert sorted(by_month["month"].unique()) == sorted(own_a + own_b + shared)
    for month, group in by_month.groupby("month"):
        assert sorted(group["id"]) == sorted([MOBILE, NIGHT, CHANGE]), (
            month
        )  # three lines, no duplicates
        assert group["run"].nunique() == 1, month  # all from one run
        assert group["run"].iloc[0] in ("a-9", "b-9"), month  # the last round of a writer
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []


# -- bad input -------------------------------------------------------------------
def test_a_record_missing_a_field_is_an_error_naming_it(tmp_path):
    bad = finding()
    bad["value_at_stak"] = bad.pop("value_at_stake")
    with pytest.raises(
        SchemaError,
        match=r"finding #2 of 2026-10 lacks field\(s\) 'value_at_stake' "
        r"\(did you mean 'value_at_stak'\?\)",
    ) as info:
        append_findings(tmp_path, "2026-10", [finding(NIGHT), bad], project="Shop")
    assert info.value.rows == [2] and info.value.missing_columns == ("value_at_stake",)
    assert not ledger_path(tmp_path).exists()  # nothing written


def test_bad_values_months_and_duplicate_ids_are_refused(tmp_path):
    with pytest.raises(SchemaError, match=r"month == '2026-13', must be written 'YYYY-MM'"):
        append_findings(tmp_path, "2026-13", [finding()], project="Shop")
    with pytest.raises(DataError, match=r"has value_at_stake == '1,000', must be a number or null"):
        append_findings(tmp_path, "2026-10", [finding(value_at_stake="1,000")], project="Shop")
    with pytest.raises(DataError, match="share ids"):
        append_findings(tmp_path, "2026-10", [finding(), finding(rank=2)], project="Shop")
    with pytest.raises(ParameterError, match="list of finding records"):
        append_findings(tmp_path, "2026-10", finding(), project="Shop")
    with pytest.raises(ParameterError, match="project"):
        append_findings(tmp_path, "2026-10", [finding()], project="")


def test_numpy_values_and_nan_are_written_as_json(tmp_path):
    record = finding(
        rank=np.int64(1),
        reached=np.int64(1200),
        q_value=float("nan"),
        counted=np.bool_(True),
        value_at_stake=np.float64(1000.5),
    )
    append_findings(tmp_path, "2026-10", [record], project="Shop")
    written = lines(tmp_path)[0]["finding"]
    assert (
        written["q_value"] is None
        and written["counted"] is True
        and written["value_at_stake"] == 1000.5
    )


def test_a_corrupt_line_is_an_error_with_its_line_number_and_nothing_is_overwritten(tmp_path):
    append_findings(tmp_path, "2026-09", [finding()], project="Shop")
    path = ledger_path(tmp_path)
    path.write_text(path.read_text() + '{"month": "2026-10", "proj\n', encoding="utf-8")
    before = path.read_text()
    with pytest.raises(DataError, match="line") as info:
        read_ledger(tmp_path)
    assert info.value.rows == [2] and info.value.source == str(path)
    with pytest.raises(DataError):
        append_findings(tmp_path, "2026-10", [finding()], project="Shop")
    assert path.read_text() == before


def test_reading_where_no_ledger_exists(tmp_path):
    empty = read_ledger(tmp_path)
    assert empty.empty and {"month", "project", "id", "value_at_stake"} <= set(empty.columns)
    with pytest.raises(ParameterError, match="does not exist"):
        read_ledger(tmp_path / "nowhere")
    with pytest.raises(ParameterError, match="ledger is empty"):
        finding_history(empty, "2026-10")
    append_findings(tmp_path, "2026-09", [finding()], project="Shop")
    with pytest.raises(
        ParameterError, match=r"month == '2026-10' is not in the ledger of 'Shop'.*2026-09"
    ):
        finding_history(tmp_path, "2026-10")


# -- real findings ---------------------------------------------------------------
def test_records_of_the_findings_pass_go_into_the_ledger_unchanged(tmp_path, small_sample):
    from journeylab.datasets import sample_stage_map
    from journeylab.maps.findings import find

    kw = dict(
        conversion="booking_completed",
        funnel=["site_visit", "booking_started", "booking_completed"],
        segments=["device", "channel"],
    )
    for month in ("2026-08", "2026-09", "2026-10"):
        result = find(small_sample.events, sample_stage_map(), month=month, **kw)
        append_findings(tmp_path, month, result, project="Home services sample")
    ledger = read_ledger(tmp_path)
    october = find(small_sample.events, sample_stage_map(), month="2026-10", **kw).records()
    stored = ledger.loc[ledger["month"] == "2026-10"].to_dict("records")
    assert [r["id"] for r in stored] == [r["id"] for r in october] and october
    for mine, theirs in zip(stored, october, strict=True):
        for key in FINDING_FIELDS:
            assert mine[key] == theirs[key] or (pd.isna(mine[key]) and theirs[key] is None), key
    history = finding_history(ledger, "2026-10").to_frame()
    lead = history.iloc[0]
    assert lead["id"] == october[0]["id"]
    seen = ledger.loc[ledger["id"] == lead["id"], "month"].tolist()
    assert lead["months_seen"] == len(seen) and lead["first_seen"] == seen[0]


# -- plots -----------------------------------------------------------------------
def _four_months(root: Path) -> None:
    months = ["2026-07", "2026-08", "2026-09", "2026-10"]
    mobile = [(1000, 0.30), (1300, 0.28), (700, 0.33), None]  # fixed in September, gone in October
    night = [None, (400, 0.10), (420, 0.10), (900, 0.08)]
    for i, month in enumerate(months):
        records = []
        if mobile[i]:
            records.append(finding(MOBILE, rank=1, vas=mobile[i][0], value=mobile[i][1]))
        if night[i]:
            records.append(
                finding(
                    NIGHT,
                    rank=len(records) + 1,
                    vas=night[i][0],
                    half=100,
                    value=night[i][1],
                    benchmark=0.15,
                )
            )
        append_findings(root, month, records, project="Shop", run_id=f"run-{month}")


def test_history_plot_draws_one_panel_per_top_finding(tmp_path):
    import matplotlib.pyplot as plt

    _four_months(tmp_path)
    history = finding_history(tmp_path, "2026-09")
    axes = history.plot()
    assert len(axes) == 2
    first = axes[0].lines[0].get_ydata()
    assert list(first) == [1000, 1300, 700]  # July → September, the months up to the one asked for
    second = axes[1].lines[0].get_ydata()
    assert np.isnan(second[0]) and list(second[1:]) == [400, 420]
    axes[0].figure.savefig(tmp_path / "history.png")
    assert (tmp_path / "history.png").stat().st_size > 10_000
    plt.close("all")
    _, one = plt.subplots()
    assert (
        history.plot(ax=one) is one and len(one.containers) == 2
    )  # one error-bar series per finding
    html = history._repr_html_()
    assert "Findings over time" in html and "$1,300 → $700" in html
    plt.close("all")


# -- fix timelines ---------------------------------------------------------------
def _readout():
    from journeylab.experiments import analyze

    # 1,000 users per arm; 30.0% of control and 36.0% of the short form book
    frame = pd.DataFrame(
        {
            "variant": ["control"] * 1000 + ["short_form"] * 1000,
            "booked": [1] * 300 + [0] * 700 + [1] * 360 + [0] * 640,
        }
    )
    return analyze(frame, metrics=[{"name": "booked", "kind": "binary"}])


def test_fix_timeline_splits_the_months_around_the_experiment(tmp_path):
    _four_months(tmp_path)
    assignments = pd.DataFrame(
        {
            "user_id": ["u1", "u2", "u3"],
            "variant": ["control", "short_form", "short_form"],
            "assigned_at": pd.to_datetime(
                ["2026-09-03 10:00", "2026-09-15 12:00", "2026-09-28 23:00"], utc=True
            ),
        }
    )
    readout = _readout()
    timeline = fix_timeline(
        tmp_path, MOBILE, readout, assignments=assignments, experiment="short_form"
    )
    frame = timeline.to_frame()
    assert frame["month"].tolist() == ["2026-07", "2026-08", "2026-09", "2026-10"]
    assert frame["phase"].tolist() == ["before", "before", "during", "after"]
    assert frame["found"].tolist() == [True, True, True, False]
    assert frame["rate"].tolist()[:3] == [0.30, 0.28, 0.33] and np.isnan(frame["rate"].iloc[3])
    assert frame["value_at_stake"].tolist()[:3] == [1000, 1300, 700]
    assert (timeline.start, timeline.end) == ("2026-09", "2026-09")
    phases = timeline.phase_summary().set_index("phase")
    assert (
        phases.loc["before", "mean_value_at_stake"] == 1150
        and phases.loc["after", "months_found"] == 0
    )
    # the readout beside it is analyze's own table, unchanged
    expected = readout.to_frame()
    pd.testing.assert_series_equal(timeline.readout_frame()["abs_lift"], expected["abs_lift"])
    text = timeline.summary()
    assert "found in 3 of 4 reported month(s)" in text
    assert "Experiment (short_form) ran from 2026-09 to 2026-09." in text
    assert "after: 2026-10 not found (resolved or below the threshold)." in text
    assert "short_form on booked: +6.0 pp" in text  # 36.0% − 30.0%
    assert "Experiment readout — short_form" in timeline._repr_html_()


def test_fix_timeline_with_a_start_only_runs_on_and_without_dates_has_no_phases(tmp_path):
    _four_months(tmp_path)
    running = fix_timeline(tmp_path, NIGHT, start="2026-08-20")
    assert running.to_frame()["phase"].tolist() == ["before", "during", "during", "during"]
    assert running.to_frame()["found"].tolist() == [False, True, True, True]
    assert "still running" in running.summary()
    bare = fix_timeline(read_ledger(tmp_path), NIGHT)
    assert bare.to_frame()["phase"].isna().all() and "No experiment dates given" in bare.summary()


def test_fix_timeline_errors(tmp_path):
    _four_months(tmp_path)
    with pytest.raises(
        ParameterError,
        match="did you mean 'segment_gap:booking_started→booking_completed:device=mobile'",
    ):
        fix_timeline(tmp_path, MOBILE.replace("mobile", "mobil"))
    with pytest.raises(SchemaError, match="no 'assigned_at' column"):
        fix_timeline(
            tmp_path, MOBILE, assignments=pd.DataFrame({"user_id": ["a"], "variant": ["b"]})
        )
    with pytest.raises(ParameterError, match=r"end \(2026-07\) is before start \(2026-09\)"):
        fix_timeline(tmp_path, MOBILE, start="2026-09", end="2026-07-31")
    with pytest.raises(ParameterError, match="not a date"):
        fix_timeline(tmp_path, MOBILE, start="September")


def test_fix_timeline_plot(tmp_path):
    import matplotlib.pyplot as plt

    _four_months(tmp_path)
    timeline = fix_timeline(
        tmp_path, MOBILE, _readout(), start="2026-09-03", end="2026-09-28", experiment="short_form"
    )
    ax = timeline.plot()
    assert list(ax.lines[0].get_ydata()[:3]) == [1000, 1300, 700]
    spans = [p for p in ax.patches if p.get_label().startswith("experiment")]
    assert len(spans) == 1
    ax.figure.savefig(tmp_path / "timeline.png")
    plt.close("all")


def test_the_project_file_links_experiments_to_findings(tmp_path):
    _four_months(tmp_path)
    project = Project.from_dict(
        {
            "data": {"events": {"path": "events.csv"}},
            "journey": {"conversion": "booking_completed"},
            "stages": {
                "consideration": {"events": ["site_visit"]},
                "purchase": {"events": ["booking_completed"]},
            },
            "experiments": {
                "short_form": {"addresses": MOBILE, "metric": "booked"},
                "night_chat": {"metric": "x"},
            },
        }
    )
    assert experiments_addressing(project, tmp_path) == {MOBILE: ["short_form"]}
    typo = {"short_form": {"addresses": MOBILE.replace("booking_completed", "booking_complete")}}
    with pytest.raises(ParameterError, match=r"experiments.short_form.addresses == .*did you mean"):
        experiments_addressing(typo, tmp_path)


def test_a_real_experiment_readout_beside_the_timeline(tmp_path):
    """Hillstrom's e-mail test: Womens E-Mail vs No E-Mail visit rates 0.151400 vs 0.106167 (its SOURCE.md)."""
    from journeylab.experiments import analyze

    path = shared_file(
        "hillstrom",
        "Kevin_Hillstrom_MineThatData_E-MailAnalytics_DataMiningChallenge_2008.03.20.csv",
    )
    data = pd.read_csv(path)
    data = data.loc[data["segment"].isin(["Womens E-Mail", "No E-Mail"])]
    readout = analyze(
        data, variant="segment", control="No E-Mail", metrics=[{"name": "visit", "kind": "binary"}]
    )
    _four_months(tmp_path)
    timeline = fix_timeline(
        tmp_path, NIGHT, readout, start="2026-09", end="2026-09", experiment="womens_email"
    )
    row = timeline.readout_frame().iloc[0]
    assert row["abs_lift"] == pytest.approx(3238 / 21387 - 2262 / 21306, abs=1e-12)
    assert "Womens E-Mail on visit: +4.5 pp" in timeline.summary()
