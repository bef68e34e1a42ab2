"""The ledger file: appending a month's findings under a lock, and reading them back checked.

The rules of the file (lines, appending, ids) are those of :mod:`journeylab.actions.ledger`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import math
import os
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from journeylab.core.errors import DataError, ParameterError, SchemaError, did_you_mean
from journeylab.maps.findings import FINDING_FIELDS

__all__ = [
    "LEDGER_NAME",
    "ledger_path",
    "append_findings",
    "read_ledger",
]


#: File name of the ledger inside the reports root.
LEDGER_NAME = "findings.jsonl"
_LOCK_NAME = "findings.jsonl.lock"
_MONTH_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


#: The finding fields every appended record must carry: those ``metrics.json`` requires
#: (:data:`~journeylab.maps.findings.FINDING_FIELDS` but ``benchmark_label``, optional there).
_REQUIRED = tuple(f for f in FINDING_FIELDS if f != "benchmark_label")
_NUMERIC = (
    "rank", "reached", "value", "benchmark", "difference", "difference_ci_low", "difference_ci_high",
    "p_value", "q_value", "value_at_stake", "value_at_stake_ci_low", "value_at_stake_ci_high",
)  # fmt: skip
_META = ("month", "project", "run_id", "run_time")


# -- writing ------------------------------------------------------------------
def ledger_path(reports_root: str | Path) -> Path:
    """Return the path of the ledger inside ``reports_root`` (``<root>/findings.jsonl``)."""
    return Path(reports_root) / LEDGER_NAME


def append_findings(
    reports_root: str | Path,
    month: str,
    records: Iterable[Mapping[str, Any]] | Any,
    *,
    project: str,
    run_id: str | None = None,
    run_time: str | dt.datetime | None = None,
) -> Path:
    """Add one month's findings to the ledger, replacing that month's earlier lines.

    Parameters
    ----------
    reports_root : str or Path
        The root of the reports tree (``reports/``); created if absent.
    month : str
        ``YYYY-MM``, the month the findings are of.
    records : list of dict, or a FindingsResult
        The finding records (``metrics["findings"]`` or ``FindingsResult.records()``);
        each holds the fields ``metrics.json`` requires (``FINDING_FIELDS``; ``benchmark_label``
        may be absent). Fields beyond these are kept. An empty list records a
        month with no finding.
    project : str
        The project's name (``Project.name``); one ledger can hold several.
    run_id : str, optional
        Id of the report run; a new one (UTC time and a random suffix) if None.
    run_time : str or datetime, optional
        When the run happened; now (UTC) if None.

    Returns
    -------
    pathlib.Path
        The ledger file.

    Raises
    ------
    SchemaError
        When a record lacks a field or a month is not ``YYYY-MM``.
    DataError
        When a record's values are invalid, two records share an id, or an
        existing ledger line is not valid JSON (nothing is written then).

    Examples
    --------
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> path = append_findings(root, "2026-10", [], project="Shop")
    >>> read_ledger(root)[["month", "project", "id"]].values.tolist()
    [['2026-10', 'Shop', None]]
    """
    month = _check_month(month, "month")
    if not isinstance(project, str) or not project.strip():
        raise ParameterError(
            f"project == {project!r}, must be the project's name (a non-empty string)."
        )
    if hasattr(records, "records") and callable(records.records):
        records = records.records()
    if isinstance(records, (str, bytes, Mapping)) or not isinstance(records, Iterable):
        raise ParameterError(
            f"records must be a list of finding records (metrics['findings']); got {type(records).__name__}."
        )
    records = [_check_record(r, i, month) for i, r in enumerate(records)]
    _check_unique(records, month)
    if isinstance(run_time, dt.datetime):
        run_time = run_time.astimezone(dt.UTC).isoformat(timespec="seconds")
    run_time = run_time or dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    run_id = run_id or f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    meta = {"month": month, "project": project, "run_id": str(run_id), "run_time": str(run_time)}
    new_lines = [
        json.dumps({**meta, "finding": r}, ensure_ascii=False, allow_nan=False) for r in records
    ]
    if not new_lines:
        new_lines = [json.dumps({**meta, "finding": None}, ensure_ascii=False)]

    root = Path(reports_root)
    root.mkdir(parents=True, exist_ok=True)
    path = ledger_path(root)
    with _locked(root / _LOCK_NAME):
        kept: list[tuple[str, str, int, str]] = []
        if path.exists():
            for number, line, entry in _parse_lines(path):
                if (entry["month"], entry["project"]) != (month, project):
                    kept.append((entry["month"], entry["project"], number, line))
        merged = kept + [(month, project, 10**12 + i, line) for i, line in enumerate(new_lines)]
        merged.sort(key=lambda t: (t[0], t[1], t[2]))  # by month, project, then the order written
        tmp = root / f".{LEDGER_NAME}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.writelines(line + "\n" for _, _, _, line in merged)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return path


@contextlib.contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``lock_file`` (released when the process dies, so never stale)."""
    fd = os.open(lock_file, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _check_month(month: Any, what: str, source: str | None = None) -> str:
    if not isinstance(month, str) or not _MONTH_RE.match(month):
        raise SchemaError(
            f"{what} == {month!r}, must be written 'YYYY-MM' (e.g. '2026-10').", source=source
        )
    return month


def _check_record(record: Any, index: int, month: str) -> dict[str, Any]:
    where = f"finding #{index + 1} of {month}"
    if not isinstance(record, Mapping):
        raise DataError(f"{where} is a {type(record).__name__}, not a finding record (a dict).")
    missing = [f for f in _REQUIRED if f not in record]
    if missing:
        present = [str(k) for k in record]
        hints = ", ".join(f"{m!r}{did_you_mean(m, present)}" for m in missing)
        raise SchemaError(
            f"{where} lacks field(s) {hints}.",
            column=missing[0],
            missing_columns=missing,
            rows=[index + 1],
            hint="pass the records of FindingsResult.records() or metrics['findings'] unchanged.",
        )
    out = {str(k): _plain(v) for k, v in record.items()}
    if not isinstance(out["id"], str) or not out["id"]:
        raise DataError(
            f"{where} has id == {out['id']!r}; every finding needs its text id.",
            column="id",
            rows=[index + 1],
        )
    for name in _NUMERIC:
        value = out[name]
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise DataError(
                f"{where} ({out['id']}) has {name} == {value!r}, must be a number or null.",
                column=name,
                rows=[index + 1],
            )
    return out


def _check_unique(records: list[dict[str, Any]], month: str) -> None:
    ids = pd.Series([r["id"] for r in records], dtype=object)
    dup = ids[ids.duplicated(keep=False)]
    if len(dup):
        raise DataError(
            f"Findings of {month} share ids: {sorted(set(dup))}; each id must appear once a month.",
            column="id",
            rows=[i + 1 for i in dup.index],
            hint="append the records of one findings pass, not two passes together.",
        )


def _plain(value: Any) -> Any:
    """Turn numpy scalars into JSON types; NaN into null."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _parse_lines(path: Path) -> Iterator[tuple[int, str, dict[str, Any]]]:
    bad: list[int] = []
    entries = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                bad.append(number)
                continue
            if not isinstance(entry, dict) or not all(k in entry for k in (*_META, "finding")):
                bad.append(number)
                continue
            entries.append((number, line, entry))
    if bad:
        raise DataError(
            f"The findings ledger has {len(bad)} line(s) that are not ledger entries "
            f"(a JSON object with {', '.join(_META)} and finding).",
            source=str(path),
            rows=bad,
            hint="restore the file from a backup or delete those lines; the other lines are untouched.",
        )
    yield from entries


# -- reading ------------------------------------------------------------------
def read_ledger(reports_root: str | Path) -> pd.DataFrame:
    """Read the ledger into one row per finding and month.

    Parameters
    ----------
    reports_root : str or Path
        The reports root (or the ``findings.jsonl`` file itself).

    Returns
    -------
    pandas.DataFrame
        Columns ``month``, ``project``, ``run_id``, ``run_time`` and the
        finding fields. A month reported with no finding is one row with an
        empty ``id`` (so the months that ran are known). Sorted by project,
        month and rank. Empty (with these columns) when no ledger exists yet.

    Raises
    ------
    ParameterError
        When ``reports_root`` does not exist.
    DataError
        When a line of the ledger is not a ledger entry (with its line numbers).
    """
    root = Path(reports_root)
    path = root if root.suffix == ".jsonl" else ledger_path(root)
    if not path.parent.is_dir():
        raise ParameterError(
            f"reports root {path.parent} does not exist; append_findings creates the ledger."
        )
    columns = [*_META, *_REQUIRED, "benchmark_label"]
    if not path.exists():
        return pd.DataFrame(columns=columns)
    rows = []
    for number, _, entry in _parse_lines(path):
        finding = entry["finding"] or {}
        _check_month(entry["month"], "month", source=f"{path}, line {number}")
        rows.append({**{k: entry[k] for k in _META}, **finding})
    frame = pd.DataFrame(rows)
    for name in columns:
        if name not in frame:
            frame[name] = None
    frame = frame[columns + [c for c in frame.columns if c not in columns]]
    for name in _NUMERIC:
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
    frame["id"] = frame["id"].astype(object).where(frame["id"].notna(), None)
    frame = frame.sort_values(["project", "month", "rank"], kind="stable", na_position="last")
    return frame.reset_index(drop=True)


def _as_ledger(ledger: pd.DataFrame | str | Path) -> pd.DataFrame:
    if isinstance(ledger, (str, Path)):
        return read_ledger(ledger)
    if not isinstance(ledger, pd.DataFrame):
        raise ParameterError(
            f"ledger must be read_ledger()'s DataFrame or a reports root; got {type(ledger).__name__}."
        )
    missing = [c for c in ("month", "project", "id", "value_at_stake") if c not in ledger]
    if missing:
        raise SchemaError(
            f"The ledger lacks column(s) {missing}.",
            missing_columns=missing,
            column=missing[0],
            hint="pass the DataFrame read_ledger() returns.",
        )
    return ledger


def _one_project(ledger: pd.DataFrame, project: str | None) -> tuple[pd.DataFrame, str]:
    projects = sorted(ledger["project"].dropna().unique().tolist())
    if not projects:
        raise ParameterError(
            "The ledger is empty: append a month's findings first (append_findings)."
        )
    if project is None:
        if len(projects) > 1:
            raise ParameterError(f"The ledger holds several projects {projects}: pass project=.")
        project = projects[0]
    elif project not in projects:
        raise ParameterError(
            f"project == {project!r} is not in the ledger{did_you_mean(project, projects)}; it holds {projects}."
        )
    return ledger.loc[ledger["project"] == project], project


def _previous_month(month: str) -> str:
    year, mon = (int(x) for x in month.split("-"))
    return f"{year - 1:04d}-12" if mon == 1 else f"{year:04d}-{mon - 1:02d}"


def _month_of(value: Any, what: str) -> str:
    """``YYYY-MM`` of a date, timestamp or month string."""
    if isinstance(value, str) and _MONTH_RE.match(value):
        return value
    if isinstance(value, str) and not re.match(r"^\d{4}-\d{2}-\d{2}", value):
        raise ParameterError(
            f"{what} == {value!r} is not a date; write it as 'YYYY-MM-DD' or 'YYYY-MM'."
        )
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ParameterError(
            f"{what} == {value!r} is not a date; write it as 'YYYY-MM-DD' or 'YYYY-MM'."
        ) from exc
    if pd.isna(stamp):
        raise ParameterError(f"{what} is missing.")
    return f"{stamp.year:04d}-{stamp.month:02d}"
