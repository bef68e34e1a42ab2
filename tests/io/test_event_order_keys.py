"""The integer-key paths of loading give exactly what pandas' own sort and duplicated give."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journeylab.core.stages import StageMap
from journeylab.io.loaders import event_rank, sort_events
from journeylab.io.pipeline import duplicated_rows, sort_codes

STAGES = StageMap.from_dict(
    {"stages": [{"name": "a", "events": ["view"]}, {"name": "b", "events": ["cart", "buy"]}]}
)


def _frame(seed: int, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    stamps = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 5, n), unit="s")
    value = rng.choice([np.nan, 0.0, -0.0, 1.5, 2.0], n)
    return pd.DataFrame(
        {
            "user_id": pd.array(rng.choice(["u1", "u2", "u10", "ü"], n), dtype="str"),
            "timestamp": stamps,
            "event": pd.array(rng.choice(["view", "cart", "buy", "other"], n), dtype="str"),
            "channel": pd.array(rng.choice(["Email", "seo", None], n), dtype="str"),
            "value": value,
            "device": pd.array(rng.choice(["ios", "web", None], n), dtype="str"),
        }
    )


def _reference_sort(frame: pd.DataFrame) -> pd.DataFrame:
    keyed = frame.assign(__rank=event_rank(frame["event"], STAGES).to_numpy())
    keys = ["user_id", "timestamp", "__rank", "event", "channel", "value"]
    if keyed.duplicated(subset=keys).any():
        rest = sorted(c for c in frame.columns if c not in keys)
        for column in rest:
            keyed[f"__tie_{column}"] = frame[column].astype("str")
        keys += [f"__tie_{c}" for c in rest]
    ordered = keyed.sort_values(keys, kind="stable", na_position="last")
    return ordered[list(frame.columns)].reset_index(drop=True)


@pytest.mark.parametrize("seed", range(5))
def test_sort_events_matches_the_pandas_sort(seed):
    frame = _frame(seed)
    pd.testing.assert_frame_equal(sort_events(frame, STAGES), _reference_sort(frame))


@pytest.mark.parametrize("seed", range(5))
def test_duplicated_rows_matches_pandas(seed):
    frame = _frame(seed)
    columns = list(frame.columns)
    expected = frame.duplicated(subset=columns, keep="first").to_numpy()
    assert (duplicated_rows(frame, columns) == expected).all()


def test_sort_codes_order_like_pandas():
    frame = _frame(9)
    for column in frame.columns:
        codes = sort_codes(frame[column])
        expected = frame.sort_values(column, kind="stable", na_position="last").index.to_numpy()
        assert (np.argsort(codes, kind="stable") == expected).all(), column


def test_stable_order_is_numpy_lexsort():
    from journeylab.io.pipeline import stable_order

    rng = np.random.default_rng(3)
    keys = [
        rng.integers(0, 5, 5000),
        rng.integers(0, 3, 5000),
        rng.choice([np.nan, -0.0, 0.0, 1.5], 5000),
    ]
    assert (stable_order(keys) == np.lexsort(keys[::-1])).all()


def _reference_load(frame: pd.DataFrame, window: pd.Timedelta) -> pd.DataFrame:
    """Exact duplicates, near duplicates and the sort, each the plain pandas way."""
    kept = frame[~frame.duplicated(keep="first")].reset_index(drop=True)
    key = ["user_id", "event", "channel", "value"]
    ordered = kept.assign(__row=np.arange(len(kept))).sort_values(
        [*key, "timestamp", "__row"], kind="stable", na_position="last"
    )
    group = ordered.groupby(key, dropna=False, sort=False).ngroup().to_numpy()
    same = np.r_[False, group[1:] == group[:-1]]
    close = same & (ordered["timestamp"].diff().to_numpy() <= np.timedelta64(window.value, "ns"))
    kept = kept.drop(index=ordered.index[close]).reset_index(drop=True)
    return _reference_sort(kept)


@pytest.mark.parametrize("seed", range(4))
def test_loaded_events_match_the_pandas_steps(seed):
    from journeylab.io.loaders import load_events

    frame = _frame(seed, n=1500)
    frame = pd.concat([frame, frame.sample(frac=0.2, random_state=seed)], ignore_index=True)
    frame["timestamp"] = frame["timestamp"].astype("datetime64[ns, UTC]")
    loaded = load_events(frame, stage_map=STAGES, dedupe_window="1s")
    expected = _reference_load(frame, pd.Timedelta("1s"))
    text = ["event", "channel", "device"]  # repeated text is kept as sorted categoricals
    for column in text:
        categories = loaded.frame[column].cat.categories
        assert list(categories) == sorted(frame[column].dropna().unique())
    pd.testing.assert_frame_equal(loaded.frame.astype(dict.fromkeys(text, "str")), expected)
    exact = int(frame.duplicated().sum())
    assert loaded.quality.count("exact duplicate") == exact
    assert loaded.quality.count("near duplicate") == len(frame) - exact - len(expected)


def test_string_sort_codes_are_the_ordered_categorical_codes():
    values = pd.Series(["b", "a", None, "ä", "A", "b", "Z", "", "ü", "u"], dtype="str")
    codes = pd.Categorical(values, ordered=True).codes
    expected = np.where(codes == -1, codes.max() + 1, codes)
    assert sort_codes(values).tolist() == expected.tolist()


@given(
    st.lists(st.one_of(st.none(), st.text(max_size=4)), min_size=1, max_size=60),
)
@settings(max_examples=200, deadline=None)
def test_categorical_text_keeps_the_values_and_their_order(values):
    from journeylab.io.pipeline import as_categorical

    text = pd.Series(values, dtype="str")
    coded = as_categorical(text)
    assert list(coded.cat.categories) == sorted(text.dropna().unique())
    pd.testing.assert_series_equal(coded.astype("str"), text)
    assert (sort_codes(coded) == sort_codes(text)).all()  # sorts as the text does


def test_loaded_events_keep_repeated_text_as_categoricals():
    from journeylab.io.loaders import load_events

    n = 40
    frame = pd.DataFrame(
        {
            "user_id": [f"u{i % 7}" for i in range(n)],
            "timestamp": pd.date_range("2026-01-01", periods=n, freq="h", tz="UTC"),
            "event": ["view", "cart"] * (n // 2),
            "channel": [f"c{i}" for i in range(n)],  # every value different: still a category
            "device": ["ios", "web", None, "web"] * (n // 4),
            "note": [f"free text {i}" for i in range(n)],  # mostly distinct: kept as text
            "zip": ["02134", "10001"] * (n // 2),  # typed as text by the caller: kept as text
        }
    )
    loaded = load_events(frame, dtypes={"zip": "str"}).frame
    for column in ("event", "channel", "device"):
        assert isinstance(loaded[column].dtype, pd.CategoricalDtype), column
        assert loaded[column].cat.categories.tolist() == sorted(frame[column].dropna().unique())
    assert loaded["device"].isna().sum() == n // 4
    for column in ("user_id", "note", "zip"):
        assert isinstance(loaded[column].dtype, pd.StringDtype), column
    by_event = loaded.groupby("event")["user_id"].size()  # only the categories that occur
    assert by_event.to_dict() == {"cart": n // 2, "view": n // 2}


@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(-3, 40), st.integers(0, 2), st.integers(0, 2)),
        min_size=1,
        max_size=80,
    ),
    st.integers(0, 5),
)
@settings(max_examples=200, deadline=None)
def test_near_duplicates_among_bursts_are_the_near_duplicates(rows, seconds):
    from journeylab.io.loaders import _in_bursts, _key_order, _near_duplicates, _order_keys
    from journeylab.io.sources import ROW

    user, second, event, channel = zip(*rows, strict=True)
    frame = pd.DataFrame(
        {
            ROW: np.arange(1, len(rows) + 1),
            "user_id": pd.array([f"u{u}" for u in user], dtype="str"),
            "timestamp": pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(second, unit="s"),
            "event": pd.array([["view", "cart", "buy"][e] for e in event], dtype="str"),
            "channel": pd.array([["seo", None, "mail"][c] for c in channel], dtype="str"),
            "value": np.where(np.array(event) == 2, 9.5, np.nan),
        }
    )
    window = pd.Timedelta(seconds=seconds)
    codes = _order_keys(frame, STAGES)
    keep = np.ones(len(frame), dtype=bool)
    keep[::7] = False  # rows taken out as exact duplicates before
    every = _near_duplicates(frame, codes, keep, window)
    bursts = _in_bursts(_key_order(frame, codes), codes, window)
    assert (_near_duplicates(frame, codes, keep & bursts, window) == every).all()
    assert not (every & ~bursts).any()
