"""Text casts decided once per distinct value give what the cell-by-cell casts give."""

from __future__ import annotations

import numpy as np
import pandas as pd

from journeylab.io.casting import Where, cast_ids, cast_text, infer_property

WHERE = Where("test", np.arange(1, 7))


def _text(values):
    return pd.Series(values, dtype="str")


def test_clean_ids_are_kept_and_nothing_is_repaired():
    ids, repairs = cast_ids(_text(["u1", "00123", "é", None, "u1", "x-y"]), "user_id", WHERE)
    assert ids.tolist()[:3] == ["u1", "00123", "é"] and pd.isna(ids[3])
    assert not repairs["whitespace trimmed"].any()


def test_ids_with_spaces_or_blanks_are_trimmed_and_counted():
    ids, repairs = cast_ids(_text(["u1", " u2", "u3\u00a0", "  ", None, "u1"]), "user_id", WHERE)
    assert ids.tolist()[:3] == ["u1", "u2", "u3"] and ids[3:5].isna().all()
    assert repairs["whitespace trimmed"].tolist() == [False, True, True, False, False, False]


def test_properties_stay_text_unless_every_value_is_typed():
    assert infer_property(_text(["ios", "web", None]), "device", WHERE).dtype == "str"
    assert infer_property(_text(["1", "x"]), "n", WHERE).dtype == "str"
    assert infer_property(_text([" 7", "8 ", None]), "n", WHERE).dtype == "Int64"
    assert infer_property(_text(["1.5", "2"]), "n", WHERE).dtype == "float64"
    assert infer_property(_text(["TRUE", "false"]), "n", WHERE).dtype == "boolean"


def test_labels_changed_per_distinct_value():
    cleaned, changed = cast_text(_text(["view", " view", "vi\u200bew", None, "", "view"]))
    assert cleaned.tolist()[:3] == ["view", "view", "view"]
    assert changed.tolist() == [False, True, True, False, True, False]
