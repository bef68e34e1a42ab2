"""The project files of the two samples agree with the samples they describe.

Each ``src/journeylab/datasets/<vertical>.yaml`` is parsed with PyYAML; every
event it names must occur in ``make_sample(vertical=...)``, every segment be
a column of the events or users table, the conversion and funnel steps occur,
the stages and KPIs be the sample's stage map, and every event, channel and
segment value a reader sees have a label.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import yaml

from journeylab.core.stages import StageMap
from journeylab.datasets import sample_stage_map
from journeylab.datasets.sample import make_sample

KEYS = [
    "name",
    "currency",
    "timezone",
    "data",
    "journey",
    "stages",
    "funnel",
    "steps",
    "segments",
    "experiments",
    "labels",
]
VERTICALS = ["home_services", "ecommerce"]


def _project(vertical: str) -> dict:
    text = resources.files("journeylab.datasets").joinpath(f"{vertical}.yaml").read_text("utf-8")
    return yaml.safe_load(text)


@pytest.fixture(scope="module", params=VERTICALS)
def project(request):
    spec = _project(request.param)
    sample = make_sample(
        vertical=request.param,
        **{k: v for k, v in spec["data"]["sample"].items() if k != "vertical"},
    )
    return request.param, spec, sample


def test_the_project_file_has_exactly_the_agreed_keys(project):
    vertical, spec, sample = project
    optional = ("experiments", "steps")
    assert [k for k in spec if k not in optional] == [k for k in KEYS if k not in optional]
    assert spec["data"] == {"sample": {"vertical": vertical, "seed": 2026, "n_users": 20_000}}
    assert set(spec["journey"]) == {"conversion", "value_per_conversion", "lookback"}
    assert spec["journey"]["lookback"] == "30D" and spec["journey"]["value_per_conversion"] > 0
    assert list(spec["stages"]) == [
        "awareness",
        "consideration",
        "purchase",
        "retention",
        "advocacy",
    ]
    for stage in spec["stages"].values():
        assert set(stage) <= {"events", "kpis", "description"}
    assert spec["timezone"] == sample.truth["timezone"]
    assert spec["name"].endswith("(sample)") and len(spec["currency"]) == 3


def test_every_named_event_segment_and_step_occurs_in_the_sample(project):
    _, spec, sample = project
    events = set(sample.events["event"])
    named = {e for stage in spec["stages"].values() for e in stage["events"]}
    named |= {
        e for stage in spec["stages"].values() for k in stage.get("kpis", []) for e in k["events"]
    }
    assert named <= events, named - events
    assert named == events  # and every event of the sample has a stage
    conversion = spec["journey"]["conversion"]
    assert set([conversion] if isinstance(conversion, str) else conversion) <= events
    assert set(spec["funnel"]) <= events and len(spec["funnel"]) >= 3
    columns = set(sample.events.columns) | set(sample.users.columns)
    plain = {s for s in spec["segments"] if isinstance(s, str)}
    derived = {
        s["column"] for s in spec["segments"] if isinstance(s, dict)
    }  # bands cut from a numeric column
    assert plain | derived <= columns, (plain | derived) - columns
    # the funnel is in journey order (stage by stage)
    stages = [sample.stage_map.index(sample.stage_map.stage_of(e)) for e in spec["funnel"]]
    assert stages == sorted(stages)


def test_stages_and_kpis_are_the_samples_stage_map(project):
    vertical, spec, sample = project
    as_map = StageMap.from_dict(
        {"stages": [{"name": name, **stage} for name, stage in spec["stages"].items()]}
    )

    def content(stage_map):  # stage descriptions are not part of the project file
        return [(s.name, s.events, s.kpis) for s in stage_map.stages]

    assert content(as_map) == content(sample.stage_map)
    if vertical == "home_services":
        assert content(as_map) == content(sample_stage_map())  # what the notebooks use today


def test_the_notebooks_name_no_sample_vocabulary():
    spec = _project("home_services")
    assert spec["funnel"] == ["site_visit", "booking_started", "booking_completed"]
    for path in (Path(__file__).parents[2] / "notebooks").glob("monthly_report.py"):
        text = path.read_text("utf-8")
        for word in ("site_visit", "booking_started", "booking_completed", '"device"'):
            assert word not in text, (path.name, word)


def test_every_event_channel_and_segment_value_has_a_label(project):
    _, spec, sample = project
    labels = spec["labels"]
    assert all(isinstance(v, str) and v for v in labels.values())
    seen = (
        set(sample.events["event"]) | set(sample.events["channel"].dropna()) | set(spec["stages"])
    )
    for dimension in spec["segments"]:
        if isinstance(
            dimension, dict
        ):  # bands cut from a numeric column: their labels are the values
            seen.add(dimension["name"])
            continue
        seen.add(dimension)
        table = sample.events if dimension in sample.events else sample.users
        seen |= set(table[dimension].dropna())
    assert seen <= set(labels), sorted(seen - set(labels))
