"""Identity resolution: ids of several touchpoints mapped onto one person.

Hand-built tables with known answers, the loader's counts and error messages,
and hypothesis properties: rows in = rows out, the counts reconcile, and a
second resolution changes nothing.
"""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import journeylab
from journeylab.core.errors import DataError, ParameterError, SchemaError
from journeylab.datasets import sample_stage_map
from journeylab.io import loaders as io
from journeylab.io.identities import load_identities, resolve_identities


def _events(ids: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": pd.Series(ids, dtype="str"),
            "timestamp": pd.date_range("2026-05-01", periods=len(ids), freq="h", tz="UTC"),
            "event": "site_visit",
        }
    )


IDENTITIES = pd.DataFrame(
    {
        "id": ["u1", "ph_a1", "crm_7", "u2", "ph_b2"],
        "user_id": ["u1", "u1", "u1", "u2", "u2"],
    }
)


def test_aliases_map_onto_their_person_and_the_counts_add_up():
    events = _events(["u1", "ph_a1", "crm_7", "u2", "ph_b2", "ph_b2", "x9"])
    res = resolve_identities(events, IDENTITIES)
    assert res.frame["user_id"].tolist() == ["u1", "u1", "u1", "u2", "u2", "u2", "x9"]
    # nothing but user_id changes, rows stay in place
    pd.testing.assert_frame_equal(res.frame.drop(columns="user_id"), events.drop(columns="user_id"))
    assert res.counts() == {
        "rows_in": 7,
        "rows_out": 7,
        "rows_remapped": 4,
        "ids_in": 6,
        "ids_out": 3,
        "ids_merged": 3,
        "persons_merged": 2,
        "persons_added": 0,
        "ids_unmapped": 1,
        "rows_unmapped": 1,
        "conflicts": 0,
        "rows_conflicted": 0,
    }
    text = res.summary()
    assert "4 of 7 rows remapped: 3 ids merged into 2 persons" in text
    assert "1 ids (1 rows) are not in the identities table" in text
    assert "x9" not in text and "ph_a1" not in text  # counts only, never ids
    assert res.to_frame().set_index("count").loc["ids_merged", "value"] == 3
    assert "<table" in res._repr_html_()


def test_a_person_seen_only_through_other_ids_is_added():
    res = resolve_identities(_events(["ph_a1", "crm_7"]), IDENTITIES)
    assert res.frame["user_id"].tolist() == ["u1", "u1"]
    assert (res.ids_in, res.ids_out, res.ids_merged, res.persons_added) == (2, 1, 2, 1)
    assert res.ids_out == res.ids_in - res.ids_merged + res.persons_added


def test_chains_are_followed_and_cycles_are_an_error_naming_the_rows():
    chain = pd.DataFrame({"id": ["a", "b", "c"], "user_id": ["b", "c", "c"]})
    res = resolve_identities(_events(["a", "b", "c"]), chain)
    assert res.frame["user_id"].tolist() == ["c", "c", "c"]
    cycle = pd.DataFrame({"id": ["x", "a", "b"], "user_id": ["x", "b", "a"]})
    with pytest.raises(DataError, match=r"cycle") as err:
        resolve_identities(_events(["a"]), cycle)
    assert err.value.rows == [2, 3] and err.value.column == "user_id"


def test_an_id_mapped_to_two_persons_raises_naming_the_rows_or_keeps_the_first():
    clash = pd.concat(
        [IDENTITIES, pd.DataFrame({"id": ["ph_a1"], "user_id": ["u2"]})], ignore_index=True
    )
    with pytest.raises(
        DataError, match=r"1 ids are mapped to more than one person \(ph_a1 → u1; ph_a1 → u2\)"
    ) as err:
        resolve_identities(_events(["ph_a1"]), clash)
    assert err.value.rows == [2, 6]
    assert "on_conflict='first'" in str(err.value)
    res = resolve_identities(_events(["ph_a1", "ph_a1", "u2"]), clash, on_conflict="first")
    assert res.frame["user_id"].tolist() == ["u1", "u1", "u2"]  # the first row wins
    assert (res.conflicts, res.rows_conflicted) == (1, 2)
    assert "kept their first mapping" in res.summary()
    with pytest.raises(ParameterError, match=r"on_conflict == 'last', must be one of"):
        resolve_identities(_events(["u1"]), IDENTITIES, on_conflict="last")


def test_bad_identities_tables_raise_clear_errors():
    with pytest.raises(SchemaError, match=r"lacks required column\(s\): 'id'"):
        resolve_identities(_events(["u1"]), IDENTITIES.rename(columns={"id": "alias"}))
    holes = pd.DataFrame({"id": ["u1", None], "user_id": ["u1", "u1"]})
    with pytest.raises(DataError, match=r"1 rows without an id or user_id") as err:
        resolve_identities(_events(["u1"]), holes)
    assert err.value.rows == [2]
    with pytest.raises(
        SchemaError, match=r"lacks required column\(s\): 'user_id' \(did you mean 'userid'\?\)"
    ):
        resolve_identities(pd.DataFrame({"userid": ["u1"]}), IDENTITIES)


def test_missing_user_ids_stay_missing():
    events = _events(["ph_a1", "u2"])
    events.loc[1, "user_id"] = None
    res = resolve_identities(events, IDENTITIES)
    assert res.frame["user_id"].iloc[0] == "u1" and pd.isna(res.frame["user_id"].iloc[1])
    assert res.rows_in == res.rows_out == 2 and res.ids_in == 1


# -- loading ------------------------------------------------------------------------
def test_load_identities_reads_text_ids_and_counts_what_it_drops(tmp_path):
    path = tmp_path / "identities.csv"
    path.write_text(
        "alias,person\n"
        "00123,00123\n"
        "ph_a1,00123\n"
        "ph_a1,00123\n"  # exact duplicate
        ",00123\n"  # no id
        "crm_7,u2\n"
        "crm_7,u3\n",  # conflict
        encoding="utf-8",
    )
    loaded = load_identities(path, columns={"alias": "id", "person": "user_id"})
    frame = loaded.frame
    assert frame.columns.tolist() == ["id", "user_id"]
    assert frame["id"].tolist() == ["00123", "ph_a1", "crm_7", "crm_7"]  # leading zeros kept
    steps = loaded.quality.to_frame().set_index("step")
    assert steps.loc["missing id", "rows"] == 1
    assert steps.loc["exact duplicate", "rows"] == 1
    flagged = steps.loc["id mapped to several persons"]
    assert flagged["action"] == "flagged" and flagged["rows"] == 2
    assert loaded.quality.rows_read == 6 and loaded.quality.rows_kept == 4
    assert "lines 6, 7" in loaded.quality.summary() or "6, 7" in loaded.quality.summary()
    # the conflict is an error when resolving, naming the loaded rows
    with pytest.raises(DataError, match="more than one person"):
        resolve_identities(_events(["crm_7"]), loaded)
    # exposed where the other loaders are
    assert io.load_identities is load_identities
    assert journeylab.load_identities is load_identities
    assert journeylab.resolve_identities is resolve_identities


def test_pseudonymised_tables_still_resolve(monkeypatch):
    monkeypatch.setenv("JOURNEYLAB_PSEUDONYM_KEY", "a test key of sixteen+ chars")
    events = io.load_events(
        _events(["u1", "ph_a1", "u2"]), pseudonymize=True, stage_map=sample_stage_map()
    )
    ids = load_identities(IDENTITIES, pseudonymize=True)
    assert not ids.frame["id"].isin(["u1", "ph_a1"]).any()
    res = resolve_identities(events, ids)
    persons = res.frame.sort_values("timestamp")["user_id"].tolist()
    assert persons[0] == persons[1] != persons[2]
    assert (res.rows_remapped, res.ids_unmapped) == (1, 0)


# -- properties -----------------------------------------------------------------------
ID = st.sampled_from([f"i{k}" for k in range(12)])


@settings(max_examples=150, deadline=None)
@given(
    pairs=st.lists(st.tuples(ID, ID), max_size=15),
    ids=st.lists(ID, max_size=40),
)
def test_resolution_keeps_every_row_and_its_counts_reconcile(pairs, ids):
    identities = pd.DataFrame(pairs, columns=["id", "user_id"]).drop_duplicates("id")
    events = _events(ids)
    try:
        res = resolve_identities(events, identities)
    except DataError as err:  # only cycles can fail here (one mapping per id)
        assert "cycle" in str(err)
        return
    out = res.frame
    assert res.rows_in == res.rows_out == len(events) == len(out)
    pd.testing.assert_frame_equal(out.drop(columns="user_id"), events.drop(columns="user_id"))
    changed = out["user_id"].to_numpy() != events["user_id"].to_numpy()
    assert res.rows_remapped == int(changed.sum())
    assert res.ids_merged == events.loc[changed, "user_id"].nunique()
    assert res.ids_out == out["user_id"].nunique()
    assert res.ids_out == res.ids_in - res.ids_merged + res.persons_added
    known = set(identities["id"]) | set(identities["user_id"])
    assert res.ids_unmapped == len(set(ids) - known)
    assert res.rows_unmapped == int((~events["user_id"].isin(known)).sum())
    # persons are fixed points: resolving again changes nothing
    again = resolve_identities(out, identities)
    assert again.rows_remapped == 0
    pd.testing.assert_frame_equal(again.frame, out)
