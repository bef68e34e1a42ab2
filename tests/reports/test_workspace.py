"""The workspace: every table of an analysis loaded and checked in one call."""

from __future__ import annotations

import pandas as pd
import pytest

from journeylab.core.errors import DataError, ParameterError, SchemaError
from journeylab.datasets.sample import make_sample, write_sample
from journeylab.reports.workspace import open_workspace


@pytest.fixture(scope="module")
def tiny():
    return make_sample(seed=3, n_users=400)


def test_sample_workspace_loads_every_table_and_counts_rows(tiny, monkeypatch):
    import journeylab.datasets.sample as ds

    monkeypatch.setattr(ds, "make_sample", lambda seed, n_users: tiny)
    ws = open_workspace(seed=3, n_users=400)
    assert set(ws.tables()) == {"events", "assignments", "feedback", "spend", "transactions"}
    frame = ws.to_frame().set_index("table")
    # every source row is either kept or dropped with a reason
    for name, table in ws.tables().items():
        assert frame.loc[name, "rows_read"] == len(getattr(tiny, name))
        assert (
            frame.loc[name, "rows_kept"] + frame.loc[name, "rows_dropped"]
            == frame.loc[name, "rows_read"]
        )
        assert frame.loc[name, "rows_kept"] == len(table.frame)
    assert ws.row_counts()["users"] == 400
    assert ws.truth is tiny.truth and ws.seed == 3
    assert ws.stage_map == tiny.stage_map  # the sample is analysed with its own map
    assert "bundled sample (seed 3, 400 users)" in ws.summary()


def test_folder_workspace_reads_what_write_sample_wrote(tiny, tmp_path):
    write_sample(tiny, tmp_path / "data", fmt="csv")
    ws = open_workspace(tmp_path / "data")
    assert ws.source == "data"
    assert ws.truth is None
    assert len(ws.users) == 400
    assert ws.users["user_id"].dtype != "int64"  # ids stay text
    assert len(ws.transactions.frame) == len(tiny.transactions)
    assert ws.stage_map == tiny.stage_map  # read from the stages.yaml written beside the tables
    assert ws.stage_map.source == "stages.yaml" and str(tmp_path) not in repr(
        ws
    )  # no path in reports


def test_own_data_need_their_stage_map(tiny, tmp_path):
    write_sample(tiny, tmp_path / "data", fmt="csv")
    (tmp_path / "data" / "stages.yaml").unlink()
    with pytest.raises(ParameterError, match="No stage map for the data in data: pass stage_map="):
        open_workspace(tmp_path / "data")
    with pytest.raises(ParameterError, match="No stage map for the data in events.csv"):
        open_workspace(tmp_path / "data" / "events.csv")
    ws = open_workspace(tmp_path / "data" / "events.csv", stage_map=tiny.stage_map.to_dict())
    assert ws.stage_map == tiny.stage_map and len(ws.events.frame) > 0


def test_month_events_is_the_calendar_month_in_utc(tiny, monkeypatch):
    import journeylab.datasets.sample as ds

    monkeypatch.setattr(ds, "make_sample", lambda seed, n_users: tiny)
    ws = open_workspace(seed=3, n_users=400)
    october = ws.month_events("2026-10")
    ts = ws.events.frame["timestamp"]
    expected = (
        (ts >= pd.Timestamp("2026-10-01", tz="UTC")) & (ts < pd.Timestamp("2026-11-01", tz="UTC"))
    ).sum()
    assert len(october) == expected > 0
    with pytest.raises(DataError, match=r"No events in 2027-01(.|\n)*covers 2026-05"):
        ws.month_events("2027-01")


def test_missing_folder_or_events_file_is_a_clear_error(tmp_path):
    with pytest.raises(SchemaError, match="does not exist"):
        open_workspace(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SchemaError, match="No events file"):
        open_workspace(tmp_path / "empty")


# -- identity step -----------------------------------------------------------------------
def test_the_sample_is_resolved_to_persons_before_any_analysis(tiny, monkeypatch):
    import journeylab.datasets.sample as ds
    from journeylab.io import loaders as io

    monkeypatch.setattr(ds, "make_sample", lambda seed, n_users: tiny)
    ws = open_workspace(seed=3, n_users=400)
    truth = tiny.truth["identities"]
    res = ws.resolutions["events"]
    assert res.rows_remapped == truth["alias_rows"] > 0
    assert res.ids_merged == truth["phone_ids"] + truth["crm_ids"]
    assert (res.ids_unmapped, res.conflicts) == (0, 0)
    # the same table as loading the person-keyed events directly
    pd.testing.assert_frame_equal(
        ws.events.frame, io.load_events(tiny.events, stage_map=tiny.stage_map).frame
    )
    step = ws.events.quality.to_frame().set_index("step").loc["ids resolved to persons"]
    assert step["action"] == "repaired" and step["rows"] == truth["alias_rows"]
    assert f"identities: {truth['alias_rows']:,} of" in ws.summary()
    assert ws.resolutions["feedback"].rows_remapped == 0  # surveys already name the person


def test_folder_with_identities_is_resolved_and_counts_reconcile(tiny, tmp_path):
    write_sample(tiny, tmp_path / "data")
    logged = pd.read_parquet(tmp_path / "data" / "events.parquet")
    assert logged["user_id"].str.startswith("ph_").any()  # written as logged
    ws = open_workspace(tmp_path / "data")
    assert ws.identities is not None and ws.identities.source == "identities.parquet"
    res = ws.resolutions["events"]
    assert res.rows_in == res.rows_out == ws.events.quality.rows_kept
    assert ws.events.frame["user_id"].str.fullmatch(r"u\d{7}").all()
    assert set(ws.events.frame["user_id"]) <= set(tiny.users["user_id"])
    # without the identities file the same folder keeps the logged ids
    (tmp_path / "data" / "identities.parquet").unlink()
    raw = open_workspace(tmp_path / "data")
    assert raw.identities is None and raw.resolutions == {}
    assert raw.events.frame["user_id"].nunique() == res.ids_in


def test_conflicting_identities_in_a_folder_are_an_error_naming_the_file_and_rows(tiny, tmp_path):
    write_sample(tiny, tmp_path / "data", fmt="csv")
    path = tmp_path / "data" / "identities.csv"
    ids = pd.read_csv(path, dtype=str)
    alias = ids.loc[ids["id"].str.startswith("ph_"), "id"].iloc[0]
    clash = pd.concat([ids, pd.DataFrame({"id": [alias], "user_id": ["u0000399"]})])
    clash.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"mapped to more than one person") as err:
        open_workspace(tmp_path / "data")
    assert err.value.source == "identities.csv" and len(err.value.rows) == 2
    ws = open_workspace(tmp_path / "data", on_conflict="first")
    assert ws.resolutions["events"].conflicts == 1
    flagged = ws.identities.quality.to_frame().set_index("step").loc["id mapped to several persons"]
    assert flagged["rows"] == 2


def test_pseudonymised_folder_is_still_resolved(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("JOURNEYLAB_PSEUDONYM_KEY", "a test key of sixteen+ chars")
    write_sample(tiny, tmp_path / "data")
    ws = open_workspace(tmp_path / "data", pseudonymize=True)
    res = ws.resolutions["events"]
    assert res.rows_remapped == tiny.truth["identities"]["alias_rows"]
    assert ws.events.frame["user_id"].nunique() == tiny.events["user_id"].nunique()
    assert not ws.events.frame["user_id"].str.startswith(("u0", "ph_", "crm_")).any()
