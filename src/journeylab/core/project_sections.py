"""The sections of a project file, each checked and read: tables, sample, segments, steps, stages.

Every key is checked against the keys valid in its place; an unknown key is an
error that names the place and the closest valid key (rule 1 of
:mod:`journeylab.core.project`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from journeylab.core.errors import SchemaError, did_you_mean
from journeylab.core.stages import StageMap

__all__ = [
    "SegmentSpec",
    "TableSpec",
    "SampleSpec",
    "TABLES",
]


#: Tables a project may name, in the order they are loaded.
TABLES = ("events", "users", "identities", "assignments", "feedback", "spend", "transactions")

_TOP_KEYS = (
    "name",
    "currency",
    "timezone",
    "data",
    "journey",
    "stages",
    "funnel",
    "steps",
    "segments",
    "labels",
    "experiments",
    "privacy",
)
_DATA_KEYS = (*TABLES, "sample")
_TABLE_KEYS = (
    "path",
    "from",
    "first",
    "repeat",
    "value_from",
    "columns",
    "table",
    "query",
    "tz",
    "timestamp_format",
    "nonexistent",
    "ambiguous",
    "dedupe",
    "dedupe_window",
    "dtypes",
    "csv_options",
)
_SAMPLE_KEYS = ("vertical", "seed", "n_users")
_JOURNEY_KEYS = ("conversion", "value_per_conversion", "lookback", "session_gap")
_PRIVACY_KEYS = ("pseudonymize", "min_users", "opt_out")
_EXPERIMENT_KEYS = ("addresses", "metric", "description")
_NOT_A_COLUMN = "is not a column of the events or users table"


@dataclass(frozen=True)
class TableSpec:
    """Where one table lives and how its columns map onto the data contract.

    Attributes
    ----------
    name : str
        The table (``events``, ``spend`` ...).
    path : Path or None
        The file or folder, resolved against the project file's folder.
    columns : dict
        Source column name → canonical name.
    options : dict
        Further loader options (``tz``, ``timestamp_format``, ``table``, ``query`` ...).
    """

    name: str
    path: Path | None
    columns: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SampleSpec:
    """The generated sample standing in for the data files."""

    vertical: str = "home_services"
    seed: int = 2026
    n_users: int = 20_000


@dataclass(frozen=True)
class SegmentSpec:
    """A segment dimension cut from a numeric column: ``{name, column, bins, labels}``.

    ``bins`` are the cut points (``[60]`` splits at 60: ``≤ 60`` and ``> 60``);
    ``labels`` name the resulting bands, one more than the cut points.
    """

    name: str
    column: str
    bins: tuple[float, ...]
    labels: tuple[str, ...]

    def apply(self, frame: pd.DataFrame) -> pd.Series:
        """Return the band of each row (missing where the column is missing).

        The bands are a categorical whose categories sort as their labels do (as
        the other text columns of loaded events).
        """
        values = pd.to_numeric(frame[self.column], errors="coerce")
        edges = [-np.inf, *self.bins, np.inf]
        bands = pd.cut(values, edges, labels=list(self.labels), right=True)
        return bands.astype(pd.CategoricalDtype(sorted(self.labels)))


# -- validation helpers -------------------------------------------------------
def _check_keys(spec: Mapping[str, Any], allowed: tuple[str, ...], prefix: str, where: str) -> None:
    for key in spec:
        if str(key) not in allowed:
            raise SchemaError(
                f"Unknown key {prefix}{key}{did_you_mean(str(key), allowed)}.",
                source=where,
                column=f"{prefix}{key}",
                hint=f"valid keys here: {', '.join(allowed)}.",
            )


def _mapping(value: Any, key: str, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SchemaError(
            f"{key} must be a mapping of keys, not {type(value).__name__}.",
            source=where,
            column=key,
        )
    return value


def _text(value: Any, key: str, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or str(value) == "":
        raise SchemaError(
            f"{key} == {value!r}: must be a non-empty text.", source=where, column=key
        )
    return str(value)


def _names(value: Any, key: str, where: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, (str, int)) and str(v) for v in items):
        raise SchemaError(f"{key} must be a name or a list of names.", source=where, column=key)
    names = tuple(str(v) for v in items)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise SchemaError(f"{key} names {repeated[0]!r} twice.", source=where, column=key)
    return names


def _steps(raw: Any, stage_map: StageMap, where: str) -> tuple[tuple[str, str], ...]:
    """Extra steps searched for findings: pairs of event or stage names."""
    if not isinstance(raw, list):
        raise SchemaError(
            "steps must be a list of [from, to] pairs of event or stage names.",
            source=where,
            column="steps",
        )
    out = []
    for i, item in enumerate(raw):
        if not (
            isinstance(item, list)
            and len(item) == 2
            and all(isinstance(v, str) and v for v in item)
        ):
            raise SchemaError(
                f"steps[{i}] == {item!r}: write a pair [from, to], e.g. [add_to_cart, purchase].",
                source=where,
                column="steps",
            )
        out.append((item[0], item[1]))
    return tuple(out)


def _segments(raw: Any, where: str) -> tuple[tuple[str, ...], tuple[SegmentSpec, ...]]:
    if not isinstance(raw, list):
        raise SchemaError(
            "segments must be a list of column names or {name, column, bins, labels}.",
            source=where,
            column="segments",
        )
    names: list[str] = []
    derived: list[SegmentSpec] = []
    for i, item in enumerate(raw):
        if isinstance(item, Mapping):
            key = f"segments[{i}]"
            _check_keys(item, ("name", "column", "bins", "labels"), f"{key}.", where)
            name = _text(item.get("name"), f"{key}.name", where)
            bins = item.get("bins")
            if not isinstance(bins, list) or not bins:
                raise SchemaError(
                    f"{key}.bins must list the cut points, e.g. [60].", source=where, column=key
                )
            cuts = tuple(_number(b, f"{key}.bins", where) for b in bins)
            if list(cuts) != sorted(set(cuts)):
                raise SchemaError(f"{key}.bins must increase.", source=where, column=key)
            labels = _names(item.get("labels") or [], f"{key}.labels", where)
            if len(labels) != len(cuts) + 1:
                raise SchemaError(
                    f"{key}.labels names {len(labels)} bands; {len(cuts)} cut points make {len(cuts) + 1}.",
                    source=where,
                    column=key,
                )
            derived.append(
                SegmentSpec(name, _text(item.get("column"), f"{key}.column", where), cuts, labels)
            )
            names.append(name)
        elif isinstance(item, (str, int)) and str(item):
            names.append(str(item))
        else:
            raise SchemaError(
                f"segments[{i}] == {item!r}: a column name or a mapping.",
                source=where,
                column="segments",
            )
    if len(set(names)) != len(names):
        raise SchemaError("segments names a dimension twice.", source=where, column="segments")
    return tuple(names), tuple(derived)


def _number(value: Any, key: str, where: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or value != value
        or value < 0
    ):
        raise SchemaError(f"{key} == {value!r}: must be a number >= 0.", source=where, column=key)
    if value == float("inf"):
        raise SchemaError(f"{key} == {value!r}: must be finite.", source=where, column=key)
    return float(value)


def _integer(value: Any, key: str, where: str, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SchemaError(
            f"{key} == {value!r}: must be a whole number >= {low}.", source=where, column=key
        )
    return int(value)


def _boolean(value: Any, key: str, where: str) -> bool:
    if not isinstance(value, bool):
        raise SchemaError(f"{key} == {value!r}: must be true or false.", source=where, column=key)
    return value


def _table_spec(name: str, raw: Any, base: Path, where: str) -> TableSpec:
    if isinstance(raw, str):
        raw = {"path": raw}
    raw = _mapping(raw, f"data.{name}", where)
    _check_keys(raw, _TABLE_KEYS, f"data.{name}.", where)
    if raw.get("from") is not None:
        if name != "events" or raw["from"] != "transactions":
            raise SchemaError(
                f"data.{name}.from == {raw['from']!r}: only the events can be derived, and only from transactions.",
                source=where,
                column=f"data.{name}.from",
                hint="write data: {events: {from: transactions}, transactions: {path: ...}}",
            )
        extra = set(raw) - {"from", "first", "repeat"}
        if extra:
            raise SchemaError(
                f"data.events derived from transactions takes only first/repeat names, not {sorted(extra)}.",
                source=where,
                column="data.events",
            )
        options = {k: _text(v, f"data.events.{k}", where) for k, v in raw.items()}
        return TableSpec(name=name, path=None, columns={}, options=options)
    if raw.get("path") is None and raw.get("table") is None and raw.get("query") is None:
        raise SchemaError(
            f"data.{name} says neither where the file is (path) nor which table or query to read.",
            source=where,
            column=f"data.{name}",
        )
    if raw.get("value_from") is not None:
        factors = raw["value_from"]
        if (
            not isinstance(factors, list)
            or not factors
            or not all(isinstance(f, str) for f in factors)
        ):
            raise SchemaError(
                f"data.{name}.value_from must list column names, e.g. [Quantity, UnitPrice].",
                source=where,
                column=f"data.{name}.value_from",
            )
    path = None
    if raw.get("path") is not None:
        path = Path(_text(raw["path"], f"data.{name}.path", where)).expanduser()
        if not path.is_absolute():
            path = base / path
    columns = _mapping(raw.get("columns"), f"data.{name}.columns", where)
    options = {k: v for k, v in raw.items() if k not in ("path", "columns")}
    return TableSpec(
        name=name,
        path=path,
        columns={str(k): _text(v, f"data.{name}.columns.{k}", where) for k, v in columns.items()},
        options=options,
    )


def _stage_map(raw: Any, where: str) -> StageMap:
    if raw is None:
        raise SchemaError(
            "The project file lists no stages.",
            source=where,
            column="stages",
            hint="add stages: {awareness: {events: [...]}, consideration: {...}, purchase: {...}}",
        )
    if isinstance(raw, Mapping) and "stages" not in raw:
        items = []
        for stage, body in raw.items():
            if isinstance(body, list):
                body = {"events": body}
            body = _mapping(body, f"stages.{stage}", where)
            _check_keys(body, ("events", "kpis", "description"), f"stages.{stage}.", where)
            items.append({"name": str(stage), **body})
        raw = {"stages": items}
    return StageMap.from_dict(raw, source=f"{where}: stages")


def _is_pattern(text: str) -> bool:
    return any(ch in text for ch in "*?[")
