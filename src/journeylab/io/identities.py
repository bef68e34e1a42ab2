"""Identity resolution: map every id a touchpoint logs onto one person.

Touchpoints log people under ids of their own: the web under a cookie or
login id, call tracking under a hash of the caller's phone number, the CRM
under a customer number, the e-mail platform under a hash of the address.
An *identities* table (``id``, ``user_id``) says which person each id
belongs to; :func:`resolve_identities` rewrites the ``user_id`` column of a
table with it before any analysis, so a journey that starts on the web and
continues by phone is one journey.

Rules
-----
1. An id listed in ``identities.id`` becomes the ``user_id`` it maps to.
   Rows mapping an id to itself are allowed (they list a person's own id).
2. Chains are followed: ``a → b`` and ``b → c`` map ``a`` to ``c``. A cycle
   (``a → b``, ``b → a``) is an error naming the rows.
3. A conflict is one id mapped to two or more different persons. With
   ``on_conflict="raise"`` (the default) it is a :class:`DataError` naming
   the identities rows; with ``"first"`` the first row of that id (in table
   order) wins and the conflicts are counted.
4. An id the table does not know (in neither column) is *unmapped*: kept as
   it is and counted.
5. Rows are never added, dropped or reordered: rows in = rows out.

The counts (:class:`IdentityResolution`) go into the table's quality report.

Examples
--------
>>> import pandas as pd
>>> events = pd.DataFrame({"user_id": ["u1", "ph_9f", "u2", "x7"]})
>>> identities = pd.DataFrame({"id": ["u1", "ph_9f", "u2"], "user_id": ["u1", "u1", "u2"]})
>>> res = resolve_identities(events, identities)
>>> res.frame["user_id"].tolist()
['u1', 'u1', 'u2', 'x7']
>>> res.rows_remapped, res.ids_merged, res.ids_unmapped
(1, 1, 1)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from journeylab.core.errors import DataError, check_in, require_columns
from journeylab.core.results import Result, fmt_num
from journeylab.io.pipeline import Pipeline, require
from journeylab.io.quality import LoadedTable, QualityReport
from journeylab.io.sources import read_rows

__all__ = [
    "IDENTITY_COLUMNS",
    "IdentityResolution",
    "load_identities",
    "resolve_identities",
    "record_resolution",
]

#: Canonical columns of the identities table: each ``id`` and its person.
IDENTITY_COLUMNS = ("id", "user_id")
OnConflict = Literal["raise", "first"]
_MAX_CHAIN = 64


# -- loading --------------------------------------------------------------------
def load_identities(
    source: str | Path | pd.DataFrame | None = None,
    columns: Mapping[str, str] | None = None,
    *,
    table: str | None = None,
    query: str | None = None,
    csv_options: Mapping[str, Any] | None = None,
    pseudonymize: bool = False,
) -> LoadedTable:
    """Load an identities table: one row per (id, person) pair.

    Cleaning, each step counted in the quality report: ids are read as text
    (``00123`` stays ``00123``); rows without ``id`` or ``user_id`` are
    dropped; exact duplicate rows are dropped; ids mapped to more than one
    person are *flagged* with their source rows (kept, so that
    :func:`resolve_identities` can raise or apply its rule).

    Parameters
    ----------
    source : path, DataFrame or None
        ``.csv``/``.csv.gz``, ``.parquet``, a ``.duckdb`` database (with
        ``table=`` or ``query=``) or a DataFrame.
    columns : dict, optional
        ``{source_name: canonical_name}`` onto ``id`` and ``user_id``, e.g.
        ``{"alias": "id", "person_key": "user_id"}``. Other columns are kept.
    table, query, csv_options :
        As in :func:`journeylab.io.load_events`.
    pseudonymize : bool
        Replace both columns by keyed HMAC pseudonyms (the same key maps an
        id to the same pseudonym in every table, so resolution still works).

    Returns
    -------
    LoadedTable
        ``frame`` with ``id``, ``user_id`` (text) and any other columns;
        ``quality`` the report.

    Examples
    --------
    >>> crm_export = pd.DataFrame({"phone_hash": ["p1", "p2"], "customer": ["c1", "c1"]})
    >>> ids = load_identities(crm_export, columns={"phone_hash": "id", "customer": "user_id"})
    >>> ids.frame
       id user_id
    0  p1      c1
    1  p2      c1
    """
    raw = read_rows(
        source, columns, what="identities", table=table, query=query, csv_options=csv_options
    )
    pipe = Pipeline(raw, "identities")
    require(pipe, IDENTITY_COLUMNS, "identities")
    pipe.cast_ids("id", drop=True)
    pipe.cast_ids("user_id", drop=True)
    pipe.properties(list(IDENTITY_COLUMNS), None)
    pipe.deduplicate_exact()
    conflicted = _conflicted_ids(pipe.frame)
    pipe.record(
        pipe.frame["id"].isin(conflicted).to_numpy(),
        "id mapped to several persons",
        "flagged",
        "id",
        "the same id is mapped to more than one user_id; resolve_identities raises "
        "unless on_conflict='first'",
    )
    pipe.pseudonymize(pseudonymize, "id")
    pipe.pseudonymize(pseudonymize, "user_id")
    return LoadedTable(pipe.finish(list(IDENTITY_COLUMNS)), pipe.report, pipe.label)


def _conflicted_ids(identities: pd.DataFrame) -> np.ndarray:
    pairs = identities[["id", "user_id"]].drop_duplicates()
    return pairs.loc[pairs["id"].duplicated(keep=False), "id"].unique()


# -- resolving ------------------------------------------------------------------
@dataclass(eq=False)
class IdentityResolution(Result):
    """A table with its ids mapped onto persons, and the counts that reconcile it.

    Attributes
    ----------
    frame : pandas.DataFrame
        The input table, same rows in the same order, ``user_id`` rewritten.
    rows_in, rows_out : int
        Rows before and after (always equal).
    rows_remapped : int
        Rows whose ``user_id`` changed.
    ids_in, ids_out : int
        Distinct ids before, distinct persons after.
    ids_merged : int
        Distinct input ids folded onto another id (a person).
    persons_merged : int
        Distinct persons that received at least one other id.
    persons_added : int
        Persons that appear only through their other ids (their own id is not
        in the input): ``ids_out == ids_in - ids_merged + persons_added``.
    ids_unmapped, rows_unmapped : int
        Ids the identities table does not know (kept as they are), and their rows.
    conflicts, rows_conflicted : int
        Ids mapped to several persons that occur in the input (resolved by
        ``on_conflict="first"``), and their rows.
    on_conflict : str
        The conflict rule used.
    source : str
        Where the input table came from (for messages).
    """

    frame: pd.DataFrame
    rows_in: int
    rows_out: int
    rows_remapped: int
    ids_in: int
    ids_out: int
    ids_merged: int
    persons_merged: int
    persons_added: int
    ids_unmapped: int
    rows_unmapped: int
    conflicts: int
    rows_conflicted: int
    on_conflict: str = "raise"
    source: str = ""
    title = "Identity resolution"

    _DESCRIPTIONS = {
        "rows_in": "rows read",
        "rows_out": "rows returned (always equal to rows read)",
        "rows_remapped": "rows whose user_id was rewritten to the person's id",
        "ids_in": "distinct ids in the table",
        "ids_out": "distinct persons after resolution",
        "ids_merged": "ids folded onto another person's id",
        "persons_merged": "persons that received at least one other id",
        "persons_added": "persons present only through their other ids",
        "ids_unmapped": "ids not in the identities table (kept as they are)",
        "rows_unmapped": "rows with such ids",
        "conflicts": "ids mapped to several persons (first mapping kept)",
        "rows_conflicted": "rows with such ids",
    }

    def counts(self) -> dict[str, int]:
        """Return the counts by name (for the quality report and run.json)."""
        return {name: int(getattr(self, name)) for name in self._DESCRIPTIONS}

    def to_frame(self) -> pd.DataFrame:
        """One row per count: ``count``, ``value``, ``meaning``."""
        return pd.DataFrame(
            [
                {"count": name, "value": value, "meaning": self._DESCRIPTIONS[name]}
                for name, value in self.counts().items()
            ]
        )

    def summary(self) -> str:
        """Say what the resolution did, in counts only (never the ids themselves)."""
        text = (
            f"{fmt_num(self.rows_remapped)} of {fmt_num(self.rows_in)} rows remapped: "
            f"{fmt_num(self.ids_merged)} ids merged into {fmt_num(self.persons_merged)} persons "
            f"({fmt_num(self.ids_in)} ids → {fmt_num(self.ids_out)} persons)."
        )
        if self.ids_unmapped:
            text += (
                f" {fmt_num(self.ids_unmapped)} ids ({fmt_num(self.rows_unmapped)} rows) are not in "
                "the identities table and were kept as they are."
            )
        if self.conflicts:
            text += (
                f" {fmt_num(self.conflicts)} ids mapped to several persons "
                f"({fmt_num(self.rows_conflicted)} rows) kept their first mapping."
            )
        return text


def resolve_identities(
    table: pd.DataFrame | LoadedTable,
    identities: pd.DataFrame | LoadedTable,
    *,
    on_conflict: OnConflict = "raise",
    column: str = "user_id",
) -> IdentityResolution:
    """Map the ids of a table onto persons with an identities table.

    Parameters
    ----------
    table : DataFrame or LoadedTable
        Any table with a ``user_id`` column (events, feedback, transactions ...).
    identities : DataFrame or LoadedTable
        Columns ``id`` and ``user_id`` (see :func:`load_identities`).
    on_conflict : {"raise", "first"}
        What to do with an id mapped to several persons: raise a
        :class:`DataError` naming the identities rows, or keep the mapping of
        its first row (table order) and count it.
    column : str
        The id column of ``table`` to rewrite.

    Returns
    -------
    IdentityResolution
        ``frame`` (same rows, same order) and the counts.

    Raises
    ------
    DataError
        On a conflict with ``on_conflict="raise"``, a cycle, or missing ids in
        the identities table.

    Examples
    --------
    >>> from journeylab.io.loaders import load_events
    >>> ids = load_identities(pd.DataFrame({"id": ["p1", "p2"], "user_id": ["c1", "c1"]}))
    >>> loaded_events = load_events(pd.DataFrame({
    ...     "user_id": ["p1", "c1", "p2"], "event": ["call", "visit", "call"],
    ...     "timestamp": ["2026-10-01", "2026-10-02", "2026-10-03"]}))
    >>> res = resolve_identities(loaded_events, ids)
    >>> print(res.summary())
    2 of 3 rows remapped: 2 ids merged into 1 persons (3 ids → 1 persons).
    """
    check_in("on_conflict", on_conflict, ["raise", "first"])
    source = getattr(table, "source", "") or "table"
    frame = table.frame if isinstance(table, LoadedTable) else table
    ids_frame = identities.frame if isinstance(identities, LoadedTable) else identities
    id_source = getattr(identities, "source", "") or "identities"
    require_columns(frame, (column,), source=source, what="input")
    require_columns(ids_frame, IDENTITY_COLUMNS, source=id_source, what="identities")
    mapping, conflicted = _mapping(ids_frame, on_conflict, id_source)

    codes, uniques = pd.factorize(frame[column], use_na_sentinel=True)
    uniques = pd.Index(uniques, dtype=object)
    person = mapping.reindex(uniques)
    known = person.notna().to_numpy() | uniques.isin(mapping.to_numpy())
    resolved = np.where(
        person.notna().to_numpy(), person.to_numpy(dtype=object), uniques.to_numpy()
    )
    merged = resolved != uniques.to_numpy()
    conflict = uniques.isin(conflicted)

    valid = codes >= 0
    row_merged = np.zeros(len(frame), dtype=bool)
    row_merged[valid] = merged[codes[valid]]
    row_unmapped = np.zeros(len(frame), dtype=bool)
    row_unmapped[valid] = ~known[codes[valid]]
    row_conflict = np.zeros(len(frame), dtype=bool)
    row_conflict[valid] = conflict[codes[valid]]

    out = frame.copy()
    if merged.any():
        values = np.append(resolved, None)[np.where(valid, codes, len(resolved))]
        out[column] = pd.Series(values, index=frame.index, dtype=frame[column].dtype)
    persons_before = set(uniques[~merged])
    persons_after = set(resolved)
    return IdentityResolution(
        frame=out,
        rows_in=len(frame),
        rows_out=len(out),
        rows_remapped=int(row_merged.sum()),
        ids_in=len(uniques),
        ids_out=len(persons_after),
        ids_merged=int(merged.sum()),
        persons_merged=len(set(resolved[merged])),
        persons_added=len(persons_after - persons_before),
        ids_unmapped=int((~known).sum()),
        rows_unmapped=int(row_unmapped.sum()),
        conflicts=int(conflict.sum()),
        rows_conflicted=int(row_conflict.sum()),
        on_conflict=on_conflict,
        source=source,
    )


def _mapping(ids: pd.DataFrame, on_conflict: str, label: str) -> tuple[pd.Series, np.ndarray]:
    """Return id → person (chains followed) and the ids with conflicting rows."""
    missing = ids["id"].isna().to_numpy() | ids["user_id"].isna().to_numpy()
    if missing.any():
        rows = (np.flatnonzero(missing) + 1).tolist()
        raise DataError(
            f"The identities table has {int(missing.sum()):,} rows without an id or user_id.",
            source=label,
            column="id" if ids["id"].isna().any() else "user_id",
            rows=rows,
            hint="drop those rows or load the table with load_identities(), which drops and "
            "counts them.",
        )
    pairs = ids[["id", "user_id"]].astype(str).drop_duplicates()
    conflicted = pairs.loc[pairs["id"].duplicated(keep=False), "id"].unique()
    if len(conflicted) and on_conflict == "raise":
        at = np.flatnonzero(ids["id"].astype(str).isin(conflicted).to_numpy())
        shown = ids.iloc[at[:6]]
        examples = "; ".join(
            f"{i} → {p}" for i, p in zip(shown["id"], shown["user_id"], strict=True)
        )
        raise DataError(
            f"{len(conflicted):,} ids are mapped to more than one person ({examples}).",
            source=label,
            column="id",
            rows=(at + 1).tolist(),
            hint="fix the identities table so each id names one person, or pass "
            "on_conflict='first' to keep each id's first mapping (rows are 1-based, in table "
            "order).",
        )
    first = pairs.drop_duplicates("id", keep="first")
    keys = pd.Index(first["id"], dtype=object)
    step = pd.Series(first["user_id"].to_numpy(dtype=object), index=keys)
    # a person is an id that maps to itself or is no id at all; follow each
    # chain a -> b -> c one step at a time until it reaches a person
    target = step.to_numpy(dtype=object)
    for _ in range(_MAX_CHAIN):
        after = step.reindex(target).to_numpy(dtype=object)
        open_ = pd.notna(after) & (after != target)
        if not open_.any():
            return pd.Series(target, index=keys), conflicted
        target = np.where(open_, after, target)
    stuck = keys[open_]
    at = np.flatnonzero(ids["id"].astype(str).isin(stuck).to_numpy())
    raise DataError(
        f"The identities table maps ids in a cycle or a chain longer than {_MAX_CHAIN} "
        f"({len(stuck):,} ids, e.g. {', '.join(map(str, stuck[:3]))}).",
        source=label,
        column="user_id",
        rows=(at + 1).tolist(),
        hint="map every id straight onto its person's id; a person's own id maps to itself.",
    )


def record_resolution(report: QualityReport, resolution: IdentityResolution) -> None:
    """Add an identity-resolution step (and notes) to a table's quality report."""
    report.add(
        "ids resolved to persons",
        "repaired",
        resolution.rows_remapped,
        column="user_id",
        reason=f"user_id rewritten with the identities table: {resolution.ids_merged:,} ids "
        f"merged into {resolution.persons_merged:,} persons",
    )
    if resolution.ids_unmapped:
        report.note(
            f"{resolution.ids_unmapped:,} user ids ({resolution.rows_unmapped:,} rows) are not in "
            "the identities table; they were kept as they are."
        )
    if resolution.conflicts:
        report.note(
            f"{resolution.conflicts:,} ids are mapped to several persons in the identities table "
            f"({resolution.rows_conflicted:,} rows); each kept its first mapping."
        )
