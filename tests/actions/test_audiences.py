"""Audience files: round trip, privacy (pseudonyms, opt-outs, suppression), formula safety, manifest."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journeylab.actions import audiences
from journeylab.core.errors import DataError, ParameterError
from journeylab.customers.uplift import fit_uplift
from journeylab.io.privacy import pseudonymize
from journeylab.reports.cli import main

KEY = "audience-test-key-0123456789"


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("JOURNEYLAB_PSEUDONYM_KEY", KEY)


def experiment(n: int = 3_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    segment = rng.choice(["a", "b"], n)
    treated = rng.random(n) < 0.5
    p = 0.1 + treated * np.where(segment == "a", 0.15, 0.0)
    return pd.DataFrame(
        {
            "user_id": [f"cust-{i:05d}" for i in range(n)],
            "variant": np.where(treated, "mail", "control"),
            "segment": segment,
            "tenure": rng.gamma(2.0, 10.0, n),
            "bought": (rng.random(n) < p).astype(int),
            "consent_withdrawn": rng.choice(["no", "yes", "no", "no"], n),
        }
    )


def read_back(aud) -> pd.DataFrame:
    return pd.read_csv(aud.files["csv"], dtype=str, keep_default_na=False)


def test_an_audience_round_trips_with_counts_matching_the_manifest(tmp_path):
    data = experiment()
    up = fit_uplift(data, outcome="bought", features=["segment"], n_boot=20, seed=1)
    aud = audiences.build(
        data,
        out=tmp_path,
        name="spring",
        date="2026-11-01",
        formats=("csv", "parquet"),
        uplift=up,
        opt_out="consent_withdrawn",
        top_deciles=5,
    )
    assert {p.name for p in tmp_path.iterdir()} == {
        "spring_2026-11-01.csv",
        "spring_2026-11-01.parquet",
        "spring_2026-11-01.manifest.json",
    }
    manifest = json.loads(aud.files["manifest"].read_text())
    csv, parquet = read_back(aud), pd.read_parquet(aud.files["parquet"])
    counts = manifest["counts"]
    assert counts["written"] == len(csv) == len(parquet) == len(aud.people) > 0
    assert counts["excluded_opt_out"] == int((data["consent_withdrawn"] == "yes").sum())
    assert (
        counts["people_in"]
        == len(data)
        == (
            counts["excluded_opt_out"]
            + counts["not_selected"]
            + counts["suppressed"]
            + counts["written"]
        )
    )
    assert (
        list(csv.columns)
        == ["person_id", "uplift_score", "uplift_decile"]
        == list(manifest["columns"])
    )
    assert csv["uplift_decile"].astype(int).between(1, 5).all()
    # no raw id anywhere; pseudonyms are the keyed HMAC of the ids; opt-outs never appear
    for path in aud.files.values():
        text = path.read_bytes().decode("utf-8", errors="replace")
        assert "cust-" not in text, path.name
        assert KEY not in text, path.name
    opted_out = set(pseudonymize(data.loc[data["consent_withdrawn"] == "yes", "user_id"], KEY))
    assert not opted_out & set(csv["person_id"])
    assert set(csv["person_id"]) <= set(pseudonymize(data["user_id"], KEY))
    assert csv["person_id"].tolist() == parquet["person_id"].tolist()
    np.testing.assert_allclose(
        csv["uplift_score"].astype(float), parquet["uplift_score"], rtol=1e-12
    )
    # the manifest explains itself
    assert set(manifest["not_computed"]) == {
        "lifecycle_state",
        "clv_tier",
        "conversion_propensity",
        "churn_propensity",
        "next_best_touchpoint",
    }
    assert manifest["not_computed"]["clv_tier"] == "no transactions table was given"
    assert manifest["models"]["uplift"]["settings"]["seed"] == 1
    assert manifest["input_fingerprint"]["people"]["rows"] == len(data)
    assert len(manifest["input_fingerprint"]["people"]["sha256"]) == 64
    assert manifest["ids"].startswith(
        "keyed HMAC-SHA256 pseudonyms (key from $JOURNEYLAB_PSEUDONYM_KEY"
    )
    # a second run on the same input gives the same fingerprint and the same rows
    again = audiences.build(
        data,
        out=tmp_path / "again",
        name="spring",
        date="2026-11-01",
        uplift=up,
        opt_out="consent_withdrawn",
        top_deciles=5,
    )
    assert again.manifest["input_fingerprint"] == manifest["input_fingerprint"]
    assert read_back(again).equals(csv)


def test_raw_ids_only_when_asked_and_formula_cells_are_neutralised(tmp_path):
    people = pd.DataFrame(
        {
            "user_id": ['=HYPERLINK("http://evil.example","x")', "+1", "-2", "@SUM(A1)", "plain"]
            + [f"p{i}" for i in range(40)]
        }
    )
    aud = audiences.build(
        people, out=tmp_path, name="raw", date="2026-11-01", raw_ids=True, min_users=5
    )
    text = aud.files["csv"].read_text()
    assert (
        "'=HYPERLINK(" in text
        and "\n'+1\n" in text
        and "\n'-2\n" in text
        and "\n'@SUM(A1)\n" in text
    )
    assert "\n=HYPERLINK" not in text and "\n+1\n" not in text
    assert aud.manifest["ids"].startswith("raw user_id")
    assert list(read_back(aud).columns) == ["user_id"]
    # by default the same people get pseudonyms, which never start like a formula
    pseudo = audiences.build(people, out=tmp_path / "p", name="raw", date="2026-11-01", min_users=5)
    ids = read_back(pseudo)["person_id"]
    assert ids.str.fullmatch(r"[0-9a-f]{16}").all()


def test_small_audiences_and_small_groups_are_suppressed(tmp_path):
    data = experiment(400)
    up = fit_uplift(data, outcome="bought", features=["segment", "tenure"], n_boot=20, seed=0)
    tiny = audiences.build(
        data.head(20), out=tmp_path, name="tiny", date="2026-11-01", min_users=30
    )
    assert "csv" not in tiny.files and tiny.files["manifest"].exists()
    assert not (tmp_path / "tiny_2026-11-01.csv").exists()
    assert tiny.counts == {**tiny.counts, "written": 0, "suppressed": 20, "suppressed_groups": 1}
    assert "Nothing was written but the manifest" in tiny.summary()
    grouped = audiences.build(
        data,
        out=tmp_path,
        name="grp",
        date="2026-11-01",
        uplift=up,
        by="uplift_decile",
        min_users=45,
    )
    sizes = read_back(grouped)["uplift_decile"].value_counts()
    assert (sizes >= 45).all()
    assert grouped.counts["suppressed"] == len(data) - grouped.counts["written"] > 0
    assert grouped.counts["written"] > 0 and grouped.counts["suppressed_groups"] == 10 - len(sizes)


def test_opt_out_values_are_checked_and_missing_choices_count_as_opt_outs(tmp_path):
    people = pd.DataFrame(
        {"user_id": [f"u{i}" for i in range(60)], "optout": [False] * 55 + [True] * 3 + [None] * 2}
    )
    aud = audiences.build(people, out=tmp_path, name="o", date="2026-11-01", opt_out="optout")
    assert aud.counts["excluded_opt_out"] == 5 and aud.counts["excluded_opt_out_missing"] == 2
    assert aud.counts["written"] == 55
    bad = people.assign(optout=["no"] * 58 + ["maybe", "no"])
    with pytest.raises(
        DataError, match=r"(?s)neither yes nor no: \['maybe'\].*first offending rows: 59"
    ):
        audiences.build(bad, out=tmp_path, name="o", opt_out="optout")
    with pytest.raises(DataError, match="once"):
        audiences.build(pd.DataFrame({"user_id": ["a", "a"]}), out=tmp_path)
    with pytest.raises(ParameterError, match="top_deciles"):
        audiences.build(people, out=tmp_path, top_deciles=3)


def test_no_key_no_pseudonyms(tmp_path, monkeypatch):
    monkeypatch.delenv("JOURNEYLAB_PSEUDONYM_KEY")
    with pytest.raises(ParameterError, match="No pseudonymisation key"):
        audiences.build(pd.DataFrame({"user_id": ["a"]}), out=tmp_path)
    assert not list(tmp_path.iterdir())


@settings(max_examples=25, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=80), st.integers(1, 40))
def test_opted_out_people_never_appear_and_counts_add_up(flags, min_users):
    people = pd.DataFrame({"user_id": [f"id{i}" for i in range(len(flags))], "stop": flags})
    with tempfile.TemporaryDirectory() as folder:
        aud = audiences.build(
            people,
            out=folder,
            name="h",
            date="2026-11-01",
            opt_out="stop",
            min_users=min_users,
            raw_ids=True,
        )
        written = set(read_back(aud)["user_id"]) if "csv" in aud.files else set()
    assert not written & set(people.loc[people["stop"], "user_id"])
    c = aud.counts
    assert (
        c["people_in"] == c["excluded_opt_out"] + c["not_selected"] + c["suppressed"] + c["written"]
    )
    assert c["written"] == 0 or c["written"] >= min_users


def test_lifecycle_by_person_agrees_with_lifecycle_states(small_sample):
    from journeylab.customers.retention import lifecycle_states

    tx = small_sample.transactions
    counts = lifecycle_states(tx).counts
    for month in counts.index[-3:]:
        as_of = pd.Timestamp(month) + pd.offsets.MonthEnd(0)
        states = audiences.lifecycle_by_person(tx, as_of).value_counts()
        for state in ("new", "active", "reactivated", "at_risk", "lapsed"):
            assert states.get(state, 0) == counts.loc[month, state], (month, state)


def test_every_column_on_the_sample(small_sample, tmp_path):
    from journeylab.experiments import user_metrics

    s = small_sample
    users = user_metrics(s.assignments, s.events, {"booked": "booking_completed"}).merge(
        s.users[["user_id", "region", "acquisition_channel"]], on="user_id"
    )
    up = fit_uplift(
        users, outcome="booked", features=["device", "region", "acquisition_channel"], n_boot=20
    )
    aud = audiences.build(
        s.users,
        out=tmp_path,
        name="all",
        date="2026-11-01",
        events=s.events,
        stage_map=s.stage_map,
        conversion="booking_completed",
        transactions=s.transactions,
        uplift=up,
    )
    frame = read_back(aud)
    assert list(frame.columns) == [
        "person_id",
        "lifecycle_state",
        "clv_tier",
        "conversion_propensity",
        "churn_propensity",
        "uplift_score",
        "uplift_decile",
        "next_best_touchpoint",
    ]
    assert aud.manifest["not_computed"] == {}
    assert set(frame["lifecycle_state"]) <= {
        "new",
        "active",
        "reactivated",
        "at_risk",
        "lapsed",
        "prospect",
    }
    customers = frame["lifecycle_state"] != "prospect"
    assert set(frame.loc[customers, "clv_tier"]) <= {"high", "medium", "low"}
    assert (frame.loc[~customers, "clv_tier"] == "").all()
    p = pd.to_numeric(frame["conversion_propensity"], errors="coerce").dropna()
    assert len(p) > 0 and p.between(0, 1).all()
    assert set(frame["next_best_touchpoint"]) <= set(s.events["channel"].dropna())
    models = aud.manifest["models"]
    assert {
        "lifecycle_state",
        "clv_tier",
        "conversion_propensity",
        "churn_propensity",
        "uplift",
        "next_best_touchpoint",
    } <= set(models)
    assert 0.5 < models["conversion_propensity"]["auc"] <= 1
    assert set(models["clv_tier"]["bg_nbd"]) == {"r", "alpha", "a", "b"}


def test_the_audience_command(tmp_path, capsys):
    data = experiment(2_000).drop(columns="user_id")  # no ids: the row number is the id
    data.to_csv(tmp_path / "campaign.csv", index=False)
    out = tmp_path / "aud"
    code = main(
        [
            "audience",
            "--out",
            str(out),
            "--data",
            str(tmp_path / "campaign.csv"),
            "--outcome",
            "bought",
            "--features",
            "segment",
            "--opt-out",
            "consent_withdrawn",
            "--top-deciles",
            "3",
            "--date",
            "2026-11-02",
            "--format",
            "both",
        ]
    )
    assert code == 0
    assert "written" in capsys.readouterr().out
    manifest = json.loads((out / "audience_2026-11-02.manifest.json").read_text())
    assert (
        manifest["counts"]["written"]
        == len(pd.read_parquet(out / "audience_2026-11-02.parquet"))
        > 0
    )
    assert manifest["selection"]["top_deciles"] == 3
    assert (
        main(
            [
                "audience",
                "--out",
                str(out),
                "--data",
                str(tmp_path / "campaign.csv"),
                "--features",
                "segmnt",
                "--outcome",
                "bought",
            ]
        )
        == 1
    )
    assert "segmnt" in capsys.readouterr().err


def test_the_audience_command_takes_its_opt_out_column_from_the_project_file(
    tmp_path, monkeypatch, capsys
):
    """privacy.opt_out of the project file is the default of --opt-out: opted-out people never appear."""
    import yaml

    from journeylab.datasets import make_sample, write_sample
    from journeylab.reports.cli import main as cli_main

    sample = make_sample(seed=8, n_users=1_500)
    sample.users = sample.users.assign(do_not_contact=(sample.users.index % 4 == 0))
    write_sample(sample, tmp_path / "data")
    spec = yaml.safe_load(
        (Path(audiences.__file__).parents[1] / "datasets" / "home_services.yaml").read_text()
    )
    spec["data"] = {"events": {"path": "data/events.parquet"}}
    spec["privacy"] = {"opt_out": "do_not_contact", "min_users": 5}
    config = tmp_path / "journeylab.yaml"
    config.write_text(yaml.safe_dump(spec, allow_unicode=True))
    monkeypatch.setenv("JOURNEYLAB_PSEUDONYM_KEY", "audience-test-key-123")
    code = cli_main(
        [
            "audience",
            "--out",
            str(tmp_path / "out"),
            "--data",
            str(tmp_path / "data"),
            "--config",
            str(config),
            "--raw-ids",
        ]
    )
    assert code == 0, capsys.readouterr().err
    (written,) = (tmp_path / "out").glob("*.csv")
    ids = set(pd.read_csv(written, dtype=str)["user_id"])
    opted_out = set(sample.users.loc[sample.users["do_not_contact"], "user_id"])
    assert ids and not (ids & opted_out)
