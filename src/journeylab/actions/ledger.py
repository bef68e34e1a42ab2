"""The findings ledger: what the monthly report found, month after month.

The report's ranked findings (:func:`journeylab.maps.findings.find`, fields
:data:`~journeylab.maps.findings.FINDING_FIELDS`) are kept in
``<reports root>/findings.jsonl`` so a pain point can be followed from the
month it appeared, through the fix, to the month it is gone.

1. **Lines.** One JSON object per line: ``month`` (``YYYY-MM``), ``project``
   (the project's name), ``run_id`` and ``run_time`` (UTC, ISO 8601) of the
   report run, and ``finding`` (one finding record). A month reported with no
   finding at all is one line with ``"finding": null``, so that a month that ran
   and found nothing is told apart from a month that did not run.
2. **Appending.** :func:`append_findings` writes the whole ledger to a
   temporary file beside it and renames it into place, so a reader sees the
   ledger before or after the append, never half of it. A re-run of a month
   *replaces* that project's lines of the month. Writers hold an exclusive
   ``fcntl.flock`` on ``findings.jsonl.lock`` while they read, merge and
   rename, so two runs finishing together cannot lose each other's lines.
3. **Ids.** A finding keeps its ``id`` across months (``kind:from→to:dimension=segment``),
   which is what ties the months together.
4. **History** (:func:`finding_history`), for each finding of a month:

   - ``first_seen``: the first month the ledger holds it;
   - ``months_open``: consecutive calendar months up to this one in which it
     was found (a month that was not reported breaks the run);
   - ``trend``: its value at stake in every month it was found, oldest first;
   - ``status``:

     * ``new`` — not found in the month before;
     * ``growing`` — found the month before, and this month's value at stake
       is above the previous month's interval (``> value_at_stake_ci_high``);
     * ``shrinking`` — below the previous month's interval (``< value_at_stake_ci_low``);
     * ``persisting`` — found both months, this month's value inside the
       previous month's interval;
     * ``resolved or below the threshold`` — found the month before and not
       this month (the gap closed, or it is no longer significant or no longer
       rests on enough users: the ledger cannot tell which).

5. **Fixes.** An experiment that addresses a finding says so in the project
   file (``experiments: {short_form: {addresses: <finding id>}}``).
   :func:`fix_timeline` lays the finding's rate and value at stake month by
   month beside the experiment: ``before`` the month it started, ``during``
   the months it ran (from its assignment dates, or ``start``/``end``), and
   ``after``; with the readout of :func:`journeylab.experiments.analyze`
   summarised beside it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import math
import os
import re
import textwrap
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from journeylab.core.errors import DataError, ParameterError, SchemaError, did_you_mean
from journeylab.core.results import Result, fmt_ci, fmt_money, fmt_pct, fmt_pp
from journeylab.maps.findings import FINDING_FIELDS

__all__ = [
    "LEDGER_NAME",
    "STATUSES",
    "RESOLVED",
    "ledger_path",
    "append_findings",
    "read_ledger",
    "finding_history",
    "FindingHistory",
    "fix_timeline",
    "FixTimeline",
    "experiments_addressing",
]

#: File name of the ledger inside the reports root.
LEDGER_NAME = "findings.jsonl"
_LOCK_NAME = "findings.jsonl.lock"
_MONTH_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
#: The status of a finding in :func:`finding_history`, in the order they are counted.
STATUSES = ("new", "growing", "persisting", "shrinking", "resolved or below the threshold")
RESOLVED = STATUSES[-1]
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


def _money_tick(value: float, currency: str) -> str:
    return f"{currency}0" if value == 0 else fmt_money(value, currency)


def _short_name(row: Mapping[str, Any]) -> str:
    step = str(row.get("step") or "")
    if row.get("kind") == "change_vs_previous":
        return f"{step}: vs previous month"
    return f"{step}: {row.get('dimension')} = {row.get('segment')}"


# -- history ------------------------------------------------------------------
@dataclass
class FindingHistory(Result):
    """How long each finding of a month has been open, and where it is heading.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per finding of ``month`` (in rank order) and one per finding of
        the month before that is no longer found (status ``resolved or below
        the threshold``).
    month, previous : str
        The month and the calendar month before it.
    project : str
    months : list of str
        The months of the project the ledger holds, up to ``month``.
    ledger : pandas.DataFrame
        The project's ledger rows up to ``month`` (for the plot).
    notes : list of str
    """

    table: pd.DataFrame
    month: str
    previous: str
    project: str
    months: list[str]
    ledger: pd.DataFrame
    currency: str = "$"
    notes: list[str] = field(default_factory=list)
    title = "Findings over time"

    def to_frame(self) -> pd.DataFrame:
        """Return one row per finding (this month's, then the resolved ones)."""
        return self.table.copy()

    def counts(self) -> dict[str, int]:
        """Return how many findings have each status."""
        return {s: int((self.table["status"] == s).sum()) for s in STATUSES}

    def summary(self) -> str:
        """Say what is new, growing, persisting, shrinking and gone, and the rule."""
        counts = self.counts()
        open_now = int((self.table["status"] != RESOLVED).sum())
        head = f"Findings of {self.month} over time ({self.project}, {len(self.months)} month(s) in the ledger)"
        if open_now == 0:
            lines = [f"{head}: no finding this month."]
        else:
            lines = [
                f"{head}: {open_now} finding(s) — "
                + ", ".join(f"{counts[s]} {s}" for s in STATUSES[:-1])
                + "."
            ]
        if counts[RESOLVED]:
            lines.append(
                f"{counts[RESOLVED]} finding(s) of {self.previous} no longer found ({RESOLVED})."
            )
        for row in self.table.itertuples():
            if row.status == RESOLVED:
                lines.append(
                    f"  – {row.id}: {RESOLVED} (was {fmt_money(row.previous_value_at_stake, self.currency)} "
                    f"a month in {self.previous})."
                )
                continue
            since = f"open {row.months_open} month(s), first seen {row.first_seen}"
            lines.append(
                f"  {int(row.rank) if row.rank == row.rank else '–'}. [{row.status}; {since}] "
                f"{row.text or row.id}"
            )
        lines.append(
            "Rule: growing when the value at stake is above the previous month's interval, "
            "shrinking when below it, persisting when inside it; new when not found the month before."
        )
        lines += self.notes
        return "\n".join(lines)

    def display_frame(self) -> pd.DataFrame:
        """Return the table for readers: money formatted, the trend as text."""
        out = self.table[["rank", "status", "id", "first_seen", "months_open"]].copy()
        out["value at stake"] = [fmt_money(v, self.currency) for v in self.table["value_at_stake"]]
        out["previous month"] = [
            fmt_money(v, self.currency) for v in self.table["previous_value_at_stake"]
        ]
        out["trend"] = [
            " → ".join(fmt_money(v, self.currency) for v in t) for t in self.table["trend"]
        ]
        return out

    def top_ids(self, n: int = 6) -> list[str]:
        """Return the ids of the ``n`` highest-ranked findings of the month."""
        found = self.table.loc[self.table["status"] != RESOLVED]
        return found["id"].head(n).tolist()

    def plot(self, ax=None, n: int = 6):
        """Small multiples of value at stake over the months, one panel per top finding.

        Parameters
        ----------
        ax : matplotlib Axes, array of Axes, or None
            None draws a new figure with one panel per finding; a sequence of
            axes is filled in order; a single Axes overlays the lines.
        n : int
            How many of the month's top findings to draw.

        Returns
        -------
        numpy.ndarray of Axes (or the single Axes given)
        """
        import matplotlib.pyplot as plt

        from journeylab.core.viz import PALETTE

        ids = self.top_ids(n)
        months = self.months
        x = np.arange(len(months))
        overlay = ax is not None and hasattr(ax, "plot")
        if ax is None:
            cols = min(3, max(len(ids), 1))
            rows = max(1, math.ceil(len(ids) / cols))
            fig, axes = plt.subplots(
                rows, cols, figsize=(max(3.8 * cols, 6.0), 3.0 * rows + 0.7), squeeze=False
            )
            axes = axes.ravel()
            for extra in axes[len(ids) :]:
                extra.set_axis_off()
            fig.suptitle(
                f"Value at stake per month, top findings of {self.month}",
                fontweight="bold",
                fontsize=12,
            )
        elif overlay:
            axes = np.array([ax])
        else:
            axes = np.asarray(ax).ravel()
        if not ids:
            axes[0].text(
                0.5, 0.5, f"No finding in {self.month}", ha="center", va="center", parse_math=False
            )
            axes[0].set_axis_off()
            return axes[0] if overlay else axes
        for i, fid in enumerate(ids):
            target = axes[i if not overlay else 0]
            rows = self.ledger.loc[self.ledger["id"] == fid].set_index("month").reindex(months)
            y = rows["value_at_stake"].to_numpy(float)
            lo = y - rows["value_at_stake_ci_low"].to_numpy(float)
            hi = rows["value_at_stake_ci_high"].to_numpy(float) - y
            colour = PALETTE[i % len(PALETTE)] if overlay else PALETTE[0]
            status = self.table.loc[self.table["id"] == fid, "status"].iloc[0]
            label = _short_name(self.table.loc[self.table["id"] == fid].iloc[0])
            target.errorbar(x, y, yerr=[lo, hi], marker="o", color=colour, capsize=3, label=label)
            if not overlay:  # the months reported without this finding
                gone = np.isnan(y)
                target.scatter(
                    x[gone],
                    np.zeros(gone.sum()),
                    marker="x",
                    color=PALETTE[2],
                    zorder=3,
                    clip_on=False,
                )
                title = "\n".join(textwrap.wrap(label, 40)[:3])
                target.set_title(
                    f"{title}\n({status})", fontsize=8.5, fontweight="normal", loc="left"
                )
                target.set_ylim(bottom=0)
            target.set_xticks(x, labels=months, rotation=45, ha="right", fontsize=8)
            target.tick_params(axis="y", labelsize=8)
            target.yaxis.set_major_formatter(lambda v, _: _money_tick(v, self.currency))
            for tick in target.get_xticklabels() + target.get_yticklabels():
                tick.set_parse_math(False)
        if not overlay:
            axes[0].figure.text(
                0.01, 0.01, "× reported month without this finding", fontsize=8, color=PALETTE[2]
            )
        if overlay:
            axes[0].set_ylabel(f"Value at stake per month ({self.currency})")
            axes[0].legend(fontsize=8)
            return axes[0]
        axes[0].figure.tight_layout()
        return axes


def finding_history(
    ledger: pd.DataFrame | str | Path,
    month: str,
    *,
    project: str | None = None,
    currency: str = "$",
) -> FindingHistory:
    """Follow each finding of ``month`` back through the ledger.

    Parameters
    ----------
    ledger : pandas.DataFrame or path
        :func:`read_ledger`'s frame, or the reports root.
    month : str
        ``YYYY-MM``; it must be in the ledger.
    project : str, optional
        Needed when the ledger holds several projects.
    currency : str
        Sign money is written with.

    Returns
    -------
    FindingHistory
        ``to_frame()`` has ``rank``, ``id``, ``kind``, ``step``, ``dimension``,
        ``segment``, ``status``, ``first_seen``, ``months_open`` (consecutive,
        up to ``month``), ``months_seen``, ``value_at_stake`` and its interval,
        ``previous_value_at_stake`` and its interval, ``trend_months``,
        ``trend`` (value at stake in each month seen) and ``text``.

    Examples
    --------
    >>> import tempfile
    >>> from journeylab.actions.ledger import append_findings, finding_history
    >>> from journeylab.maps.findings import FINDING_FIELDS
    >>> root = tempfile.mkdtemp()
    >>> f = dict.fromkeys(FINDING_FIELDS) | {"id": "timing:a→b:hour_of_day=00:00-03:00", "kind": "timing",
    ...      "rank": 1, "value_at_stake": 100.0, "value_at_stake_ci_low": 50.0, "value_at_stake_ci_high": 150.0}
    >>> _ = append_findings(root, "2026-09", [f], project="Shop")
    >>> _ = append_findings(root, "2026-10", [f | {"value_at_stake": 200.0}], project="Shop")
    >>> finding_history(root, "2026-10").to_frame()[["status", "months_open"]].values.tolist()
    [['growing', 2]]
    """
    month = _check_month(month, "month")
    frame, project = _one_project(_as_ledger(ledger), project)
    months = sorted(m for m in frame["month"].unique().tolist() if m <= month)
    if month not in months:
        present = sorted(frame["month"].unique().tolist())
        raise ParameterError(
            f"month == {month!r} is not in the ledger of {project!r}{did_you_mean(month, present)}; "
            f"months present: {present}."
        )
    frame = frame.loc[frame["month"] <= month]
    found = frame.loc[frame["id"].notna()]
    reported = set(months)
    previous = _previous_month(month)
    notes = []
    if previous not in reported:
        notes.append(
            f"No report of {previous} in the ledger: every finding of {month} counts as new."
        )
    by_month = {m: g.set_index("id") for m, g in found.groupby("month")}
    now = by_month.get(month, pd.DataFrame(columns=found.columns).set_index("id"))
    before = by_month.get(previous, pd.DataFrame(columns=found.columns).set_index("id"))
    rows = []
    for fid, row in now.iterrows():
        seen = found.loc[found["id"] == fid].sort_values("month")
        streak, m = 0, month
        while m in by_month and fid in by_month[m].index:
            streak += 1
            m = _previous_month(m)
        status = "new"
        prev = before.loc[fid] if fid in before.index else None
        if prev is not None:
            status = _trend_status(
                row["value_at_stake"], prev["value_at_stake_ci_low"], prev["value_at_stake_ci_high"]
            )
        rows.append(_history_row(fid, row, status, prev, seen=seen, streak=streak))
    for fid, prev in before.iterrows():
        if fid in now.index:
            continue
        seen = found.loc[found["id"] == fid].sort_values("month")
        gone = {
            **prev.to_dict(),
            "rank": np.nan,
            "value_at_stake": np.nan,
            "value_at_stake_ci_low": np.nan,
            "value_at_stake_ci_high": np.nan,
        }
        out = _history_row(fid, gone, RESOLVED, prev, seen=seen, streak=0)
        out["previous_rank"] = prev.get("rank")
        rows.append(out)
    columns = [
        "rank", "id", "kind", "step", "dimension", "segment", "status", "first_seen", "months_open",
        "months_seen", "value_at_stake", "value_at_stake_ci_low", "value_at_stake_ci_high",
        "previous_value_at_stake", "previous_ci_low", "previous_ci_high", "trend_months", "trend", "text",
    ]  # fmt: skip
    table = pd.DataFrame(rows, columns=[*columns, "previous_rank"])
    table["_resolved"] = table["status"] == RESOLVED
    table = table.sort_values(["_resolved", "rank", "previous_rank"], kind="stable")
    table = table[columns].reset_index(drop=True)
    return FindingHistory(
        table=table,
        month=month,
        previous=previous,
        project=project,
        months=months,
        ledger=found.reset_index(drop=True),
        currency=currency,
        notes=notes,
    )


def _trend_status(value: float, prev_low: float, prev_high: float) -> str:
    """Growing above the previous month's interval, shrinking below it, persisting inside it."""
    if value is not None and prev_high is not None and value > prev_high:
        return "growing"
    if value is not None and prev_low is not None and value < prev_low:
        return "shrinking"
    return "persisting"


def _history_row(fid, row, status, prev, *, seen, streak) -> dict[str, Any]:
    return {
        "rank": row.get("rank"),
        "id": fid,
        "kind": row.get("kind"),
        "step": row.get("step"),
        "dimension": row.get("dimension"),
        "segment": row.get("segment"),
        "status": status,
        "first_seen": seen["month"].iloc[0],
        "months_open": streak,
        "months_seen": len(seen),
        "value_at_stake": row.get("value_at_stake"),
        "value_at_stake_ci_low": row.get("value_at_stake_ci_low"),
        "value_at_stake_ci_high": row.get("value_at_stake_ci_high"),
        "previous_value_at_stake": np.nan if prev is None else prev.get("value_at_stake"),
        "previous_ci_low": np.nan if prev is None else prev.get("value_at_stake_ci_low"),
        "previous_ci_high": np.nan if prev is None else prev.get("value_at_stake_ci_high"),
        "trend_months": seen["month"].tolist(),
        "trend": [float(v) for v in seen["value_at_stake"]],
        "text": row.get("text") or "",
    }


# -- fixes --------------------------------------------------------------------
def experiments_addressing(
    experiments: Mapping[str, Mapping[str, Any]] | Any,
    ledger: pd.DataFrame | str | Path | None = None,
) -> dict[str, list[str]]:
    """Map each finding id to the experiments that address it (``addresses:`` in the project file).

    Parameters
    ----------
    experiments : Project or mapping
        A :class:`~journeylab.core.project.Project` (its ``experiments``) or the
        mapping ``{name: {addresses: <finding id>, ...}}``.
    ledger : DataFrame or path, optional
        When given, every ``addresses`` must be an id the ledger holds; a typo
        is an error with the closest id.

    Returns
    -------
    dict
        ``{finding id: [experiment names]}``.
    """
    spec = getattr(experiments, "experiments", experiments)
    known = None
    if ledger is not None:
        known = sorted(set(_as_ledger(ledger)["id"].dropna()))
    out: dict[str, list[str]] = {}
    for name, item in dict(spec or {}).items():
        target = (item or {}).get("addresses")
        if target is None:
            continue
        if known is not None and target not in known:
            raise ParameterError(
                f"experiments.{name}.addresses == {target!r} is no finding id of the ledger"
                f"{did_you_mean(str(target), known)}; copy the id from the report's findings."
            )
        out.setdefault(str(target), []).append(str(name))
    return out


@dataclass
class FixTimeline(Result):
    """A finding before, during and after the experiment that addresses it.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per month the project was reported: ``month``, ``phase``
        (``before`` / ``during`` / ``after``, None without experiment dates),
        ``found``, the finding's ``rate`` (``value``), ``benchmark``,
        ``difference`` and its interval, ``value_at_stake`` and its interval,
        ``rank``. Months it was not found carry NaN.
    finding_id : str
    start, end : str or None
        First and last month of the experiment (``YYYY-MM``).
    readout : ExperimentResult or None
    experiment : str or None
        The experiment's name.
    """

    table: pd.DataFrame
    finding_id: str
    start: str | None
    end: str | None
    readout: Any = None
    experiment: str | None = None
    currency: str = "$"
    title = "Fix timeline"

    def to_frame(self) -> pd.DataFrame:
        """Return one row per reported month."""
        return self.table.copy()

    def phase_summary(self) -> pd.DataFrame:
        """Return, per phase, the months, the months found and the mean value at stake (0 when not found)."""
        t = self.table.dropna(subset=["phase"])
        if t.empty:
            return pd.DataFrame(
                columns=["phase", "months", "months_found", "mean_value_at_stake", "mean_rate"]
            )
        grouped = t.assign(vas=t["value_at_stake"].fillna(0.0)).groupby("phase", sort=False)
        out = grouped.agg(
            months=("month", "size"),
            months_found=("found", "sum"),
            mean_value_at_stake=("vas", "mean"),
            mean_rate=("rate", "mean"),
        )
        order = [p for p in ("before", "during", "after") if p in out.index]
        return out.loc[order].reset_index()

    def readout_frame(self) -> pd.DataFrame:
        """Return the experiment's comparisons (metric, variant, lift, interval, adjusted p, status)."""
        if self.readout is None:
            return pd.DataFrame()
        cols = [
            "metric",
            "variant",
            "abs_lift",
            "abs_ci_low",
            "abs_ci_high",
            "rel_lift",
            "p_value_adjusted",
            "status",
        ]
        frame = self.readout.to_frame()
        return frame[[c for c in cols if c in frame]]

    def summary(self) -> str:
        """Say the finding's course before, during and after the fix, and the experiment's readout."""
        t = self.table
        name = f" ({self.experiment})" if self.experiment else ""
        lines = [
            f"Finding {self.finding_id}: found in {int(t['found'].sum())} of {len(t)} reported month(s)."
        ]
        if self.start is None:
            lines.append(
                "No experiment dates given: the months are not split into before / during / after."
            )
        else:
            until = f" to {self.end}" if self.end else " (still running: no end given)"
            lines.append(f"Experiment{name} ran from {self.start}{until}.")
            for phase in ("before", "during", "after"):
                part = t.loc[t["phase"] == phase]
                if part.empty:
                    continue
                bits = []
                for r in part.itertuples():
                    if r.found:
                        bits.append(
                            f"{r.month} {fmt_pct(r.rate)} vs {fmt_pct(r.benchmark)}, "
                            f"{fmt_money(r.value_at_stake, self.currency)} "
                            f"{fmt_ci(r.value_at_stake_ci_low, r.value_at_stake_ci_high, lambda v: fmt_money(v, self.currency))}"
                        )
                    else:
                        bits.append(f"{r.month} not found ({RESOLVED})")
                lines.append(f"  {phase}: " + "; ".join(bits) + ".")
        if self.readout is not None:
            lines.append(f"Experiment readout{name}:")
            for r in self.readout_frame().itertuples():
                if str(r.status).startswith("not computable"):
                    lines.append(f"  {r.variant} on {r.metric}: {r.status}.")
                    continue
                lines.append(
                    f"  {r.variant} on {r.metric}: {fmt_pp(r.abs_lift)} "
                    f"{fmt_ci(r.abs_ci_low, r.abs_ci_high, fmt_pp)}, adjusted p = {r.p_value_adjusted:.3g}"
                    f" ({r.status})."
                )
            for check in getattr(self.readout, "flagged", []):
                lines.append(f"  ⚠ {check.message}")
        return "\n".join(lines)

    def display_frame(self) -> pd.DataFrame:
        """Return the months for readers: rates as %, money formatted."""
        t = self.table
        money = lambda v: fmt_money(v, self.currency)  # noqa: E731
        return pd.DataFrame(
            {
                "month": t["month"],
                "phase": t["phase"].fillna("–"),
                "rate": [
                    fmt_pct(v) if r else "–" for v, r in zip(t["rate"], t["found"], strict=True)
                ],
                "benchmark": [
                    fmt_pct(v) if r else "–"
                    for v, r in zip(t["benchmark"], t["found"], strict=True)
                ],
                "value at stake": [
                    f"{money(v)} {fmt_ci(lo, hi, money)}" if r else f"not found ({RESOLVED})"
                    for v, lo, hi, r in zip(
                        t["value_at_stake"],
                        t["value_at_stake_ci_low"],
                        t["value_at_stake_ci_high"],
                        t["found"],
                        strict=True,
                    )
                ],
            }
        )

    def _repr_html_(self) -> str:
        import html as _html

        body = super()._repr_html_()
        readout = self.readout_frame()
        if readout.empty:
            return body
        table = readout.to_html(
            index=False, float_format=lambda v: f"{v:.3g}", na_rep="–", border=0, classes="jl-table"
        )
        return (
            body
            + f"<h5>{_html.escape('Experiment readout' + (' — ' + self.experiment if self.experiment else ''))}</h5>{table}"
        )

    def plot(self, ax=None):
        """Value at stake per month with its interval, the experiment's months shaded."""
        from journeylab.core.viz import PALETTE, new_axes

        own = ax is None
        ax = new_axes(ax, figsize=(7, 4.2))
        t = self.table
        x = np.arange(len(t))
        y = t["value_at_stake"].to_numpy(float)
        lo = y - t["value_at_stake_ci_low"].to_numpy(float)
        hi = t["value_at_stake_ci_high"].to_numpy(float) - y
        ax.errorbar(
            x, y, yerr=[lo, hi], marker="o", color=PALETTE[0], capsize=3, label="value at stake"
        )
        missing = ~t["found"].to_numpy(bool)
        if missing.any():
            ax.scatter(
                x[missing],
                np.zeros(missing.sum()),
                marker="x",
                color=PALETTE[2],
                zorder=3,
                clip_on=False,
                label="not found",
            )
        during = np.flatnonzero((t["phase"] == "during").to_numpy())
        if during.size:
            ax.axvspan(
                during.min() - 0.5,
                during.max() + 0.5,
                color=PALETTE[1],
                alpha=0.15,
                label=f"experiment{' ' + self.experiment if self.experiment else ''} running",
            )
        ticks = [
            m if p is None else f"{m}\n{p}" for m, p in zip(t["month"], t["phase"], strict=True)
        ]
        ax.set_xticks(x, labels=ticks)
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_formatter(lambda v, _: _money_tick(v, self.currency))
        for tick in ax.get_xticklabels() + ax.get_yticklabels():
            tick.set_parse_math(False)
        ax.set_ylabel(f"Value at stake per month ({self.currency})")
        ax.set_title(
            f"Before, during and after the fix\n{self.finding_id}", fontsize=10, loc="left"
        )
        ax.legend(fontsize=8, loc="best")
        if own:
            ax.figure.tight_layout()
        return ax


def fix_timeline(
    ledger: pd.DataFrame | str | Path,
    finding_id: str,
    experiment_readout: Any = None,
    *,
    start: Any = None,
    end: Any = None,
    assignments: pd.DataFrame | Any = None,
    experiment: str | None = None,
    project: str | None = None,
    currency: str = "$",
) -> FixTimeline:
    """Lay a finding's rate and value at stake beside the experiment that addresses it.

    Parameters
    ----------
    ledger : pandas.DataFrame or path
        :func:`read_ledger`'s frame, or the reports root.
    finding_id : str
        The finding's id (what ``experiments.<name>.addresses`` says).
    experiment_readout : ExperimentResult, optional
        :func:`journeylab.experiments.analyze`'s result, summarised beside.
    start, end : date or ``YYYY-MM``, optional
        When the experiment started and ended; by default the first and last
        ``assigned_at`` of ``assignments``. Without an end, it runs on.
    assignments : DataFrame or loaded table, optional
        The experiment's assignments, with ``assigned_at``.
    experiment : str, optional
        The experiment's name, for the text.
    project : str, optional
        Needed when the ledger holds several projects.
    currency : str
        Sign money is written with.

    Returns
    -------
    FixTimeline
        Months strictly before the start month are ``before``; from the start
        month to the end month ``during``; after the end month ``after``.
    """
    frame, project = _one_project(_as_ledger(ledger), project)
    ids = sorted(set(frame["id"].dropna()))
    if finding_id not in ids:
        raise ParameterError(
            f"finding_id == {finding_id!r} is not in the ledger of {project!r}{did_you_mean(finding_id, ids)}."
        )
    if assignments is not None:
        table = getattr(assignments, "frame", assignments)
        if not isinstance(table, pd.DataFrame) or "assigned_at" not in table:
            raise SchemaError(
                "The assignments table has no 'assigned_at' column, so the experiment's dates are unknown.",
                column="assigned_at",
                missing_columns=["assigned_at"],
                hint="load assignments with an assigned_at column, or pass start= and end=.",
            )
        stamps = pd.to_datetime(table["assigned_at"], utc=True, errors="coerce").dropna()
        if stamps.empty:
            raise DataError(
                "Every assigned_at of the assignments is empty or not a date.",
                column="assigned_at",
                hint="pass start= and end= instead.",
            )
        start = stamps.min() if start is None else start
        end = stamps.max() if end is None else end
    start_m = None if start is None else _month_of(start, "start")
    end_m = None if end is None else _month_of(end, "end")
    if start_m is None and end_m is not None:
        raise ParameterError("end is given without start: give the experiment's start too.")
    if start_m is not None and end_m is not None and end_m < start_m:
        raise ParameterError(f"end ({end_m}) is before start ({start_m}).")
    months = sorted(frame["month"].unique().tolist())
    rows = (
        frame.loc[frame["id"] == finding_id]
        .drop_duplicates("month", keep="last")
        .set_index("month")
    )
    rows = rows.reindex(months)
    phase: list[str | None] = []
    for m in months:
        if start_m is None:
            phase.append(None)
        elif m < start_m:
            phase.append("before")
        elif end_m is None or m <= end_m:
            phase.append("during")
        else:
            phase.append("after")
    out = pd.DataFrame(
        {
            "month": months,
            "phase": phase,
            "found": rows["id"].notna().to_numpy(),
            "rank": rows["rank"].to_numpy(float),
            "rate": rows["value"].to_numpy(float),
            "benchmark": rows["benchmark"].to_numpy(float),
            "difference": rows["difference"].to_numpy(float),
            "difference_ci_low": rows["difference_ci_low"].to_numpy(float),
            "difference_ci_high": rows["difference_ci_high"].to_numpy(float),
            "value_at_stake": rows["value_at_stake"].to_numpy(float),
            "value_at_stake_ci_low": rows["value_at_stake_ci_low"].to_numpy(float),
            "value_at_stake_ci_high": rows["value_at_stake_ci_high"].to_numpy(float),
        }
    )
    return FixTimeline(
        table=out,
        finding_id=finding_id,
        start=start_m,
        end=end_m,
        readout=experiment_readout,
        experiment=experiment,
        currency=currency,
    )
