"""One call that gives a notebook every table it needs, loaded and checked.

``open_workspace()`` with no data builds the seeded sample
(:func:`journeylab.datasets.sample.make_sample`) and passes each of its tables through
the loaders, so the quality reports in a report are real ones. With ``data``
it reads a folder holding ``events``, and optionally ``users``,
``assignments``, ``feedback``, ``spend``, ``transactions`` and ``identities``
files (CSV or Parquet, as written by ``python -m journeylab.datasets.sample --out
DIR``), or a single events file. The sample is analysed with its own stage
map; other data need theirs: ``stage_map=``, a ``stages.yaml`` in the folder
(the sample writes one), or a project file (``project=``).

Identity step: when an identities table is present (always for the sample,
which logs phone calls and jobs under ids of their own), the ``user_id`` of
events, assignments, feedback and transactions is mapped onto persons with
:func:`journeylab.io.identities.resolve_identities` right after loading, before
any analysis; the events are put back in canonical order, and each table's
quality report counts the rows remapped, the ids merged and any ids the
identities table does not know.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from journeylab.core.errors import DataError, ParameterError, SchemaError
from journeylab.core.project import Project, load_project
from journeylab.core.results import Result, fmt_num
from journeylab.core.stages import StageMap
from journeylab.core.timeparse import month_bounds
from journeylab.io import loaders as io
from journeylab.io.identities import (
    IdentityResolution,
    OnConflict,
    record_resolution,
    resolve_identities,
)

__all__ = [
    "Workspace",
    "open_workspace",
    "open_report_workspace",
    "load_project_tables",
    "TABLE_FILES",
]

#: Table names a data folder may hold, each as ``<name>.parquet``, ``.csv`` or ``.csv.gz``.
TABLE_FILES = ("events", "users", "assignments", "feedback", "spend", "transactions", "identities")
#: Tables whose ``user_id`` the identity step maps onto persons.
_RESOLVED_TABLES = ("events", "assignments", "feedback", "transactions")
_SUFFIXES = (".parquet", ".csv", ".csv.gz")


@dataclass(repr=False)  # the repr is the summary: counts, never rows or user ids
class Workspace(Result):
    """The loaded tables of one analysis, with their quality reports.

    Attributes
    ----------
    events : LoadedTable
        The event log (always present).
    users : pandas.DataFrame or None
        One row per user (device, acquisition channel, persona ...), if given.
    assignments, feedback, spend, transactions : LoadedTable or None
        The other tables of the data contract, when present.
    identities : LoadedTable or None
        The identities table (``id`` → ``user_id``), when present.
    resolutions : dict
        Per resolved table, the :class:`~journeylab.io.identities.IdentityResolution`
        counts (rows remapped, ids merged, unmapped ids, conflicts).
    truth : dict or None
        The planted effects, for the bundled sample only.
    source : str
        Where the data came from (no file-system path for the sample).
    seed : int or None
        The sample's seed, when the sample was used.
    stage_map : StageMap
        The stage map the events were loaded (and are analysed) with.
    project : Project or None
        The project file, when the workspace was opened from one.
    """

    events: io.LoadedTable
    users: pd.DataFrame | None = None
    assignments: io.LoadedTable | None = None
    feedback: io.LoadedTable | None = None
    spend: io.LoadedTable | None = None
    transactions: io.LoadedTable | None = None
    identities: io.LoadedTable | None = None
    resolutions: dict[str, IdentityResolution] = field(default_factory=dict)
    truth: dict[str, Any] | None = None
    source: str = ""
    seed: int | None = None
    stage_map: StageMap | None = None
    project: Project | None = None
    title = "Data loaded"

    def month_events(self, month: str) -> pd.DataFrame:
        """Events of one calendar month (UTC, ``[first day, first day of next month)``).

        Raises
        ------
        DataError
            When the data holds no event in that month, naming the months it covers.
        """
        start, end = month_bounds(month)
        period = f"{start:%Y-%m}"
        events = self.events.frame
        stamps = events["timestamp"]
        window = events[(stamps >= start) & (stamps < end)]
        if window.empty:
            covered = (
                f"{stamps.min():%Y-%m-%d} to {stamps.max():%Y-%m-%d}"
                if len(stamps)
                else "no events at all"
            )
            raise DataError(
                f"No events in {period}.",
                source=self.source,
                column="timestamp",
                hint=f"the data covers {covered}; choose a month inside it.",
            )
        return window

    def tables(self) -> dict[str, io.LoadedTable]:
        """Return the loaded tables that are present, by name."""
        names = ("events", "assignments", "feedback", "spend", "transactions")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}

    def row_counts(self) -> dict[str, int]:
        """Rows kept per table (for run.json)."""
        counts = {name: len(t.frame) for name, t in self.tables().items()}
        if self.users is not None:
            counts["users"] = len(self.users)
        return counts

    def to_frame(self) -> pd.DataFrame:
        """One row per table: rows read, kept, dropped and repaired."""
        rows = []
        for name, table in self.tables().items():
            q = table.quality
            steps = q.to_frame()
            repaired = int(steps.loc[steps["action"] == "repaired", "rows"].sum())
            rows.append(
                {
                    "table": name,
                    "rows_read": q.rows_read,
                    "rows_kept": q.rows_kept,
                    "rows_dropped": q.rows_dropped,
                    "rows_repaired": repaired,
                }
            )
        return pd.DataFrame(rows)

    def summary(self) -> str:
        """Where the data came from and what loading did to it."""
        frame = self.to_frame()
        lines = [f"Data: {self.source}."]
        for row in frame.itertuples():
            line = f"{row.table}: {fmt_num(row.rows_kept)} of {fmt_num(row.rows_read)} rows kept"
            if row.rows_dropped:
                line += f", {fmt_num(row.rows_dropped)} dropped"
            if row.rows_repaired:
                line += f", {fmt_num(row.rows_repaired)} repaired"
            lines.append(line + ".")
        events = self.resolutions.get("events")
        if events is not None:
            lines.append(f"identities: {events.summary()}")
        return "\n".join(lines)


def _users(users: pd.DataFrame | None, pseudonymize: bool) -> pd.DataFrame | None:
    """Return the users table, with ids pseudonymised like the loaded tables when asked."""
    if users is None or not pseudonymize:
        return users
    from journeylab.io.privacy import pseudonymize as keyed

    out = users.copy()
    out["user_id"] = keyed(out["user_id"])
    return out


def _named(loaded: io.LoadedTable, path: Path) -> io.LoadedTable:
    """Label a loaded table by its file name only: reports are shared, paths are not."""
    loaded.source = path.name
    loaded.quality.source = path.name
    return loaded


def _resolve(
    tables: dict[str, Any], identities: io.LoadedTable, stages: StageMap, on_conflict: OnConflict
) -> dict[str, IdentityResolution]:
    """Map the user ids of the loaded tables onto persons, in place; return the counts."""
    out = {}
    for name in _RESOLVED_TABLES:
        table = tables.get(name)
        if table is None or "user_id" not in table.frame:
            continue
        resolution = resolve_identities(table, identities, on_conflict=on_conflict)
        if resolution.rows_remapped:
            frame = resolution.frame
            table.frame = io.sort_events(frame, stages) if name == "events" else frame
        record_resolution(table.quality, resolution)
        out[name] = resolution
    return out


def _stage_map_of(path: Path, stage_map: Any) -> StageMap:
    """Return the stage map given, else the ``stages.yaml`` of the data's folder."""
    from journeylab.datasets.sample import STAGES_FILE

    if stage_map is not None:
        return StageMap.coerce(stage_map)
    folder = path if path.is_dir() else path.parent
    if (folder / STAGES_FILE).exists():
        # named by its file name only, like the tables: reports are shared, paths are not
        return replace(StageMap.from_yaml(folder / STAGES_FILE), source=STAGES_FILE)
    raise ParameterError(
        f"No stage map for the data in {path.name}: pass stage_map= (StageMap.from_yaml(...)), "
        f"put a {STAGES_FILE} beside the events, or describe the data in a project file "
        "(journeylab init --data ... writes one) and pass project=."
    )


def _find(folder: Path, name: str) -> Path | None:
    for suffix in _SUFFIXES:
        path = folder / f"{name}{suffix}"
        if path.exists():
            return path
    return None


def open_workspace(
    data: str | Path | None = None,
    *,
    project: Project | str | Path | None = None,
    seed: int = 2026,
    n_users: int = 20_000,
    stage_map: StageMap | dict | str | None = None,
    pseudonymize: bool = False,
    on_conflict: OnConflict = "raise",
) -> Workspace:
    """Load every table an analysis needs, from ``data`` or from the bundled sample.

    Parameters
    ----------
    data : str or Path, optional
        A folder of table files (``events.parquet``, ``spend.csv`` ...) or one
        events file. None or ``""`` builds the seeded sample.
    seed, n_users : int
        Seed and size of the sample (ignored when ``data`` is given).
    project : Project, path of a project file, or None
        Where every table lives and what the journey means (see
        :mod:`journeylab.core.project`); ``data`` then overrides the events
        path only. The names the project uses are checked against the data:
        one that no row carries is an error with the closest names present.
    stage_map : StageMap, dict, YAML path or None
        The stage map (ignored with ``project``). None takes the sample's own
        for the sample, else ``stages.yaml`` beside the events; without one
        it is an error (there is no default map).
    pseudonymize : bool
        Replace user ids by keyed HMAC pseudonyms while loading (the
        identities table too, so the identity step still works).
    on_conflict : {"raise", "first"}
        An id the identities table maps to several persons: raise a
        ``DataError`` naming its rows, or keep its first mapping (counted).

    Returns
    -------
    Workspace

    Examples
    --------
    >>> ws = open_workspace(n_users=300, seed=1)
    >>> print(ws.summary())
    Data: bundled sample (seed 1, 300 users).
    events: 7,257 of 7,303 rows kept, 46 dropped, 222 repaired.
    assignments: 247 of 247 rows kept.
    feedback: 70 of 70 rows kept.
    spend: 2,024 of 2,024 rows kept.
    transactions: 117 of 117 rows kept.
    identities: 222 of 7,257 rows remapped: 112 ids merged into 96 persons (412 ids → 300 persons).
    """
    if project is not None:
        if not isinstance(project, Project):
            project = load_project(project)
        if data is not None and str(data) != "":
            project = project.with_events(data)
        return _project_workspace(project, pseudonymize=pseudonymize or project.pseudonymize)
    if data is None or str(data) == "":
        from journeylab.datasets.sample import make_sample

        sample = make_sample(seed=seed, n_users=n_users)
        stages = sample.stage_map if stage_map is None else StageMap.coerce(stage_map)
        tables = {
            "events": io.load_events(
                sample.logged_events(), stage_map=stages, pseudonymize=pseudonymize
            ),
            "assignments": io.load_assignments(sample.assignments, pseudonymize=pseudonymize),
            "feedback": io.load_feedback(sample.feedback, pseudonymize=pseudonymize),
            "spend": io.load_spend(sample.spend),
            "transactions": io.load_transactions(sample.transactions, pseudonymize=pseudonymize),
        }
        identities = io.load_identities(sample.identities, pseudonymize=pseudonymize)
        return Workspace(
            users=_users(sample.users, pseudonymize),
            identities=identities,
            resolutions=_resolve(tables, identities, stages, on_conflict),
            truth=sample.truth,
            source=f"bundled sample (seed {seed}, {n_users:,} users)",
            seed=seed,
            stage_map=stages,
            **tables,
        )
    path = Path(data)
    if path.is_file():
        stages = _stage_map_of(path, stage_map)
        return Workspace(
            events=_named(io.load_events(path, stage_map=stages, pseudonymize=pseudonymize), path),
            source=path.name,
            stage_map=stages,
        )
    if not path.is_dir():
        raise SchemaError(
            "The data path does not exist.",
            source=str(path),
            hint="give a folder holding events.parquet (or .csv) and optional "
            "assignments/feedback/spend/transactions/users/identities files, or one events file.",
        )
    events_path = _find(path, "events")
    if events_path is None:
        raise SchemaError(
            f"No events file in the data folder (looked for events{', events'.join(_SUFFIXES)}).",
            source=str(path),
            hint="name the event log events.parquet or events.csv, or pass the file itself.",
        )
    stages = _stage_map_of(path, stage_map)
    found = {name: _find(path, name) for name in TABLE_FILES}
    loaders = {
        "assignments": io.load_assignments,
        "feedback": io.load_feedback,
        "transactions": io.load_transactions,
    }
    kwargs: dict[str, Any] = {}
    for name, loader in loaders.items():
        if found[name] is not None:
            kwargs[name] = _named(loader(found[name], pseudonymize=pseudonymize), found[name])
    if found["spend"] is not None:
        kwargs["spend"] = _named(io.load_spend(found["spend"]), found["spend"])
    kwargs["events"] = _named(
        io.load_events(events_path, stage_map=stages, pseudonymize=pseudonymize), events_path
    )
    if found["identities"] is not None:
        identities = _named(
            io.load_identities(found["identities"], pseudonymize=pseudonymize), found["identities"]
        )
        kwargs["identities"] = identities
        kwargs["resolutions"] = _resolve(kwargs, identities, stages, on_conflict)
    users = None
    if found["users"] is not None:
        users_path = found["users"]
        users = (
            pd.read_parquet(users_path)
            if users_path.suffix == ".parquet"
            else pd.read_csv(users_path, dtype={"user_id": "string"})
        )
    return Workspace(
        users=_users(users, pseudonymize),
        source=path.name,
        stage_map=stages,
        **kwargs,
    )


_LOADERS = {
    "events": "load_events",
    "assignments": "load_assignments",
    "feedback": "load_feedback",
    "spend": "load_spend",
    "transactions": "load_transactions",
}
_PSEUDONYMIZED = ("events", "assignments", "feedback", "transactions")


def _project_workspace(project: Project, *, pseudonymize: bool) -> Workspace:
    """Load every table a project file names, then check its names against the data."""
    ws = load_project_tables(project, pseudonymize=pseudonymize)
    if project.derived:
        ws.events.frame = project.derive(ws.events.frame)
    columns = list(ws.events.frame.columns) + (
        list(ws.users.columns) if ws.users is not None else []
    )
    project.require_names(ws.events.frame["event"].unique(), columns)
    return ws


def load_project_tables(project: Project, *, pseudonymize: bool = False) -> Workspace:
    """Load every table a project file names, without checking its names (see ``journeylab check``)."""
    if project.sample is not None:
        from journeylab.datasets.sample import make_sample

        spec = project.sample
        options: dict[str, Any] = {"seed": spec.seed, "n_users": spec.n_users}
        if spec.vertical != "home_services":
            options["vertical"] = spec.vertical
        sample = make_sample(**options)
        tables = {
            "events": io.load_events(
                sample.logged_events(), stage_map=project.stage_map, pseudonymize=pseudonymize
            ),
            "assignments": io.load_assignments(sample.assignments, pseudonymize=pseudonymize),
            "feedback": io.load_feedback(sample.feedback, pseudonymize=pseudonymize),
            "spend": io.load_spend(sample.spend),
            "transactions": io.load_transactions(sample.transactions, pseudonymize=pseudonymize),
        }
        identities = io.load_identities(sample.identities, pseudonymize=pseudonymize)
        ws = Workspace(
            users=_users(sample.users, pseudonymize),
            truth=sample.truth,
            source=f"{project.name} (generated, seed {spec.seed}, {spec.n_users:,} users)",
            seed=spec.seed,
            stage_map=project.stage_map,
            project=project,
            identities=identities,
            resolutions=_resolve(tables, identities, project.stage_map, "raise"),
            **tables,
        )
    else:
        loaded: dict[str, Any] = {}
        # transactions first: the events may be derived from them
        for name, loader_name in sorted(
            _LOADERS.items(), key=lambda item: item[0] != "transactions"
        ):
            table = project.tables.get(name)
            if table is None:
                continue
            if name == "events" and project.events_from_transactions:
                from journeylab.io.derive import events_from_transactions

                derived = events_from_transactions(
                    loaded["transactions"].frame,
                    first=table.options.get("first", "first_purchase"),
                    repeat=table.options.get("repeat", "repeat_purchase"),
                )
                loaded["events"] = io.load_events(
                    derived, stage_map=project.stage_map, dedupe=False
                )
                loaded["events"].source = "orders of the transactions"
                loaded["events"].quality.source = "orders of the transactions"
                continue
            loader = getattr(io, loader_name)
            options = dict(table.options)
            if name in _PSEUDONYMIZED:
                options["pseudonymize"] = pseudonymize
            if name == "events":
                options["stage_map"] = project.stage_map
            source = table.path if table.path is not None else None
            if source is not None and not Path(source).exists():
                raise SchemaError(
                    f"The {name} file named in the project file does not exist.",
                    source=str(source),
                    column=f"data.{name}.path",
                    hint=f"correct data.{name}.path (paths are relative to the project file).",
                )
            factors = options.pop("value_from", None)
            if factors is not None and source is not None:
                from journeylab.io.derive import value_query

                options["query"] = value_query(str(source), list(factors))
                result = loader(None, table.columns or None, **options)
            else:
                result = loader(source, table.columns or None, **options)
            loaded[name] = _named(result, Path(source)) if source is not None else result
        users = None
        if "users" in project.tables:
            users = _read_users(project.tables["users"])
        identities = None
        resolutions: dict[str, IdentityResolution] = {}
        if "identities" in project.tables:
            spec = project.tables["identities"]
            if spec.path is not None and not Path(spec.path).exists():
                raise SchemaError(
                    "The identities file named in the project file does not exist.",
                    source=str(spec.path),
                    column="data.identities.path",
                )
            identities = io.load_identities(
                spec.path,
                spec.columns or None,
                pseudonymize=pseudonymize,
                **{k: v for k, v in spec.options.items() if k in ("table", "query")},
            )
            resolutions = _resolve(loaded, identities, project.stage_map, "raise")
        ws = Workspace(
            users=_users(users, pseudonymize),
            source=project.name,
            stage_map=project.stage_map,
            project=project,
            identities=identities,
            resolutions=resolutions,
            **loaded,
        )
    return ws


def _read_users(table: Any) -> pd.DataFrame:
    """Read the users table of a project (one row per user) with its column mapping."""
    path = Path(table.path)
    if not path.exists():
        raise SchemaError(
            "The users file named in the project file does not exist.",
            source=str(path),
            column="data.users.path",
        )
    users = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=str)
    users = users.rename(columns=table.columns)
    if "user_id" not in users.columns:
        from journeylab.core.errors import did_you_mean

        raise SchemaError(
            f"The users table has no user_id column{did_you_mean('user_id', users.columns)}.",
            source=path.name,
            column="user_id",
            hint="map its id column in data.users.columns, e.g. {customer: user_id}.",
        )
    users["user_id"] = users["user_id"].astype("string")
    return users


def open_report_workspace(
    config: str | Path = "",
    data: str | Path = "",
    *,
    n_users: int = 0,
    seed: int = 0,
    pseudonymize: bool = False,
) -> Workspace:
    """Open the workspace a report notebook runs on, from its ``config`` and ``data`` parameters.

    Parameters
    ----------
    config : str or Path
        The project file; empty means the bundled sample's project file.
    data : str or Path
        Overrides the project file's events path; empty keeps it.
    n_users, seed : int
        For a generated sample only: its size and seed (0 keeps the project file's).
    pseudonymize : bool
        Replace user ids by keyed pseudonyms while loading (also when the project file says so).
    """
    from journeylab.datasets.sample import sample_project

    project = load_project(config) if str(config) else sample_project()
    if project.sample is not None and (n_users or seed):
        project = replace(
            project,
            sample=replace(
                project.sample,
                n_users=n_users or project.sample.n_users,
                seed=seed or project.sample.seed,
            ),
        )
    return open_workspace(data or None, project=project, pseudonymize=pseudonymize)
