"""Bad input files get exact errors (file, column, line, what to do) or a counted repair.

Each case is a probe that used to fail: DuckDB's "Error when sniffing file"
with no line, a delimiter hint for a file that is not UTF-8, line numbers one
too low after a quoted line break or a blank line, silently renamed duplicate
headers, pandas' "Grouper ... not 1-dimensional", a bare year read as 1 January,
bidirectional controls and NUL kept in channel names, naive text read as UTC
without the note.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from journeylab.core.errors import DataError, SchemaError
from journeylab.datasets import sample_stage_map
from journeylab.io import loaders
from journeylab.io.loaders import load_spend


def load_events(*args, **kwargs):
    """The loader with the sample's stage map (there is no default one)."""
    return loaders.load_events(*args, **{"stage_map": sample_stage_map(), **kwargs})


HEADER = "user_id,timestamp,event,channel\n"
GOOD = "u9,2026-01-02 10:00:00,visit,web\n"


def _write(tmp_path, name: str, content: str | bytes):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")
    return path


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        (
            "u1,2026-01-01 10:00,visit,web\nu2,2026-01-01 11:00,visit\n",
            3,
            "Line {} has 3 fields, the first line has 4",
        ),
        ("u1,2026-01-01 10:00,visit,web,extra\n", 2, "Line {} has 5 fields, the first line has 4"),
        ('u1,2026-01-01 10:00,"visit,web\n', 2, "quoted field opened on line {} is never closed"),
    ],
    ids=["short-row", "long-row", "unclosed-quote"],
)
@pytest.mark.parametrize("depth", [0, 20_000], ids=["near-top", "deep"])
def test_ragged_rows_and_open_quotes_name_their_line(tmp_path, body, line, message, depth):
    path = _write(tmp_path, "events.csv", HEADER + GOOD * depth + body + GOOD * 5)
    with pytest.raises(DataError) as info:
        load_events(path)
    assert message.format(line + depth) in str(info.value)
    assert info.value.rows == [line + depth]
    assert info.value.source == str(path)
    assert "sniffing" not in str(info.value)


@pytest.mark.parametrize(
    ("encoding", "text", "reason", "line"),
    [
        ("latin-1", "Caf\xe9", "byte 0xe9 on line 2", 2),
        ("cp1252", "\u2019quoted\u2019", "byte 0x92 on line 2", 2),
        ("utf-16", "web", "UTF-16 byte-order mark", 1),
        ("utf-16-le", "web", "every other byte is zero", 1),
    ],
)
def test_files_that_are_not_utf8_say_so(tmp_path, encoding, text, reason, line):
    content = (HEADER + f"u1,2026-01-01 10:00,visit,{text}\n" + GOOD * 3).encode(encoding)
    path = _write(tmp_path, "events.csv", content)
    with pytest.raises(DataError, match="not UTF-8") as info:
        load_events(path)
    assert reason in str(info.value)
    assert info.value.rows == [line]
    assert "iconv" in str(info.value) and "delim" not in str(info.value)


@pytest.mark.parametrize(
    ("before", "extra_lines"),
    [
        ('u1,2026-01-01 10:00,"vi\nsit",web\n', 1),  # a quoted line break
        ('u1,2026-01-01 10:00,"a\nb\nc",web\n', 2),
        ("u1,2026-01-01 10:00,visit,web\n\n", 1),  # a blank line (DuckDB skips it)
        ("u1,2026-01-01 10:00,visit,web\n\n\n", 2),
    ],
    ids=["quoted-newline", "two-quoted-newlines", "blank-line", "two-blank-lines"],
)
@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_line_numbers_count_physical_lines(tmp_path, before, extra_lines, newline):
    text = HEADER + before + GOOD + "u3,notatime,visit,web\n"
    path = _write(tmp_path, "events.csv", text.replace("\n", newline))
    with pytest.raises(DataError, match="not timestamps") as info:
        load_events(path)
    expected = 4 + extra_lines  # header, the first record's lines, GOOD, then the bad row
    assert info.value.rows == [expected]
    assert f"at line {expected} (file lines" in str(info.value)


def test_quality_report_rows_are_file_lines_after_a_quoted_line_break(tmp_path):
    path = _write(
        tmp_path,
        "events.csv",
        HEADER + 'u1,2026-01-01 10:00,"a\nb",web\n' + ",2026-01-01 11:00,visit,web\n",
    )
    report = load_events(path).quality
    step = next(s for s in report.steps if s.step == "missing user_id")
    assert step.rows == (4,)


def test_duplicated_csv_header_is_an_error_not_a_rename(tmp_path):
    path = _write(
        tmp_path,
        "events.csv",
        "user_id,timestamp,event,channel,Channel \nu1,2026-01-01,visit,web,app\n",
    )
    with pytest.raises(
        SchemaError, match=r"names the column 'Channel' twice|names the column 'channel' twice"
    ) as info:
        load_events(path)
    assert info.value.rows == [1] and info.value.source == str(path)
    assert info.value.column.casefold() == "channel"


def test_dataframe_with_duplicated_columns_is_named():
    frame = pd.DataFrame(
        [["u1", "2026-01-01", "visit", "web", "app"]],
        columns=["user_id", "timestamp", "event", "channel", "channel"],
    )
    with pytest.raises(SchemaError, match=r"more than once: \['channel'\]") as info:
        load_events(frame)
    assert info.value.column == "channel" and "Grouper" not in str(info.value)


@pytest.mark.parametrize("value", ["2026", "2026-10", " 2026 "])
def test_bare_year_or_month_is_not_a_timestamp(tmp_path, value):
    path = _write(tmp_path, "events.csv", HEADER + GOOD + f"u1,{value},visit,web\n")
    with pytest.raises(DataError, match="bare year or year-month") as info:
        load_events(path)
    assert info.value.rows == [3] and info.value.column == "timestamp"


def test_full_dates_without_time_still_load(tmp_path):
    path = _write(
        tmp_path, "events.csv", HEADER + "u1,2026-10-01,visit,web\nu2,20261002,visit,web\n"
    )
    stamps = load_events(path).frame["timestamp"]
    assert list(stamps.dt.strftime("%Y-%m-%d")) == ["2026-10-01", "2026-10-02"]


def test_bidi_controls_and_nul_are_removed_from_channel_names_and_counted(tmp_path):
    rows = [
        ("u1", "\u202eliamE"),  # displays as "Email" in a browser
        ("u2", "Email"),
        ("u3", "We\u2066b"),
        ("u4", "Nu\x00ll"),
        ("u5", "Web"),
    ]
    body = "".join(f"{u},2026-01-01 10:0{i},visit,{c}\n" for i, (u, c) in enumerate(rows))
    loaded = load_events(_write(tmp_path, "events.csv", HEADER + body))
    channels = loaded.frame.sort_values("user_id")["channel"].tolist()
    assert channels == ["liamE", "Email", "Web", "Null", "Web"]
    assert not any(ch in "".join(channels) for ch in "\u202e\u2066\x00")
    step = next(s for s in loaded.quality.steps if s.step == "channel names canonicalised")
    assert step.count == 3 and step.action == "repaired"
    assert "'\\u202eliamE' → 'liamE'" in loaded.quality.summary()


def test_bidi_controls_are_removed_from_event_names(tmp_path):
    body = "u1,2026-01-01 10:00,\u202edeliated,web\nu2,2026-01-01 11:00,visit,web\n"
    loaded = load_events(_write(tmp_path, "events.csv", HEADER + body))
    assert set(loaded.frame["event"]) == {"deliated", "visit"}


def test_naive_text_in_a_mixed_column_gets_the_utc_note():
    frame = pd.DataFrame(
        {
            "user_id": ["u1", "u2", "u3"],
            "timestamp": [
                pd.Timestamp("2026-01-01 10:00", tz="Europe/Paris"),
                "2026-01-01 11:00",
                dt.datetime(2026, 1, 1, 12),
            ],
            "event": ["a", "b", "c"],
        }
    )
    loaded = load_events(frame)
    assert "times without a time zone were read as UTC" in loaded.quality.summary()
    assert loaded.frame["timestamp"].dt.strftime("%H:%M").tolist() == ["09:00", "11:00", "12:00"]
    local = load_events(frame, tz="America/New_York")
    assert local.frame["timestamp"].dt.strftime("%H:%M").tolist() == ["09:00", "16:00", "17:00"]
    assert "local times in America/New_York converted to UTC" in local.quality.summary()


def test_mixed_column_with_numbers_names_the_rows():
    frame = pd.DataFrame(
        {
            "user_id": ["u1", "u2"],
            "timestamp": [pd.Timestamp("2026-01-01", tz="UTC"), 17],
            "event": ["a", "b"],
        }
    )
    with pytest.raises(DataError, match="neither text nor timestamps") as info:
        load_events(frame)
    assert info.value.rows == [2]


def test_spend_file_with_a_ragged_row_names_the_line(tmp_path):
    path = _write(tmp_path, "spend.csv", "channel,date,cost\nweb,2026-01-01,10\nsms,2026-01-01\n")
    with pytest.raises(DataError, match="Line 3 has 2 fields"):
        load_spend(path)


# -- on the real UCI Online Retail file (../shared/data) -------------------------------------


def _missing_id_lines(path, limit: int = 5) -> list[int]:
    """First file lines whose CustomerID is blank, found by Python's csv module (the reference)."""
    import csv
    import gzip

    opener = gzip.open if str(path).endswith(".gz") else open
    found: list[int] = []
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header, last = next(reader), 1
        column = header.index("CustomerID")
        for row in reader:
            start, last = last + 1, reader.line_num
            if row and not row[column].strip():
                found.append(start)
                if len(found) == limit:
                    break
    return found


@pytest.fixture(scope="module")
def retail_lines():
    from conftest import shared_file

    path = shared_file("online_retail", "online_retail_by_day_concat.csv.gz")
    import gzip

    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        return path, [next(handle) for _ in range(6000)]


RETAIL_COLUMNS = {"CustomerID": "user_id", "InvoiceDate": "timestamp", "StockCode": "event"}


@pytest.mark.shared_data
def test_real_retail_file_missing_ids_are_reported_at_their_file_lines(retail_lines):
    path, _ = retail_lines
    loaded = load_events(path, columns=RETAIL_COLUMNS, tz="Europe/London")
    step = next(s for s in loaded.quality.steps if s.step == "missing user_id")
    reference = json.loads(
        (Path(__file__).parents[1] / "results" / "real_data_loading.json").read_text()
    )
    assert step.count == reference["online_retail"]["missing_customer_id"]
    assert list(step.rows) == _missing_id_lines(path)


@pytest.mark.shared_data
def test_real_retail_rows_after_a_quoted_line_break_keep_their_lines(retail_lines, tmp_path):
    _, lines = retail_lines
    # Give one early description a quoted line break, as a spreadsheet export of a
    # multi-line cell does; every later record starts one file line further down.
    index = next(i for i, line in enumerate(lines) if i > 10 and ",WHITE" in line)
    fields = lines[index].split(",")
    fields[2] = f'"{fields[2]}\nSECOND LINE"'
    lines = [*lines[:index], ",".join(fields), *lines[index + 1 :]]
    path = _write(tmp_path, "retail.csv", "".join(lines))
    loaded = load_events(path, columns=RETAIL_COLUMNS, tz="Europe/London")
    step = next(s for s in loaded.quality.steps if s.step == "missing user_id")
    assert list(step.rows) == _missing_id_lines(path)
    assert step.rows[0] > index + 1


@pytest.mark.shared_data
def test_real_retail_file_saved_as_utf16_says_so(retail_lines, tmp_path):
    _, lines = retail_lines
    path = _write(tmp_path, "retail.csv", "".join(lines).encode("utf-16"))
    with pytest.raises(DataError, match="not UTF-8: the file starts with a UTF-16 byte-order mark"):
        load_events(path, columns=RETAIL_COLUMNS)
