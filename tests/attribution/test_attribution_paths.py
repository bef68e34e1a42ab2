"""Input validation and canonical form of path tables (property 8 of REFERENCES.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from journeylab.attribution import attribute, read_path_table, touches_to_path_table
from journeylab.core.errors import DataError, ParameterError, SchemaError


def table(paths, conv, null=None, value=None):
    out = {"path": paths, "conversions": conv}
    if null is not None:
        out["non_conversions"] = null
    if value is not None:
        out["value"] = value
    return pd.DataFrame(out)


def test_separator_inside_channel_name_is_ambiguous_only_in_text_paths():
    # paths given as tuples (as path_table builds them) keep any channel name, ">" included
    paths = read_path_table(table([("a", "b>c"), ("a",)], [1, 1]))
    assert "b>c" in paths.channels
    with pytest.raises(DataError, match="contains the path separator") as err:
        read_path_table(table(["a>b>c", "a"], [1, 1]), separator=" > ")
    assert err.value.column == "path" and err.value.rows == [0]
    # Also in text paths written with a spaced separator.
    with pytest.raises(DataError, match="'Social>Paid' contains the path separator"):
        read_path_table(table(["Social>Paid > Email"], [1]), separator=" > ")


def test_empty_channel_from_doubled_separator_is_rejected():
    with pytest.raises(DataError, match="empty channel name") as err:
        read_path_table(table(["a > b", "a >> b"], [1, 1]))
    assert err.value.rows == [1]


@pytest.mark.parametrize(
    ("values", "what"),
    [([1, -2, 3], "negative"), ([1, np.nan, 3], "missing"), ([1, np.inf, 0], "infinite")],
)
def test_bad_counts_are_rejected_naming_column_and_rows(values, what):
    with pytest.raises(DataError, match=f"'conversions' has 1 {what}") as err:
        read_path_table(table(["a", "b", "c"], values))
    assert err.value.column == "conversions" and err.value.rows == [1]
    with pytest.raises(DataError, match=f"'non_conversions' has 1 {what}"):
        read_path_table(table(["a", "b", "c"], [1, 1, 1], null=values))


def test_non_numeric_counts_are_rejected():
    with pytest.raises(DataError, match="not numbers"):
        read_path_table(table(["a", "b"], [1, "many"]))


def test_missing_paths_are_rejected():
    with pytest.raises(DataError, match="2 missing path") as err:
        read_path_table(table(["a", None, np.nan], [1, 1, 1]))
    assert err.value.rows == [1, 2]


def test_missing_channel_inside_a_path_is_rejected():
    with pytest.raises(DataError, match="not a string"):
        read_path_table(table([("a", None), ("b",)], [1, 1]))


def test_empty_path_with_conversions_errors_or_maps_to_direct():
    frame = table([(), ("a",), ()], [2, 1, 0], null=[1, 1, 4])
    with pytest.raises(DataError, match="conversions but no touch") as err:
        read_path_table(frame)
    assert err.value.rows == [0]
    t = read_path_table(frame, empty_paths="direct")
    assert t.channels == ("(direct)", "a")
    assert t.conversions.sum() == 3 and t.non_conversions.sum() == 6
    f = attribute(frame, ["last_touch", "markov"], empty_paths="direct").to_frame()
    assert f.loc["(direct)", "last_touch"] == 2
    assert f["markov"].sum() == pytest.approx(3)


def test_fractional_counts_are_weights_never_truncated():
    t = read_path_table(table([("a",), ("b",)], [0.5, 2.25], null=[0.25, 0.0]))
    np.testing.assert_array_equal(t.conversions, [0.5, 2.25])
    assert any("fractional" in n for n in t.notes)
    f = attribute(table([("a",), ("b",)], [0.5, 2.25], null=[0.25, 0.0]), ["linear"]).to_frame()
    assert f["linear"].tolist() == [0.5, 2.25]


def test_unicode_names_normalised_and_merged():
    frame = table([("Paid Search",), ("Paid\u3000Search ",), ("ｅｍａｉｌ",)], [1, 2, 4])
    t = read_path_table(frame)
    assert t.channels == ("Paid Search", "email")
    assert t.conversions.tolist() == [3.0, 4.0]
    assert any("normalised" in n for n in t.notes)
    assert any("NFKC" in line for line in attribute(frame, ["linear"]).summary().splitlines())


def test_repeats_collapsed_by_default_and_kept_on_request():
    frame = table([("a", "a", "b"), ("a", "b")], [1, 1])
    assert read_path_table(frame).paths == ((0, 1),)
    assert read_path_table(frame, collapse_repeats=False).paths == ((0, 0, 1), (0, 1))
    f = attribute(frame, ["linear"], collapse_repeats=False).to_frame()
    assert f["linear"].to_dict() == pytest.approx({"a": 2 / 3 + 1 / 2, "b": 1 / 3 + 1 / 2})


def test_missing_columns_named_with_hint():
    with pytest.raises(SchemaError, match="'conversions' \\(did you mean 'conversion'\\?\\)"):
        read_path_table(pd.DataFrame({"path": ["a"], "conversion": [1]}))
    with pytest.raises(SchemaError, match="must be a pandas DataFrame"):
        read_path_table([("a",)])


def test_parameter_checks():
    frame = table(["a"], [1])
    with pytest.raises(ParameterError, match="empty_paths == 'drop'"):
        read_path_table(frame, empty_paths="drop")
    with pytest.raises(ParameterError, match="n_boot == -1"):
        attribute(frame, ["linear"], n_boot=-1)
    with pytest.raises(ParameterError, match="level == 1.5, must be < 1"):
        attribute(frame, ["linear"], level=1.5)


def test_touches_grouped_into_paths_in_time_order():
    touches = pd.DataFrame(
        {
            "journey_id": [2, 1, 1, 1, 3, 3],
            "timestamp": pd.to_datetime(
                ["2026-01-02", "2026-01-03", "2026-01-01", "2026-01-02", "2026-01-01", "2026-01-01"]
            ),
            "channel": ["email", "sms", "social", None, "email", "social"],
            "converted": [False, True, True, True, True, True],
            "value": [np.nan, 50.0, 50.0, 50.0, 20.0, 20.0],
        }
    )
    pt = touches_to_path_table(touches)
    got = {p: (c, v, n) for p, c, v, n in pt.itertuples(index=False)}
    # Ties keep input order (journey 3: email then social); missing channels add no touch.
    assert got == {
        ("email",): (0.0, 0.0, 1.0),
        ("email", "social"): (1.0, 20.0, 0.0),
        ("social", "sms"): (1.0, 50.0, 0.0),
    }
