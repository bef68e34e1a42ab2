"""The project file: what a business's data is and what its journey means, said once.

A project file (``journeylab.yaml``) is read by the command line, every
notebook and the analyses. It names where each table lives and how its columns
map onto the data contract, which events belong to which stage, what counts as
a conversion and what it is worth, the funnel, the segment dimensions and the
display labels::

    name: Acme Home Services          # shown in report titles
    currency: USD
    timezone: America/New_York        # month boundaries of reports
    data:
      events: {path: exports/events.parquet,
               columns: {visitor: user_id, ts: timestamp, action: event, source: channel}}
      spend: {path: exports/spend.csv}           # optional, each table like events
    journey:
      conversion: purchase                       # one name or a list
      value_per_conversion: 120                  # used when conversions carry no value
      lookback: 30D
    stages:                                      # ordered; each stage lists its events
      awareness: {events: [ad_impression, home]}
      purchase: {events: [add_to_cart, purchase]}
    funnel: [product_view, add_to_cart, purchase]
    steps: [[purchase, review]]                  # more steps to search for findings (events or stages)
    segments: [device, channel]
    labels: {add_to_cart: "Added to cart"}

Rules:

1. Every key is checked; an unknown key is an error that names its place
   (``journey.conversoin``) and the closest valid key.
2. Paths are relative to the project file's folder.
3. ``data.sample`` (``{vertical, seed, n_users}``) stands in for file paths:
   the bundled sample's own project files use it.
4. ``stages`` is an ordered mapping (``awareness: {events: [...], kpis: [...]}``)
   or the list form of :mod:`journeylab.core.stages`.
5. Names are checked against the data by :meth:`Project.check_names`: an
   event, step, conversion or segment that no row carries is an error with the
   closest names present, never an empty result.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import yaml

from journeylab.core.errors import SchemaError, did_you_mean
from journeylab.core.project_sections import (
    _DATA_KEYS,
    _EXPERIMENT_KEYS,
    _JOURNEY_KEYS,
    _NOT_A_COLUMN,
    _PRIVACY_KEYS,
    _SAMPLE_KEYS,
    _TOP_KEYS,
    TABLES,
    SampleSpec,
    SegmentSpec,
    TableSpec,
    _boolean,
    _check_keys,
    _integer,
    _is_pattern,
    _mapping,
    _names,
    _number,
    _segments,
    _stage_map,
    _steps,
    _table_spec,
    _text,
)
from journeylab.core.stages import StageMap

__all__ = [
    "Project",
    "NameProblem",
    "load_project",
    "PROJECT_FILE",
    "display_label",
    "TABLES",
    "TableSpec",
    "SampleSpec",
    "SegmentSpec",
]


#: The default file name of a project file.
PROJECT_FILE = "journeylab.yaml"


_CURRENCY_SIGNS = {
    "USD": "$",
    "EUR": "€",
    "GBP": "£",
    "JPY": "¥",
    "KRW": "₩",
    "CNY": "¥",
    "INR": "₹",
}


@dataclass(frozen=True)
class NameProblem:
    """A name of the project file that no row of the data carries."""

    where: str
    name: str
    suggestion: str
    what: str = "occurs in no row"

    def __str__(self) -> str:
        return f"{self.where}: {self.name!r} {self.what}{self.suggestion}"


@dataclass(frozen=True)
class Project:
    """A validated project file. Build one with :func:`load_project` or :meth:`from_dict`.

    Examples
    --------
    >>> p = Project.from_dict({
    ...     "name": "Shop",
    ...     "data": {"events": {"path": "events.csv"}},
    ...     "journey": {"conversion": "purchase"},
    ...     "stages": {"consideration": {"events": ["view"]}, "purchase": {"events": ["purchase"]}},
    ...     "funnel": ["view", "purchase"],
    ... })
    >>> p.conversion, p.stage_map.names
    (('purchase',), ['consideration', 'purchase'])
    >>> p.label("add_to_cart")
    'Add to cart'
    """

    name: str
    stage_map: StageMap
    conversion: tuple[str, ...]
    tables: dict[str, TableSpec] = field(default_factory=dict)
    sample: SampleSpec | None = None
    currency: str = "USD"
    timezone: str = "UTC"
    value_per_conversion: float | None = None
    lookback: str = "30D"
    session_gap: str = "30min"
    funnel: tuple[str, ...] = ()
    steps: tuple[tuple[str, str], ...] = ()
    segments: tuple[str, ...] = ()
    derived: tuple[SegmentSpec, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)
    pseudonymize: bool = False
    min_users: int = 30
    opt_out: str | None = None
    source: str | None = field(default=None, compare=False)

    # -- construction -------------------------------------------------
    @classmethod
    def from_dict(
        cls,
        spec: Mapping[str, Any],
        *,
        base_dir: str | Path | None = None,
        source: str | None = None,
    ) -> Project:
        """Validate a parsed project file; relative paths resolve against ``base_dir``."""
        where = source or "project file"
        if not isinstance(spec, Mapping):
            raise SchemaError("A project file must hold a mapping of keys.", source=where)
        _check_keys(spec, _TOP_KEYS, "", where)
        base = Path(base_dir) if base_dir is not None else Path.cwd()

        data = _mapping(spec.get("data"), "data", where)
        _check_keys(data, _DATA_KEYS, "data.", where)
        tables = {
            name: _table_spec(name, data[name], base, where)
            for name in TABLES
            if data.get(name) is not None
        }
        sample = None
        if data.get("sample") is not None:
            raw = _mapping(data["sample"], "data.sample", where)
            _check_keys(raw, _SAMPLE_KEYS, "data.sample.", where)
            sample = SampleSpec(
                vertical=_text(raw.get("vertical", "home_services"), "data.sample.vertical", where),
                seed=_integer(raw.get("seed", 2026), "data.sample.seed", where),
                n_users=_integer(raw.get("n_users", 20_000), "data.sample.n_users", where, low=100),
            )
        if (
            tables.get("events") is not None
            and tables["events"].options.get("from")
            and "transactions" not in tables
        ):
            raise SchemaError(
                "data.events is derived from transactions, but the project file names no transactions table.",
                source=where,
                column="data.transactions",
            )
        if "events" not in tables and sample is None:
            raise SchemaError(
                "The project file names no event data.",
                source=where,
                column="data.events",
                hint="add data: {events: {path: exports/events.parquet, columns: {...}}}",
            )

        journey = _mapping(spec.get("journey"), "journey", where)
        _check_keys(journey, _JOURNEY_KEYS, "journey.", where)
        if journey.get("conversion") in (None, "", []):
            raise SchemaError(
                "The project file does not say what counts as a conversion.",
                source=where,
                column="journey.conversion",
                hint="add journey: {conversion: <the event name of a purchase/booking/sign-up>}",
            )
        conversion = _names(journey["conversion"], "journey.conversion", where)
        value = journey.get("value_per_conversion")
        if value is not None:
            value = _number(value, "journey.value_per_conversion", where)

        stage_map = _stage_map(spec.get("stages"), where)
        funnel = _names(spec.get("funnel") or [], "funnel", where)
        if len(funnel) == 1:
            raise SchemaError("A funnel needs at least two steps.", source=where, column="funnel")
        segments, derived = _segments(spec.get("segments") or [], where)
        steps = _steps(spec.get("steps") or [], stage_map, where)
        labels_raw = _mapping(spec.get("labels"), "labels", where)
        labels = {str(k): _text(v, f"labels.{k}", where) for k, v in labels_raw.items()}

        experiments_raw = _mapping(spec.get("experiments"), "experiments", where)
        experiments: dict[str, dict[str, Any]] = {}
        for name, item in experiments_raw.items():
            item = _mapping(item, f"experiments.{name}", where)
            _check_keys(item, _EXPERIMENT_KEYS, f"experiments.{name}.", where)
            experiments[str(name)] = dict(item)

        privacy = _mapping(spec.get("privacy"), "privacy", where)
        _check_keys(privacy, _PRIVACY_KEYS, "privacy.", where)
        currency = _text(spec.get("currency", "USD"), "currency", where).upper()
        if not re.fullmatch(r"[A-Z]{3}", currency):
            raise SchemaError(
                f"currency == {currency!r}: not an ISO 4217 code.",
                source=where,
                column="currency",
                hint="write e.g. USD, EUR, KRW.",
            )
        timezone = _text(spec.get("timezone", "UTC"), "timezone", where)
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise SchemaError(
                f"timezone == {timezone!r}: not an IANA time zone.",
                source=where,
                column="timezone",
                hint="write e.g. America/New_York, Europe/Berlin, Asia/Seoul or UTC.",
            ) from exc
        opt_out = privacy.get("opt_out")
        return cls(
            name=_text(spec.get("name", "journeylab project"), "name", where),
            stage_map=stage_map,
            conversion=conversion,
            tables=tables,
            sample=sample,
            currency=currency,
            timezone=timezone,
            value_per_conversion=value,
            lookback=_text(journey.get("lookback", "30D"), "journey.lookback", where),
            session_gap=_text(journey.get("session_gap", "30min"), "journey.session_gap", where),
            funnel=funnel,
            steps=steps,
            segments=segments,
            derived=derived,
            labels=labels,
            experiments=experiments,
            pseudonymize=_boolean(
                privacy.get("pseudonymize", False), "privacy.pseudonymize", where
            ),
            min_users=_integer(privacy.get("min_users", 30), "privacy.min_users", where, low=1),
            opt_out=None if opt_out is None else _text(opt_out, "privacy.opt_out", where),
            source=where,
        )

    # -- use ----------------------------------------------------------
    @property
    def currency_sign(self) -> str:
        """The sign money is written with (``$``, ``€`` ...), or the code and a space."""
        return _CURRENCY_SIGNS.get(self.currency, self.currency + " ")

    def label(self, name: object) -> str:
        """Display name of an event, channel, stage or segment value."""
        return display_label(name, self.labels)

    @property
    def events_from_transactions(self) -> bool:
        """Whether the events are derived from the transactions (one event per order)."""
        events = self.tables.get("events")
        return bool(events is not None and events.options.get("from") == "transactions")

    def with_events(self, path: str | Path) -> Project:
        """Return the same project reading its data from ``path`` (the ``--data`` override).

        A file replaces the events table. A folder replaces every table it holds
        under its table name (``events.parquet``, ``spend.csv``, ``identities.csv`` …,
        as ``python -m journeylab.datasets --out`` writes them); tables it does not
        hold keep the project file's entries, unless the project is a generated
        sample, whose tables all come from the folder.
        """
        path = Path(path)
        old = self.tables.get("events")
        if not path.is_dir():
            events = TableSpec(
                "events", path, dict(old.columns) if old else {}, dict(old.options) if old else {}
            )
            base = {} if self.sample is not None else dict(self.tables)
            return replace(self, tables={**base, "events": events}, sample=None)
        found: dict[str, TableSpec] = {}
        for name in TABLES:
            for suffix in (".parquet", ".csv", ".csv.gz"):
                candidate = path / f"{name}{suffix}"
                if candidate.exists():
                    keep = self.tables.get(name)
                    found[name] = TableSpec(
                        name,
                        candidate,
                        dict(keep.columns) if keep else {},
                        dict(keep.options) if keep else {},
                    )
                    break
        if "events" not in found:
            raise SchemaError(
                "The data folder holds no events file.",
                source=str(path),
                hint="name the event log events.parquet or events.csv, or give the file itself.",
            )
        base = {} if self.sample is not None else dict(self.tables)
        return replace(self, tables={**base, **found}, sample=None)

    def derive(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Add the derived segment columns (``segments: [{name, column, bins, labels}]``) to a table."""
        new = {d.name: d.apply(frame) for d in self.derived if d.column in frame.columns}
        return frame.assign(**new) if new else frame

    def event_names(self) -> list[str]:
        """Every exact event name the project file uses (stages, KPIs, conversion, funnel)."""
        names: list[str] = []
        for stage in self.stage_map:
            names += [e for e in stage.events if not _is_pattern(e)]
            for kpi in stage.kpis:
                names += [e for e in kpi.events if not _is_pattern(e)]
        names += [*self.conversion, *self.funnel]
        return list(dict.fromkeys(names))

    def check_names(
        self, events: Iterable[str], columns: Iterable[str]
    ) -> tuple[list[NameProblem], list[str]]:
        """Compare the project's names with the data's.

        Parameters
        ----------
        events : iterable of str
            The distinct event names of the data.
        columns : iterable of str
            The columns of the events and users tables (segment candidates).

        Returns
        -------
        problems : list of NameProblem
            Names of the project file that no row carries (errors).
        unstaged : list of str
            Events of the data that no stage names (worth a look, not an error).
        """
        present = sorted({str(e) for e in events})
        cols = sorted({str(c) for c in columns})
        problems: list[NameProblem] = []

        def need(where: str, name: str) -> None:
            if name not in present:
                problems.append(NameProblem(where, name, did_you_mean(name, present)))

        for name in self.conversion:
            need("journey.conversion", name)
        for name in self.funnel:
            need("funnel", name)
        for a, b in self.steps:
            for name in (a, b):
                if name not in self.stage_map.names:
                    need("steps", name)
        for stage in self.stage_map:
            for pattern in stage.events:
                if _is_pattern(pattern):
                    if not any(stage.matches(e) for e in present):
                        problems.append(NameProblem(f"stages.{stage.name}.events", pattern, ""))
                else:
                    need(f"stages.{stage.name}.events", pattern)
            for kpi in stage.kpis:
                for name in kpi.events:
                    if not _is_pattern(name):
                        need(f"stages.{stage.name}.kpis.{kpi.name}", name)
        derived = {d.name: d for d in self.derived}
        for name in self.segments:
            if name in derived:
                column = derived[name].column
                if column not in cols:
                    problems.append(
                        NameProblem(
                            f"segments.{name}.column",
                            column,
                            did_you_mean(column, cols),
                            _NOT_A_COLUMN,
                        )
                    )
                continue
            if name not in cols:
                problems.append(
                    NameProblem("segments", name, did_you_mean(name, cols), _NOT_A_COLUMN)
                )
        if self.opt_out and self.opt_out not in cols:
            problems.append(
                NameProblem(
                    "privacy.opt_out", self.opt_out, did_you_mean(self.opt_out, cols), _NOT_A_COLUMN
                )
            )
        unstaged = [e for e in present if self.stage_map.stage_of(e) is None]
        # each problem once, in the order found
        unique = list({(p.where, p.name): p for p in problems}.values())
        return unique, unstaged

    def require_names(self, events: Iterable[str], columns: Iterable[str]) -> None:
        """Raise :class:`SchemaError` listing every project name no row carries."""
        problems, _ = self.check_names(events, columns)
        if problems:
            lines = "\n  ".join(str(p) for p in problems)
            raise SchemaError(
                f"{len(problems)} name(s) of the project file are not in the data:\n  {lines}",
                source=self.source,
                hint="correct the names in the project file (journeylab check lists the data's events).",
            )


def load_project(path: str | Path) -> Project:
    """Read and validate a project file.

    Raises
    ------
    SchemaError
        When the file is missing, is not YAML, or a key or value is wrong; the
        message names the key and suggests the closest valid one.
    """
    path = Path(path)
    if path.is_dir():
        path = path / PROJECT_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise SchemaError(
            "The project file does not exist.",
            source=str(path),
            hint="write one with `journeylab init --data <your events file or folder>`.",
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError(f"Cannot read the project file: {exc}", source=str(path)) from exc
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SchemaError(f"The project file is not valid YAML: {exc}", source=str(path)) from exc
    return Project.from_dict(spec or {}, base_dir=path.resolve().parent, source=path.name)


def display_label(name: object, labels: Mapping[str, str] | None = None) -> str:
    """Reader-facing name: the project's label, else the name with spaces, capitalised.

    Examples
    --------
    >>> display_label("cart_started")
    'Cart started'
    >>> display_label("paid_search", {"paid_search": "Paid search (Google)"})
    'Paid search (Google)'
    """
    text = "" if name is None else str(name)
    if labels and text in labels:
        return labels[text]
    if not text or text.startswith("("):
        return text
    spaced = text.replace("_", " ").strip()
    return spaced[:1].upper() + spaced[1:]
