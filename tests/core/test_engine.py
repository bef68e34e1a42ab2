"""The embedded DuckDB engine: limits set once apply to every query."""

from __future__ import annotations

import pytest

from journeylab.core import sql as engine
from journeylab.core.errors import ParameterError


def test_configured_limits_apply_to_shared_and_new_databases(monkeypatch):
    monkeypatch.setattr(engine, "_SETTINGS", {})
    monkeypatch.setenv("JOURNEYLAB_DUCKDB_THREADS", "1")
    fresh = engine.connect()
    assert fresh.execute("SELECT current_setting('threads')").fetchone()[0] == 1
    assert fresh.execute("SELECT current_setting('TimeZone')").fetchone()[0] == "UTC"
    fresh.close()
    engine.configure(memory_limit="3GB")
    cur = engine.cursor()
    limit = cur.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    cur.close()
    assert (
        limit.replace(" ", "")
        .upper()
        .startswith(("2.7GIB", "2.8GIB", "3.0GB", "3GB", "2.7", "2.8"))
    )
    assert engine.settings() == {"threads": "1", "memory_limit": "3GB"}
    engine.configure(memory_limit="80%")  # back to DuckDB's default share


def test_a_bad_setting_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(engine, "_SETTINGS", {})
    with pytest.raises(ParameterError, match="memory_limit == 'lots' was refused"):
        engine.configure(memory_limit="lots")
        engine.connect()
    monkeypatch.setattr(engine, "_SETTINGS", {})


def test_no_connection_draws_a_progress_bar(tmp_path):
    # a long query in a notebook would otherwise put DuckDB's progress widget into the report
    import duckdb

    from journeylab.io.sources import open_relation

    path = tmp_path / "events.duckdb"
    with duckdb.connect(str(path)) as db:
        db.execute("CREATE TABLE events AS SELECT 1 AS x")
    new, shared = engine.connect(), engine.cursor()
    con, *_ = open_relation(str(path), table="events")
    for c in (new, shared, con):
        setting = c.execute("SELECT current_setting('enable_progress_bar')").fetchall()[0][0]
        assert setting is False
        c.close()
