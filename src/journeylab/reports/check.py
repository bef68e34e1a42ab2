"""``journeylab check``: load every table of a project file and hold its names against the data.

The check prints, in this order: the project's name and tables, the quality
report of each table (rows read, kept, dropped and repaired, with reasons),
the events of the data that no stage names (with their counts: worth a look,
not an error), and the names of the project file that no row carries (with
the closest names present). It exits 0 when every name is found, 2 when one is
not (or the project file itself is invalid), so a scheduler can run it before
the report.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd

from journeylab.core.errors import SchemaError
from journeylab.core.project import Project, load_project
from journeylab.core.results import fmt_num

__all__ = ["check_project"]

EXIT_OK, EXIT_NAMES = 0, 2


def check_project(config: str | Path | Project, *, out: TextIO | None = None) -> int:
    """Load the tables of a project file, print what was found, and return the exit code.

    Parameters
    ----------
    config : str, Path or Project
        The project file.
    out : text stream, optional
        Where to print (standard output by default).

    Returns
    -------
    int
        0 when every name of the project file occurs in the data, 2 otherwise.
    """
    from journeylab.reports.workspace import load_project_tables

    out = out or sys.stdout
    project = config if isinstance(config, Project) else load_project(config)
    print(f"Project: {project.name} ({project.source})", file=out)
    ws = load_project_tables(project, pseudonymize=False)
    print(ws.summary(), file=out)
    for name, table in ws.tables().items():
        steps = table.quality.to_frame()
        steps = steps[steps["rows"] > 0] if "rows" in steps else steps
        if len(steps):
            print(f"\n{name}: what loading did", file=out)
            for row in steps.itertuples(index=False):
                where = f" in {row.column}" if isinstance(row.column, str) and row.column else ""
                example = (
                    f" ({table.quality.row_label}s {row.example_rows})"
                    if str(row.example_rows) not in ("", "nan", "None")
                    else ""
                )
                print(
                    f"  {row.step}{where}: {fmt_num(int(row.rows))} rows {row.action}, {row.reason}{example}",
                    file=out,
                )
    events = ws.events.frame["event"]
    columns = list(ws.events.frame.columns) + (
        list(ws.users.columns) if ws.users is not None else []
    )
    # one pass over the rows: each name's code, then the rows per code
    codes, names = pd.factorize(events, use_na_sentinel=True)
    rows = np.bincount(codes[codes >= 0], minlength=len(names))
    counts = dict(zip(names, rows.tolist(), strict=True))
    present = list(names) + ([np.nan] if (codes < 0).any() else [])
    problems, unstaged = project.check_names(present, columns)
    if unstaged:
        print(
            f"\n{len(unstaged)} event(s) of the data belong to no stage (they are left out of stage KPIs):",
            file=out,
        )
        for name in sorted(unstaged, key=lambda e: -int(counts.get(e, 0))):
            print(f"  {name!r}: {fmt_num(int(counts.get(name, 0)))} rows", file=out)
    if problems:
        print(f"\n{len(problems)} name(s) of the project file are not in the data:", file=out)
        for problem in problems:
            print(f"  {problem}", file=out)
        print("Correct them in the project file and run `journeylab check` again.", file=out)
        return EXIT_NAMES
    print("\nEvery name of the project file occurs in the data.", file=out)
    return EXIT_OK


def main_check(config: str | Path) -> int:
    """Run the check as the command line does, printing errors instead of raising."""
    try:
        return check_project(config)
    except SchemaError as exc:
        print(f"journeylab check: {exc}", file=sys.stderr)
        return EXIT_NAMES
