"""Keyed pseudonyms and spreadsheet-safe CSV export (REFERENCES.md SEC-1, SEC-2)."""

from __future__ import annotations

import csv
import hashlib
import hmac

import numpy as np
import pandas as pd
import pytest

from journeylab.core.errors import ParameterError
from journeylab.datasets import sample_stage_map
from journeylab.io import loaders
from journeylab.io.privacy import KEY_ENV, KEY_FILE_ENV, escape_formulas, pseudonymize, safe_csv

#: These logs use the sample's vocabulary: the loaders are given its stage map
#: explicitly (there is no default stage map).
SAMPLE_STAGES = sample_stage_map()


def load_events(*args, **kwargs):
    """``load_events`` with the sample's stage map unless the test gives one."""
    kwargs.setdefault("stage_map", SAMPLE_STAGES)
    return loaders.load_events(*args, **kwargs)


KEY = "test-key-0123456789-abcdef"


@pytest.fixture(autouse=True)
def no_key_in_environment(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)


def test_pseudonyms_are_hmac_sha256_of_the_id_text():
    expected = hmac.new(KEY.encode(), b"00123", hashlib.sha256).hexdigest()[:16]
    assert pseudonymize("00123", key=KEY) == expected
    out = pseudonymize(["00123", "123", "00123", None], key=KEY)
    assert out[0] == out[2] == expected and out[1] != out[0]
    assert pd.isna(out[3])
    assert len(pseudonymize("x", key=KEY, length=40)) == 40


def test_series_keeps_index_and_name():
    ids = pd.Series(["a", "b", np.nan], index=[10, 20, 30], name="user_id")
    out = pseudonymize(ids, key=KEY)
    assert list(out.index) == [10, 20, 30] and out.name == "user_id"
    assert out.isna().tolist() == [False, False, True]


def test_key_from_environment_or_key_file(monkeypatch, tmp_path):
    monkeypatch.setenv(KEY_ENV, KEY)
    from_env = pseudonymize("u1")
    monkeypatch.delenv(KEY_ENV)
    key_file = tmp_path / "pseudonym.key"
    key_file.write_text(KEY + "\n")
    monkeypatch.setenv(KEY_FILE_ENV, str(key_file))
    assert pseudonymize("u1") == from_env == pseudonymize("u1", key=KEY)
    assert pseudonymize("u1", key="another-key-of-16+chars") != from_env


def test_no_key_is_a_clear_error_never_a_plain_hash():
    with pytest.raises(ParameterError, match=r"No pseudonymisation key.*JOURNEYLAB_PSEUDONYM_KEY"):
        pseudonymize(["u1"])
    with pytest.raises(ParameterError, match="at least 16"):
        pseudonymize(["u1"], key="short")


def test_missing_key_file_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv(KEY_FILE_ENV, str(tmp_path / "nope.key"))
    with pytest.raises(ParameterError, match="nope.key"):
        pseudonymize(["u1"])


def test_load_events_pseudonymizes_and_never_shows_the_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    frame = pd.DataFrame(
        {
            "user_id": ["00123", "123", "00123"],
            "timestamp": ["2026-05-01 10:00", "2026-05-01 11:00", "2026-05-02"],
            "event": "x",
        }
    )
    loaded = load_events(frame, pseudonymize=True)
    ids = set(loaded.frame["user_id"])
    assert ids == {pseudonymize("00123"), pseudonymize("123")}
    assert not ids & {"00123", "123"}
    shown = repr(loaded) + loaded._repr_html_() + loaded.quality.summary() + loaded.frame.to_csv()
    assert KEY not in shown and "00123" not in shown
    assert "HMAC-SHA256" in loaded.quality.summary() and KEY_ENV in loaded.quality.summary()
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(ParameterError, match="No pseudonymisation key"):
        load_events(frame, pseudonymize=True)


def test_escape_formulas_prefixes_risky_text_cells():
    frame = pd.DataFrame(
        {
            "note": [
                '=HYPERLINK("http://x")',
                "+1",
                "-2",
                "@SUM(A1)",
                "\tTAB",
                "\rCR",
                "fine",
                None,
            ],
            "amount": [-5.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
            "=cmd": ["a"] * 8,
        }
    )
    out = escape_formulas(frame)
    assert out["note"].tolist()[:7] == [
        '\'=HYPERLINK("http://x")',
        "'+1",
        "'-2",
        "'@SUM(A1)",
        "'\tTAB",
        "'\rCR",
        "fine",
    ]
    assert pd.isna(out["note"].iloc[7])
    assert out["amount"].tolist()[0] == -5.0  # numbers are not text
    assert list(out.columns) == ["note", "amount", "'=cmd"]
    assert frame["note"].iloc[0].startswith("=")  # the input is not modified


def test_safe_csv_writes_escaped_cells(tmp_path):
    frame = pd.DataFrame({"user_id": ["u1", "u2"], "comment": ["=1+1", "great service"]})
    path = safe_csv(frame, tmp_path / "out.csv")
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows == [["user_id", "comment"], ["u1", "'=1+1"], ["u2", "great service"]]
    indexed = safe_csv(frame.set_index("comment"), tmp_path / "indexed.csv", index=True)
    assert "'=1+1" in indexed.read_text()


@pytest.mark.parametrize("breaker", ["\r", "\n", "\r\n"], ids=["cr", "lf", "crlf"])
def test_safe_csv_quotes_fields_holding_line_breaks(tmp_path, breaker):
    """A bare carriage return must not end the row and start the next with a formula."""
    frame = pd.DataFrame(
        {
            "note": [f"harmless{breaker}=1+1", "ok"],
            "amount": [1, 2],
            f"col{breaker}=2+2": ["a", "b"],
        }
    )
    path = safe_csv(frame, tmp_path / "out.csv")
    raw = path.read_bytes()
    assert f'"harmless{breaker}=1+1"'.encode() in raw  # quoted, so one cell
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows == [
        ["note", "amount", f"col{breaker}=2+2"],
        [f"harmless{breaker}=1+1", "1", "a"],
        ["ok", "2", "b"],
    ]
    back = pd.read_csv(path)
    assert back.shape == (2, 3)
    assert back["note"].tolist() == [f"harmless{breaker}=1+1", "ok"]
    # no row of the file, as a spreadsheet splits it, starts with a formula character
    assert not any(row and row[0].startswith(("=", "+", "-", "@")) for row in rows)


def test_safe_csv_refuses_options_that_would_unquote_line_breaks(tmp_path):
    frame = pd.DataFrame({"note": ["a\rb"]})
    with pytest.raises(ParameterError, match="lineterminator"):
        safe_csv(frame, tmp_path / "out.csv", lineterminator="\n")
    with pytest.raises(ParameterError, match="QUOTE_NONE"):
        safe_csv(frame, tmp_path / "out.csv", quoting=csv.QUOTE_NONE)
