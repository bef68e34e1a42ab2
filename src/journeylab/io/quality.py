"""The quality report that travels with every loaded table.

Loading never loses data silently: every row a loader drops, de-duplicates,
repairs or flags is counted here with the reason, the column at fault and the
first few source rows, so a reader can go back to the file. The report also
carries the channel-name mapping (raw spelling → canonical display name) and
free-text notes about choices the loader made (for example "naive timestamps
read as UTC").

Row numbers are 1-based and refer to the source: for a CSV file with a header
they are *file line numbers* (the header is line 1, the first data row is
line 2); for Parquet, DuckDB tables/queries and DataFrames they are 1-based
row positions in source order.

:class:`LoadedTable` pairs a loaded frame with its report.

The invariant ``rows_read == rows_kept + rows_dropped`` (where dropped
includes de-duplicated rows) is checked by the loaders before they return.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from journeylab.core.errors import JourneylabError
from journeylab.core.results import Result
from journeylab.core.safe_text import html, html_table
from journeylab.io.casting import visible

__all__ = ["QualityStep", "QualityReport", "LoadedTable"]

Action = Literal["dropped", "deduplicated", "repaired", "flagged"]
_REMOVING = ("dropped", "deduplicated")


@dataclass(frozen=True)
class QualityStep:
    """One thing a loader did to some rows.

    Parameters
    ----------
    step : str
        Short name, e.g. ``"missing user_id"``.
    action : {"dropped", "deduplicated", "repaired", "flagged"}
        ``dropped`` and ``deduplicated`` remove rows; ``repaired`` changes
        values in place (a DST shift, a trimmed id); ``flagged`` keeps the rows
        unchanged but counts them (refunds, duplicates kept on purpose).
    count : int
        Number of rows affected.
    column : str or None
        The canonical column at fault.
    reason : str
        What was wrong and what the loader did, in a sentence.
    rows : tuple of int
        The first few affected source rows (1-based; file lines for CSV).
    """

    step: str
    action: Action
    count: int
    column: str | None = None
    reason: str = ""
    rows: tuple[int, ...] = ()

    @property
    def removes_rows(self) -> bool:
        """True if this step removed rows from the table."""
        return self.action in _REMOVING


@dataclass(eq=False)
class QualityReport(Result):
    """What happened to the rows of one source on their way to a canonical table.

    Attributes
    ----------
    table : str
        Which table was loaded ("events", "assignments" ...).
    source : str
        The file, table, query or object the rows came from.
    rows_read : int
        Rows read from the source (within the requested date range, if any).
    steps : list of QualityStep
        One entry per step that dropped, de-duplicated, repaired or flagged rows.
    channel_mapping : pandas.DataFrame
        Columns ``raw``, ``channel``, ``rows``: every raw channel spelling
        that was changed and the canonical display name it maps to.
    notes : list of str
        Choices the loader made that did not touch particular rows.
    row_label : str
        How row numbers in ``steps`` are to be read ("line" for CSV files,
        "row" otherwise).

    Examples
    --------
    >>> report = QualityReport("events", "events.csv", rows_read=10)
    >>> report.add("missing user_id", "dropped", 2, column="user_id", rows=[3, 7])
    >>> report.rows_kept
    8
    """

    table: str
    source: str
    rows_read: int = 0
    steps: list[QualityStep] = field(default_factory=list)
    channel_mapping: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["raw", "channel", "rows"])
    )
    notes: list[str] = field(default_factory=list)
    row_label: str = "row"

    title = "Data quality"

    # -- building -----------------------------------------------------
    def add(
        self,
        step: str,
        action: Action,
        count: int,
        *,
        column: str | None = None,
        reason: str = "",
        rows: list[int] | tuple[int, ...] = (),
    ) -> None:
        """Record a step; steps that touched no row are not recorded."""
        count = int(count)
        if count <= 0:
            return
        self.steps.append(
            QualityStep(
                step=step,
                action=action,
                count=count,
                column=column,
                reason=reason,
                rows=tuple(int(r) for r in list(rows)[:5]),
            )
        )

    def note(self, text: str) -> None:
        """Record a choice the loader made (shown under the steps)."""
        if text not in self.notes:
            self.notes.append(text)

    # -- figures ------------------------------------------------------
    @property
    def rows_dropped(self) -> int:
        """Rows removed by dropping or de-duplication."""
        return sum(s.count for s in self.steps if s.removes_rows)

    @property
    def rows_kept(self) -> int:
        """Rows in the loaded table."""
        return self.rows_read - self.rows_dropped

    def count(self, step: str) -> int:
        """Rows counted under ``step`` (0 when the step never happened).

        Examples
        --------
        >>> QualityReport("events", "x").count("missing user_id")
        0
        """
        return sum(s.count for s in self.steps if s.step == step)

    def check(self, rows_in_table: int) -> None:
        """Raise if the rows in the table and the report do not add up.

        ``rows_read == rows_kept + rows_dropped`` must hold and ``rows_kept``
        must equal the rows actually returned; a mismatch is a bug in the
        loader, never a property of the data.
        """
        if rows_in_table != self.rows_kept or self.rows_kept < 0:
            raise JourneylabError(
                f"Internal check failed for {self.table} from {self.source}: "
                f"{self.rows_read} rows read, {self.rows_dropped} dropped, but "
                f"{rows_in_table} rows returned (expected {self.rows_kept}). "
                "Please report this with the file that caused it."
            )

    # -- rendering ----------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """One row per step: step, action, column, rows, reason, example_rows."""
        return pd.DataFrame(
            {
                "step": [s.step for s in self.steps],
                "action": [s.action for s in self.steps],
                "column": [s.column for s in self.steps],
                "rows": [s.count for s in self.steps],
                "reason": [s.reason for s in self.steps],
                "example_rows": [", ".join(map(str, s.rows)) for s in self.steps],
            },
            columns=["step", "action", "column", "rows", "reason", "example_rows"],
        )

    def display_frame(self) -> pd.DataFrame:
        """Return the steps table with counts written with thousands separators."""
        frame = self.to_frame()
        frame["rows"] = [f"{n:,}" for n in frame["rows"]]
        return frame.rename(columns={"example_rows": f"first {self.row_label}s"})

    def summary(self) -> str:
        """Plain text: rows read, kept, dropped, then one line per step.

        Examples
        --------
        >>> print(QualityReport("events", "events.csv", rows_read=3).summary())
        events from events.csv: 3 rows read, 3 kept, 0 dropped.
        """
        lines = [
            f"{self.table} from {self.source}: {self.rows_read:,} rows read, "
            f"{self.rows_kept:,} kept, {self.rows_dropped:,} dropped."
        ]
        for s in self.steps:
            where = f" (first {self.row_label}s {', '.join(map(str, s.rows))})" if s.rows else ""
            reason = f" — {s.reason}" if s.reason else ""
            noun = "row" if s.count == 1 else "rows"
            lines.append(f"  {s.step}: {s.count:,} {noun} {s.action}{where}{reason}")
        if len(self.channel_mapping):
            pairs = [
                f"{visible(r.raw)} → {visible(r.channel)} ({int(r.rows):,})"
                for r in self.channel_mapping.itertuples(index=False)
            ]
            shown = "; ".join(pairs[:8]) + (f"; … {len(pairs) - 8} more" if len(pairs) > 8 else "")
            lines.append(f"  channel names: {shown}")
        for text in self.notes:
            lines.append(f"  note: {text}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = html(self.summary().splitlines()[0])
        parts = [
            f'<div class="jl-result"><h4>{html(self.title)}</h4><p class="jl-summary">{head}</p>'
        ]
        if self.steps:
            parts.append(
                html_table(
                    self.display_frame(), index=False, border=0, classes="jl-table", na_rep="–"
                )
            )
        if len(self.channel_mapping):
            parts.append("<p>Channel names (raw → canonical):</p>")
            # Invisible and combining characters are shown as escapes, so the raw spelling is readable.
            shown = self.channel_mapping.assign(raw=self.channel_mapping["raw"].map(visible))
            parts.append(html_table(shown, index=False, border=0, classes="jl-table"))
        if self.notes:
            items = "".join(f"<li>{html(n)}</li>" for n in self.notes)
            parts.append(f"<ul>{items}</ul>")
        parts.append("</div>")
        return "".join(parts)

    def __repr__(self) -> str:
        return f"<QualityReport>\n{self.summary()}"

    def __str__(self) -> str:
        return self.summary()


@dataclass(eq=False)
class LoadedTable:
    """A canonical table and the quality report of how it was loaded.

    Attributes
    ----------
    frame : pandas.DataFrame
        Canonical columns first, then the source's other columns (properties).
    quality : QualityReport
        Rows read, kept and dropped, with one entry per step.
    source : str
        The file, table, query or object the rows came from.
    """

    frame: pd.DataFrame
    quality: QualityReport
    source: str

    def __len__(self) -> int:
        return len(self.frame)

    def summary(self) -> str:
        """Describe the table's shape and its quality report as text."""
        return f"{len(self.frame):,} rows × {self.frame.shape[1]} columns\n{self.quality.summary()}"

    def __repr__(self) -> str:
        return f"<LoadedTable {self.quality.table}>\n{self.summary()}"

    def _repr_html_(self) -> str:
        head = html_table(
            self.frame.head(10), index=False, border=0, classes="jl-table", na_rep="–"
        )
        shape = f"{len(self.frame):,} rows × {self.frame.shape[1]} columns (first 10 shown)"
        return (
            f'<div class="jl-loaded"><h4>{html(self.quality.table)} from '
            f"{html(self.source)}</h4><p>{shape}</p>{head}"
            f"{self.quality._repr_html_()}</div>"
        )
