"""Guess a starter project file from an event log: ``journeylab init``.

The guesses are evidence-based and marked as guesses in the written file:

1. **Columns.** Each canonical role (``user_id``, ``timestamp``, ``event``,
   ``channel``, ``value``, ``session_id``) is matched to the source column
   whose name fits the role best among those whose values fit it (for
   ``timestamp``: the share of values that parse as times; for ``event``: a
   text column with a few hundred distinct values at most). The evidence is
   written beside each mapping ("timestamp ← `ts`: 100 % parse as times").
2. **Events.** The vocabulary with counts; each event gets a stage by keywords
   in its name (``impression`` → awareness, ``cart``/``checkout`` → purchase,
   ``review``/``referral`` → advocacy …), marked ``# guess``.
3. **Conversion.** The most frequent event whose name says purchase, order,
   booking completed, sign-up or conversion.
4. **Segments.** Other text columns with 2–50 distinct values.

Everything is read through DuckDB with aggregates over the whole file, so a
file of 10^7 events is read once per statistic, not loaded into pandas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from journeylab.core import sql as engine
from journeylab.core.errors import SchemaError
from journeylab.io.name_hints import _guess_conversion, _guess_stage, _name_score

__all__ = ["ColumnGuess", "ProjectGuess", "guess_project", "render_project", "find_events_file"]

_SUFFIXES = (".parquet", ".csv", ".csv.gz", ".tsv")
_MAX_EVENTS = 300


@dataclass
class ColumnGuess:
    """The source column guessed for a canonical role, with the evidence."""

    role: str
    column: str | None
    evidence: str


@dataclass
class ProjectGuess:
    """What ``journeylab init`` found in the data."""

    events_path: Path
    rows: int
    columns: list[ColumnGuess]
    event_counts: list[tuple[str, int]]
    stage_of: dict[str, str]
    conversion: str | None
    conversion_evidence: str
    segments: list[tuple[str, int]]
    funnel: list[str] = field(default_factory=list)
    transactions: dict[str, str] | None = None
    other_tables: dict[str, Path] = field(default_factory=dict)

    def mapping(self) -> dict[str, str]:
        """Source column → canonical name, for the roles that were found."""
        return {g.column: g.role for g in self.columns if g.column is not None}


def find_events_file(data: str | Path) -> tuple[Path, dict[str, Path]]:
    """Return the events file of a file or folder, and the other tables found beside it."""
    path = Path(data)
    if path.is_file():
        return path, {}
    if not path.is_dir():
        raise SchemaError(
            "The data path does not exist.",
            source=str(path),
            hint="give an events file (CSV or Parquet) or a folder holding one.",
        )
    others: dict[str, Path] = {}
    events = None
    for name in (
        "events",
        "users",
        "identities",
        "assignments",
        "feedback",
        "spend",
        "transactions",
    ):
        for suffix in _SUFFIXES:
            candidate = path / f"{name}{suffix}"
            if candidate.exists():
                if name == "events":
                    events = candidate
                else:
                    others[name] = candidate
                break
    if events is None:
        files = sorted(
            (p for p in path.iterdir() if p.name.endswith(_SUFFIXES)),
            key=lambda p: -p.stat().st_size,
        )
        if not files:
            raise SchemaError(
                "No CSV or Parquet file in the data folder.",
                source=str(path),
                hint="give the events file itself, or name it events.parquet / events.csv.",
            )
        events = files[0]
    return events, others


def quote_ident(name: str) -> str:
    """Quote an SQL identifier: double quotes, inner quotes doubled."""
    return '"' + str(name).replace('"', '""') + '"'


def _relation_sql(path: Path) -> str:
    text = str(path).replace("'", "''")
    if path.name.endswith(".parquet"):
        return f"read_parquet('{text}')"
    return f"read_csv('{text}', all_varchar = true, header = true)"


def guess_project(data: str | Path) -> ProjectGuess:
    """Inspect an event log and guess its project file.

    Parameters
    ----------
    data : str or Path
        The events file, or a folder holding ``events.*`` (and optionally the
        other tables, which are listed in the project file too).

    Returns
    -------
    ProjectGuess
    """
    events_path, others = find_events_file(data)
    rel = _relation_sql(events_path)
    with engine.cursor() as con:
        try:
            schema = con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()
        except Exception as exc:  # duckdb raises its own error classes
            raise SchemaError(
                f"Cannot read the events file: {exc}",
                source=events_path.name,
                hint="give a CSV (with a header row) or Parquet file.",
            ) from exc
        names = [row[0] for row in schema]
        types = {row[0]: str(row[1]).upper() for row in schema}
        stats = _column_stats(con, rel, names, types)
        orders = _guess_transactions(names, types, stats)
        if orders is not None:
            return _transactions_guess(
                events_path, stats, orders, names, types=types, others=others
            )
        columns = _guess_columns(names, types, stats)
        event_col = next(g.column for g in columns if g.role == "event")
        counts = con.execute(
            f"SELECT CAST({quote_ident(event_col)} AS VARCHAR) AS e, count(*) AS n FROM {rel} "
            f"WHERE {quote_ident(event_col)} IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {_MAX_EVENTS}"
        ).fetchall()
    event_counts = [(str(e), int(n)) for e, n in counts]
    used = {g.column for g in columns if g.column}
    segments = [
        (name, stats[name]["distinct"])
        for name in names
        if name not in used
        and _is_text(types[name])
        and 2 <= stats[name]["distinct"] <= 50
        and stats[name]["time_share"] < 0.5
    ]
    conversion, why = _guess_conversion(event_counts)
    stage_of = {e: _guess_stage(e) for e, _ in event_counts}
    funnel: list[str] = []
    if conversion:
        candidates = [e for e, _ in event_counts if stage_of[e] in ("consideration", "purchase")][
            :40
        ]
        with engine.cursor() as con:
            steps = _funnel_order(con, rel, columns, conversion, candidates=candidates)
        # at most one consideration step (the earliest) and the purchase steps after it
        first = [e for e in steps if stage_of[e] == "consideration"][:1]
        rest = [e for e in steps if stage_of[e] == "purchase"][-3:]
        funnel = [*first, *rest, conversion]
    return ProjectGuess(
        events_path=events_path,
        rows=int(stats["__rows__"]["distinct"]),
        columns=columns,
        event_counts=event_counts,
        stage_of=stage_of,
        conversion=conversion,
        funnel=funnel,
        conversion_evidence=why,
        segments=segments,
        other_tables=others,
    )


def _guess_transactions(
    names: list[str], types: dict[str, str], stats: dict[str, dict[str, Any]]
) -> dict[str, str] | None:
    """Column roles of an order-lines table (order id, time, customer, quantity, price), or None."""

    def best(role: str, fits) -> str | None:
        scored = [(_name_score(n, role), n) for n in names if fits(n) and _name_score(n, role) > 0]
        return max(scored)[1] if scored else None

    has_event = any(_name_score(n, "event") >= 90 for n in names)
    order = best("order_id", lambda n: stats[n]["distinct"] >= 2)
    price = best("price", lambda n: stats[n]["num_share"] >= 0.95)
    time = best("timestamp", lambda n: stats[n]["time_share"] >= 0.95) or next(
        (n for n in names if stats[n]["time_share"] >= 0.95), None
    )
    user = best("user_id", lambda n: stats[n]["distinct"] >= 2 and n not in (order, price))
    if has_event or order is None or price is None or time is None or user is None:
        return None
    roles = {"order_id": order, "price": price, "timestamp": time, "user_id": user}
    quantity = best("quantity", lambda n: stats[n]["num_share"] >= 0.95 and n != price)
    if quantity is not None:
        roles["quantity"] = quantity
    return roles


def _transactions_guess(events_path: Path, stats, roles, names, *, types, others) -> ProjectGuess:
    rows = int(stats["__rows__"]["distinct"])
    used = set(roles.values())
    columns = [
        ColumnGuess(
            "user_id",
            roles["user_id"],
            f"≈{stats[roles['user_id']]['distinct']:,} distinct customers",
        ),
        ColumnGuess(
            "timestamp",
            roles["timestamp"],
            f"{stats[roles['timestamp']]['time_share']:.0%}{_of_rows(stats[roles['timestamp']])} parse as times",
        ),
        ColumnGuess(
            "order_id",
            roles["order_id"],
            f"≈{stats[roles['order_id']]['distinct']:,} distinct orders",
        ),
    ]
    segments = [
        (name, stats[name]["distinct"])
        for name in names
        if name not in used
        and _is_text(types[name])
        and 2 <= stats[name]["distinct"] <= 50
        and stats[name]["time_share"] < 0.5
    ]
    return ProjectGuess(
        events_path=events_path,
        rows=rows,
        columns=columns,
        event_counts=[],
        stage_of={"first_purchase": "purchase", "repeat_purchase": "retention"},
        conversion="first_purchase",
        conversion_evidence="an order-lines table: each customer's first order",
        segments=segments,
        funnel=["first_purchase", "repeat_purchase"],
        transactions=roles,
        other_tables=others,
    )


def _is_text(type_name: str) -> bool:
    return type_name.startswith("VARCHAR") or type_name in ("TEXT", "STRING")


#: Text columns are tried as times and numbers on their first values only (casting
#: every value of a large file is most of the time ``init`` would take).
SNIFF_ROWS = 100_000


def _column_stats(
    con: Any, rel: str, names: list[str], types: dict[str, str]
) -> dict[str, dict[str, Any]]:
    parts = ["count(*)"]
    for name in names:
        q = quote_ident(name)
        parts.append(f"approx_count_distinct({q})")
        parts.append(f"count({q})")
    row = con.execute(f"SELECT {', '.join(parts)} FROM {rel}").fetchone()
    rows = int(row[0])
    text = [name for name in names if _is_text(types[name])]
    shares: dict[str, tuple[float, float]] = {}
    if text:
        casts = []
        for name in text:
            q = quote_ident(name)
            first = f"(SELECT {q} AS x FROM {rel} WHERE {q} IS NOT NULL LIMIT {SNIFF_ROWS})"
            casts.append(
                f"(SELECT avg(CASE WHEN try_cast(x AS TIMESTAMP) IS NOT NULL THEN 1.0 ELSE 0.0 END) FROM {first})"
            )
            casts.append(
                f"(SELECT avg(CASE WHEN try_cast(x AS DOUBLE) IS NOT NULL THEN 1.0 ELSE 0.0 END) FROM {first})"
            )
        con.execute("SET SESSION preserve_insertion_order = true")  # the first values, every time
        sniffed = con.execute(f"SELECT {', '.join(casts)}").fetchone()
        shares = {
            name: (float(sniffed[2 * i] or 0.0), float(sniffed[2 * i + 1] or 0.0))
            for i, name in enumerate(text)
        }
    stats: dict[str, dict[str, Any]] = {"__rows__": {"distinct": rows}}
    for i, name in enumerate(names):
        distinct, filled = row[1 + 2 * i : 3 + 2 * i]
        if name in shares:
            time_share, num_share = shares[name]
        else:
            is_time = "TIMESTAMP" in types[name] or types[name] == "DATE"
            is_num = any(t in types[name] for t in ("INT", "DOUBLE", "FLOAT", "DECIMAL", "REAL"))
            time_share, num_share = float(is_time), float(is_num)
        stats[name] = {
            "distinct": int(distinct or 0),
            "filled": int(filled or 0),
            "time_share": time_share,
            "num_share": num_share,
            "sniffed": SNIFF_ROWS if name in shares and (filled or 0) > SNIFF_ROWS else None,
        }
    return stats


def _of_rows(stat: dict[str, Any]) -> str:
    """Say which rows a share was measured on, when not all of them."""
    return f" of the first {stat['sniffed']:,} values" if stat.get("sniffed") else ""


def _guess_columns(
    names: list[str], types: dict[str, str], stats: dict[str, dict[str, Any]]
) -> list[ColumnGuess]:
    rows = max(int(stats["__rows__"]["distinct"]), 1)
    taken: set[str] = set()
    guesses: list[ColumnGuess] = []

    def pick(role: str, fits, evidence) -> None:
        candidates = [n for n in names if n not in taken and fits(n)]
        if not candidates:
            guesses.append(ColumnGuess(role, None, "no column fits"))
            return
        best = max(candidates, key=lambda n: (_name_score(n, role), stats[n]["filled"]))
        if role in ("channel", "value", "session_id") and _name_score(best, role) == 0:
            guesses.append(ColumnGuess(role, None, "no column is named like it"))
            return
        taken.add(best)
        guesses.append(ColumnGuess(role, best, evidence(best)))

    pick(
        "timestamp",
        lambda n: stats[n]["time_share"] >= 0.95,
        lambda n: f"{stats[n]['time_share']:.0%}{_of_rows(stats[n])} parse as times",
    )
    pick(
        "user_id",
        lambda n: stats[n]["distinct"] >= 2 and _name_score(n, "user_id") > 0,
        lambda n: f"≈{stats[n]['distinct']:,} distinct ids in {rows:,} rows",
    )
    if guesses[-1].column is None:  # no id-like name: the text column with the most distinct values
        guesses.pop()
        pick(
            "user_id",
            lambda n: stats[n]["distinct"] >= 2 and stats[n]["time_share"] < 0.5,
            lambda n: (
                f"{stats[n]['distinct']:,} distinct ids in {rows:,} rows (chosen by count only)"
            ),
        )
    pick(
        "event",
        lambda n: (
            _is_text(types[n])
            and 2 <= stats[n]["distinct"] <= 5_000
            and stats[n]["time_share"] < 0.5
            and stats[n]["num_share"] < 0.5
        ),
        lambda n: f"{stats[n]['distinct']:,} distinct names",
    )
    pick(
        "channel",
        lambda n: 1 <= stats[n]["distinct"] <= 500 and stats[n]["time_share"] < 0.5,
        lambda n: f"{stats[n]['distinct']:,} distinct channels",
    )
    pick(
        "value",
        lambda n: stats[n]["num_share"] >= 0.95,
        lambda n: f"{stats[n]['num_share']:.0%}{_of_rows(stats[n])} numeric",
    )
    pick(
        "session_id",
        lambda n: stats[n]["distinct"] >= 2,
        lambda n: f"{stats[n]['distinct']:,} distinct",
    )
    missing = [
        g.role for g in guesses if g.column is None and g.role in ("user_id", "timestamp", "event")
    ]
    if missing:
        raise SchemaError(
            f"No column of the events file fits {', '.join(missing)}.",
            column=missing[0],
            hint=f"the columns are {', '.join(names)}; write data.events.columns by hand.",
        )
    return guesses


def _funnel_order(
    con: Any, rel: str, columns: list[ColumnGuess], conversion: str, *, candidates: list[str]
) -> list[str]:
    """Candidate steps that converters take before converting, earliest first."""
    role = {g.role: g.column for g in columns}
    user, ts, event = (quote_ident(role[r]) for r in ("user_id", "timestamp", "event"))
    names = ", ".join("'" + c.replace("'", "''") + "'" for c in [*candidates, conversion])
    rows = con.execute(
        f"""
        WITH f AS (
            SELECT {user} AS u, CAST({event} AS VARCHAR) AS e, min(try_cast({ts} AS TIMESTAMP)) AS t
            FROM {rel} WHERE CAST({event} AS VARCHAR) IN ({names}) GROUP BY 1, 2),
        c AS (SELECT u, t AS tc FROM f WHERE e = '{conversion.replace("'", "''")}')
        SELECT f.e, median(epoch(c.tc) - epoch(f.t)) AS lead, count(*) AS n
        FROM f JOIN c USING (u) WHERE f.e <> '{conversion.replace("'", "''")}' GROUP BY 1
        """
    ).fetchall()
    converters = con.execute(
        f"SELECT count(DISTINCT {user}) FROM {rel} WHERE CAST({event} AS VARCHAR) = "
        f"'{conversion.replace(chr(39), chr(39) * 2)}'"
    ).fetchone()[0]
    before = [
        (lead, e) for e, lead, n in rows if lead is not None and lead >= 0 and n >= 0.3 * converters
    ]
    return [e for _, e in sorted(before, reverse=True)]


def _q(value: Any) -> str:
    """Write a YAML scalar, quoted when it needs to be."""
    return (
        yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10_000)
        .strip()
        .removesuffix("\n...")
        .strip()
    )


def render_project(guess: ProjectGuess, *, base_dir: str | Path, name: str | None = None) -> str:
    """Write the guesses as a commented project file (YAML)."""
    base = Path(base_dir).resolve()

    def rel(path: Path) -> str:
        try:
            return str(path.resolve().relative_to(base))
        except ValueError:
            return str(path.resolve())

    if guess.transactions is not None:
        return _render_transactions(guess, rel, name)
    mapping = guess.mapping()
    lines = [
        "# journeylab project file, written by `journeylab init` from the data itself.",
        "# Lines marked CHECK are guesses: read them, correct what is wrong, then run",
        "#   journeylab check <this file>",
        "# which loads every table and lists the names no row carries.",
        f"name: {_q(name or guess.events_path.stem.replace('_', ' ').title())}",
        "currency: USD        # CHECK: ISO code of the money in `value`",
        "timezone: UTC        # CHECK: the time zone whose calendar months the reports follow",
        "data:",
        f"  events:           # {guess.rows:,} rows",
        f"    path: {_q(rel(guess.events_path))}",
        "    columns:         # source column: canonical name",
    ]
    for g in guess.columns:
        if g.column is not None:
            lines.append(
                f"      {_q(g.column)}: {g.role}    # {g.role} <- `{g.column}`: {g.evidence}"
            )
        else:
            lines.append(f"      # {g.role}: {g.evidence}")
    for table, path in guess.other_tables.items():
        lines.append(
            f"  {table}: {{path: {_q(rel(path))}}}    # CHECK its columns map onto the data contract"
        )
    conv = guess.conversion
    lines += [
        "journey:",
        (
            f"  conversion: {_q(conv)}    # CHECK (guess): {guess.conversion_evidence}"
            if conv
            else f"  conversion: CHANGE_ME    # CHECK: {guess.conversion_evidence}; name your conversion event"
        ),
        "  value_per_conversion: 0    # CHECK: what one conversion is worth when rows carry no value",
        "  lookback: 30D",
        "stages:             # CHECK: every stage below is a guess from the event names",
    ]
    stages: dict[str, list[tuple[str, int]]] = {}
    for event, count in guess.event_counts:
        stages.setdefault(guess.stage_of[event], []).append((event, count))
    order = ("awareness", "consideration", "purchase", "retention", "advocacy")
    for stage in order:
        if stage not in stages:
            continue
        lines.append(f"  {stage}:")
        lines.append("    events:")
        for event, count in stages[stage]:
            lines.append(f"      - {_q(event)}    # guess; {count:,} rows")
    if len(guess.event_counts) >= _MAX_EVENTS:
        lines.append(
            f"  # only the {_MAX_EVENTS} most frequent events are listed; `journeylab check` lists the rest"
        )
    funnel = guess.funnel if len(guess.funnel) >= 2 else [e for e, _ in guess.event_counts[:2]]
    lines.append("funnel:            # CHECK: the steps in order, ending at the conversion")
    lines += [f"  - {_q(step)}" for step in funnel]
    segment_names = [s for s, _ in guess.segments]
    if mapping and "channel" in mapping.values():
        segment_names = ["channel", *segment_names]
    lines.append("segments:          # CHECK: dimensions to break down and search for gaps")
    if segment_names:
        for seg, n in [("channel", 0)] * ("channel" in segment_names[:1]) + guess.segments:
            lines.append(f"  - {_q(seg)}" + (f"    # {n} distinct values" if n else ""))
    else:
        lines[-1] = "segments: []      # CHECK: no low-cardinality column found"
    lines.append('labels: {}         # optional display names, e.g. {add_to_cart: "Added to cart"}')
    return "\n".join(lines) + "\n"


def _render_transactions(guess: ProjectGuess, rel, name: str | None) -> str:
    roles = guess.transactions or {}
    value = (
        f"    value_from: [{_q(roles['quantity'])}, {_q(roles['price'])}]    # CHECK: value = quantity × price"
        if "quantity" in roles
        else f"      {_q(roles['price'])}: value    # CHECK: the order line's amount"
    )
    evidence = {g.role: g.evidence for g in guess.columns}
    lines = [
        "# journeylab project file, written by `journeylab init` from the data itself.",
        "# The data look like order lines (an order id and a price, no event column): the",
        "# journey is each customer's first order and the orders after it.",
        "# Lines marked CHECK are guesses: read them, correct what is wrong, then run",
        "#   journeylab check <this file>",
        f"name: {_q(name or guess.events_path.name.split('.')[0].replace('_', ' ').title())}",
        "currency: USD        # CHECK: ISO code of the prices",
        "timezone: UTC        # CHECK: the time zone of the order times and of the report months",
        "data:",
        f"  transactions:     # {guess.rows:,} order lines",
        f"    path: {_q(rel(guess.events_path))}",
        "    columns:",
        f"      {_q(roles['user_id'])}: user_id    # user_id <- `{roles['user_id']}`: {evidence['user_id']}",
        f"      {_q(roles['timestamp'])}: timestamp    # timestamp <- `{roles['timestamp']}`: {evidence['timestamp']}",
        f"      {_q(roles['order_id'])}: order_id    # order_id <- `{roles['order_id']}`: {evidence['order_id']}",
    ]
    lines.append(value)  # a column mapping line, or value_from at table level after the mapping
    lines += [
        "  events: {from: transactions}    # one event per order: first_purchase, repeat_purchase, refund",
        "journey:",
        "  conversion: first_purchase",
        "stages:",
        "  purchase:",
        "    events: [first_purchase]",
        "    kpis:",
        "      - {name: new_customers, events: [first_purchase], measure: users}",
        "      - {name: first_order_revenue, events: [first_purchase], measure: value}",
        "  retention:",
        "    events: [repeat_purchase]",
        "    kpis:",
        "      - {name: repeat_customers, events: [repeat_purchase], measure: users}",
        "      - {name: repeat_orders, events: [repeat_purchase], measure: count}",
        "      - {name: repeat_revenue, events: [repeat_purchase], measure: value}",
        "funnel: [first_purchase, repeat_purchase]",
        "segments: []      # the order lines' text columns are properties of lines, not customers",
        "labels: {first_purchase: First order, repeat_purchase: Repeat order}",
    ]
    return "\n".join(lines) + "\n"
