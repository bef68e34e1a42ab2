"""The project file, `journeylab init` and `journeylab check` on data the product did not make."""

from __future__ import annotations

import textwrap

import pandas as pd
import pytest
import yaml

from journeylab.core.errors import SchemaError
from journeylab.core.project import Project, display_label, load_project
from journeylab.datasets import make_sample
from journeylab.io.infer import guess_project, render_project
from journeylab.reports.check import check_project
from journeylab.reports.cli import main
from journeylab.reports.workspace import open_workspace

RENAME = {"user_id": "visitor", "timestamp": "ts", "event": "action", "channel": "source"}


@pytest.fixture(scope="module")
def foreign_log(tmp_path_factory):
    """The sample re-labelled as another company's export: its own column names."""
    folder = tmp_path_factory.mktemp("export")
    events = make_sample(seed=5, n_users=1_500).events.rename(columns=RENAME)
    events.to_parquet(folder / "events.parquet")
    return folder


def _spec(**over):
    spec = {
        "name": "Acme",
        "data": {
            "events": {"path": "events.parquet", "columns": {v: k for k, v in RENAME.items()}}
        },
        "journey": {"conversion": "booking_completed", "value_per_conversion": 250},
        "stages": {
            "awareness": {"events": ["ad_impression"]},
            "consideration": {
                "events": [
                    "site_visit",
                    "service_page_view",
                    "quote_request",
                    "phone_call",
                    "callback",
                ]
            },
            "purchase": {"events": ["booking_started", "booking_completed", "job_completed"]},
            "retention": {"events": ["repeat_booking"]},
            "advocacy": {"events": ["review_*", "referral_sent"]},
        },
        "funnel": ["site_visit", "booking_started", "booking_completed"],
        "segments": ["device", "channel"],
    }
    spec.update(over)
    return spec


def _write(folder, spec, name="journeylab.yaml"):
    path = folder / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"jouney": {}}, r"Unknown key jouney \(did you mean 'journey'\?\)"),
        (
            {"journey": {"conversoin": "x"}},
            r"Unknown key journey.conversoin \(did you mean 'conversion'\?\)",
        ),
        ({"journey": {}}, "does not say what counts as a conversion"),
        ({"stages": None}, "lists no stages"),
        ({"timezone": "Mars/Olympus"}, "not an IANA time zone"),
        ({"currency": "dollars"}, "not an ISO 4217 code"),
        ({"funnel": ["site_visit"]}, "at least two steps"),
        (
            {"data": {"events": {"paht": "x.csv"}}},
            r"Unknown key data.events.paht \(did you mean 'path'\?\)",
        ),
        ({"data": {}}, "names no event data"),
        ({"privacy": {"min_users": 0}}, r"privacy.min_users == 0: must be a whole number >= 1"),
    ],
)
def test_invalid_project_files_name_the_key_and_suggest(change, message):
    with pytest.raises(SchemaError, match=message):
        Project.from_dict(_spec(**change))


def test_paths_resolve_against_the_project_file(tmp_path):
    (tmp_path / "sub").mkdir()
    path = _write(tmp_path / "sub", _spec())
    project = load_project(path)
    assert project.tables["events"].path == (tmp_path / "sub" / "events.parquet")
    assert project.tables["events"].columns == {
        "visitor": "user_id",
        "ts": "timestamp",
        "action": "event",
        "source": "channel",
    }
    assert project.stage_map.names == [
        "awareness",
        "consideration",
        "purchase",
        "retention",
        "advocacy",
    ]
    assert load_project(tmp_path / "sub") == project  # a folder means its journeylab.yaml


def test_missing_project_file_says_how_to_write_one(tmp_path):
    with pytest.raises(SchemaError, match="journeylab init"):
        load_project(tmp_path / "nope.yaml")


def test_display_labels_default_and_override():
    project = Project.from_dict(_spec(labels={"booking_started": "Booking form opened"}))
    assert project.label("booking_started") == "Booking form opened"
    assert project.label("repeat_booking") == "Repeat booking"
    assert display_label("(direct)") == "(direct)"
    assert project.currency_sign == "$"


def test_workspace_from_a_project_file_on_a_foreign_log(foreign_log):
    path = _write(foreign_log, _spec())
    ws = open_workspace(project=path)
    assert ws.project.name == "Acme"
    assert {"user_id", "timestamp", "event", "channel"} <= set(ws.events.frame.columns)
    raw = pd.read_parquet(foreign_log / "events.parquet")
    assert ws.events.quality.rows_read == len(raw)
    assert ws.events.frame["event"].nunique() == raw["action"].nunique()


def test_a_misspelt_name_fails_closed_with_suggestions(foreign_log):
    path = _write(
        foreign_log,
        _spec(funnel=["site_visit", "booking_startd", "booking_completed"], segments=["devise"]),
        "bad.yaml",
    )
    with pytest.raises(SchemaError) as err:
        open_workspace(project=path)
    text = str(err.value)
    assert "funnel: 'booking_startd' occurs in no row (did you mean 'booking_started'?)" in text
    assert (
        "segments: 'devise' is not a column of the events or users table (did you mean 'device'?)"
        in text
    )


def test_init_guesses_columns_conversion_funnel_and_stages(foreign_log):
    guess = guess_project(foreign_log)
    assert guess.mapping() == {
        "ts": "timestamp",
        "visitor": "user_id",
        "action": "event",
        "source": "channel",
        "value": "value",
        "session_id": "session_id",
    }
    evidence = {g.role: g.evidence for g in guess.columns}
    assert evidence["timestamp"] == "100% parse as times"
    assert evidence["user_id"].startswith("≈")  # approximate distinct counts say so
    assert guess.conversion == "booking_completed"
    assert guess.funnel == ["site_visit", "booking_started", "booking_completed"]
    assert guess.stage_of["ad_impression"] == "awareness"
    assert guess.stage_of["review_posted"] == "advocacy"
    assert guess.stage_of["repeat_booking"] == "retention"
    assert {"device", "region"} <= {name for name, _ in guess.segments}
    counts = dict(guess.event_counts)
    raw = pd.read_parquet(foreign_log / "events.parquet")
    assert counts == raw["action"].value_counts().to_dict()


def test_init_tries_text_columns_on_their_first_values_and_says_so(
    foreign_log, monkeypatch, tmp_path
):
    from journeylab.io import infer

    csv = tmp_path / "events.csv"  # every column is text in a CSV file
    pd.read_parquet(foreign_log / "events.parquet").to_csv(csv, index=False)
    full = guess_project(csv)
    assert {g.role: g.evidence for g in full.columns}["timestamp"] == "100% parse as times"
    monkeypatch.setattr(infer, "SNIFF_ROWS", 50)
    guess = guess_project(csv)
    assert guess.mapping() == full.mapping()
    evidence = {g.role: g.evidence for g in guess.columns}
    assert evidence["timestamp"] == "100% of the first 50 values parse as times"


def test_init_then_check_accepts_after_the_edits_the_comments_ask_for(
    foreign_log, tmp_path, capsys
):
    out = tmp_path / "journeylab.yaml"
    assert main(["init", "--data", str(foreign_log), "--out", str(out)]) == 0
    text = out.read_text()
    assert "CHECK" in text and "timestamp <- `ts`: 100% parse as times" in text
    assert main(["init", "--data", str(foreign_log), "--out", str(out)]) == 2  # no silent overwrite
    # the edits the comments ask for: a value per conversion (the rest of the guesses hold here)
    out.write_text(text.replace("value_per_conversion: 0 ", "value_per_conversion: 250 "))
    capsys.readouterr()
    assert main(["check", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Every name of the project file occurs in the data." in printed
    assert "rows deduplicated" in printed


def test_check_lists_unstaged_events_and_exits_2_on_unknown_names(foreign_log, capsys):
    spec = _spec()
    spec["stages"] = dict(spec["stages"])
    spec["stages"]["advocacy"] = {
        "events": ["referral_sent"]
    }  # review_posted now belongs to no stage
    spec["journey"] = {"conversion": "booking_complete"}
    path = _write(foreign_log, spec, "typo.yaml")
    assert check_project(path) == 2
    printed = capsys.readouterr().out
    assert "'review_posted':" in printed
    assert (
        "journey.conversion: 'booking_complete' occurs in no row (did you mean 'booking_completed'?)"
        in printed
    )


def test_check_of_an_invalid_file_exits_2(tmp_path, capsys):
    path = tmp_path / "journeylab.yaml"
    path.write_text(
        textwrap.dedent("""
        name: x
        data: {events: {path: e.csv}}
        jouney: {conversion: buy}
    """)
    )
    assert main(["check", str(path)]) == 2
    assert "did you mean 'journey'" in capsys.readouterr().err


def test_init_on_a_file_with_no_time_column_says_which_columns_exist(tmp_path):
    frame = pd.DataFrame({"who": ["a", "b"] * 5, "what": ["x", "y"] * 5})
    frame.to_csv(tmp_path / "events.csv", index=False)
    with pytest.raises(SchemaError, match="No column of the events file fits timestamp") as err:
        guess_project(tmp_path / "events.csv")
    assert "who, what" in str(err.value)


def test_rendered_project_file_is_valid_yaml_that_loads(foreign_log, tmp_path):
    guess = guess_project(foreign_log / "events.parquet")
    text = render_project(guess, base_dir=tmp_path, name="Foreign: 'quoted' #name")
    path = tmp_path / "p.yaml"
    path.write_text(text)
    project = load_project(path)
    assert project.name == "Foreign: 'quoted' #name"
    assert project.tables["events"].path == foreign_log / "events.parquet"


@pytest.mark.shared_data
def test_init_and_check_on_online_retail_order_lines(tmp_path, capsys):
    """UCI Online Retail: order lines become one event per order; check accepts the written file as is."""
    from conftest import shared_file

    data = shared_file("online_retail", "online_retail_by_day_concat.csv.gz")
    out = tmp_path / "journeylab.yaml"
    assert main(["init", "--data", str(data), "--out", str(out)]) == 0
    project = load_project(out)
    assert project.events_from_transactions
    spec = project.tables["transactions"]
    assert spec.columns == {
        "CustomerID": "user_id",
        "InvoiceDate": "timestamp",
        "InvoiceNo": "order_id",
    }
    assert spec.options["value_from"] == ["Quantity", "UnitPrice"]
    capsys.readouterr()
    assert check_project(out) == 0
    printed = capsys.readouterr().out
    # the figures public analyses of UCI Online Retail report: 135,080 lines without a customer id;
    # 22,190 invoices with a customer id, of which 3,654 are cancellations (negative totals)
    assert "135,080 rows dropped" in printed
    assert "events: 22,190 of 22,190 rows kept" in printed
    assert "'refund': 3,654 rows" in printed
    ws = open_workspace(project=out)
    events = ws.events.frame
    firsts = events.loc[events["event"] == "first_purchase"]
    assert firsts["user_id"].is_unique
    tx = ws.transactions.frame
    assert firsts["user_id"].nunique() <= tx["user_id"].nunique() == 4_372


def test_init_then_check_on_the_online_shop_sample_needs_no_edit(tmp_path, capsys):
    """The e-commerce vertical as a company would export it (its own vocabulary, ids under three
    touchpoints resolved by an identities table): init's file passes check as written."""
    from journeylab.datasets import write_sample

    folder = tmp_path / "shop_export"
    write_sample(make_sample(seed=4, n_users=3_000, vertical="ecommerce"), folder)
    out = tmp_path / "journeylab.yaml"
    assert main(["init", "--data", str(folder), "--out", str(out)]) == 0
    project = load_project(out)
    assert project.name == "Shop Export"
    assert project.conversion == ("purchase",)
    assert project.funnel[-1] == "purchase" and "add_to_cart" in project.funnel
    assert {"platform", "country"} <= set(project.segments)
    assert {"identities", "transactions", "feedback", "spend", "assignments", "users"} <= set(
        project.tables
    )
    capsys.readouterr()
    assert main(["check", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "ids resolved to persons" in printed
    assert "Every name of the project file occurs in the data." in printed


def test_a_month_without_conversions_is_not_published(tmp_path, capsys):
    """The project's conversion never happens in the month: exit 1 with the reason, nothing published."""
    from importlib import resources

    sample = make_sample(seed=9, n_users=1_500)
    events = sample.events
    october = (events["timestamp"] >= "2026-10-01") & (events["timestamp"] < "2026-11-01")
    events = events.loc[~(october & (events["event"] == "booking_completed"))]
    events.to_parquet(tmp_path / "events.parquet")
    spec = yaml.safe_load(
        resources.files("journeylab.datasets").joinpath("home_services.yaml").read_text("utf-8")
    )
    spec["data"] = {"events": {"path": "events.parquet"}}
    spec.pop("experiments")
    _write(tmp_path, spec)
    out = tmp_path / "reports"
    code = main(
        [
            "report",
            "monthly_report",
            "--month",
            "2026-10",
            "--config",
            str(tmp_path / "journeylab.yaml"),
            "--out",
            str(out),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "No conversions (booking_completed) in 2026-10" in err
    assert not (out / "2026-10" / "monthly_report").exists()


def test_check_names_a_csv_files_dropped_rows_by_their_lines(tmp_path, capsys):
    events = tmp_path / "events.csv"
    events.write_text(
        "user_id,timestamp,event,channel\nu1,2026-01-01T00:00:00Z,visit,email\n"
        "u2,2026-01-01T00:01:00Z,purchase,email\n,2026-01-02T00:00:00Z,visit,web\n"
        "u3,2026-01-03T00:00:00Z,purchase,web\n"
    )
    out = tmp_path / "journeylab.yaml"
    assert main(["init", "--data", str(events), "--out", str(out)]) == 0
    capsys.readouterr()
    main(["check", str(out)])
    printed = capsys.readouterr().out
    assert "1 rows dropped" in printed and "(lines 4)" in printed
