"""Stage maps: which events belong to which journey stage, and the KPIs there.

A stage map is an ordered list of stages (typically awareness →
consideration → purchase → retention → advocacy). Each stage lists the events
that belong to it, as exact names or shell-style patterns (``cart_*``), and
the KPIs measured there. Offline touchpoints (phone calls, store visits) are
events like any other.

There is no default map: every company names its own events, so the map
comes from the project file (:attr:`journeylab.core.project.Project.stage_map`)
or is built with :meth:`StageMap.from_dict` / :meth:`StageMap.from_yaml`.
The bundled sample's map is :func:`journeylab.datasets.sample_stage_map`.

Maps are written as YAML or a dict::

    stages:
      - name: consideration
        events: [visit, view, store_call]
        kpis:
          - {name: sessions, events: [visit], measure: count}
          - {name: calls, events: [store_call], measure: count}

``measure`` is one of ``count`` (events), ``users`` (distinct users) or
``value`` (sum of the ``value`` column). Validation rejects an event matched
by two stages, a stage with no events, duplicate stage names and KPIs that
count events no stage contains.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml

from journeylab.core.errors import ParameterError, SchemaError, did_you_mean

__all__ = ["KPI", "EventNames", "Stage", "StageMap"]

Measure = Literal["count", "users", "value"]
_MEASURES = ("count", "users", "value")


@dataclass(frozen=True)
class KPI:
    """A key figure measured at a stage.

    Parameters
    ----------
    name : str
        Identifier, e.g. ``"purchases"``.
    events : tuple of str
        Event names or patterns the KPI counts.
    measure : {"count", "users", "value"}
        Count events, count distinct users, or sum the ``value`` column.
    label : str
        Reader-facing name; defaults to ``name`` with spaces.
    """

    name: str
    events: tuple[str, ...]
    measure: Measure = "count"
    label: str = ""

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.name.replace("_", " ").capitalize())


@dataclass(frozen=True)
class Stage:
    """One stage of the journey: its events (names or patterns) and KPIs."""

    name: str
    events: tuple[str, ...]
    kpis: tuple[KPI, ...] = ()
    description: str = ""

    def matches(self, event: str) -> bool:
        """Return True if ``event`` is one of this stage's names or patterns (see :class:`EventNames`)."""
        return self._matcher().matches(event)

    def __getstate__(self) -> dict[str, Any]:
        # the matcher is made again where it is used, not carried in pickles and copies
        return {k: v for k, v in self.__dict__.items() if k != "_match"}

    def _matcher(self) -> EventNames:
        """Return this stage's :class:`EventNames`, made once per stage."""
        cached = self.__dict__.get("_match")
        if cached is None:
            cached = EventNames(self.events)
            object.__setattr__(self, "_match", cached)
        return cached


class EventNames:
    """Event names and shell patterns (``cart_*``), matched as ``fnmatch.fnmatchcase`` does.

    Exact names are looked up in a dictionary and patterns compiled once, so a
    list of tens of thousands of names matches an event in one lookup. An event
    that is not text is read as its text (a log's event code ``101`` is the
    stage map's ``"101"``, as YAML numbers are read); a missing event matches
    nothing.

    Examples
    --------
    >>> names = EventNames(["view", "cart_*", "cart_add"])
    >>> names.position("cart_add"), names.position("view"), names.matches("refund")
    (1, 0, False)
    """

    def __init__(self, entries: Iterable[str]) -> None:
        self._first: dict[str, int] = {}
        self._patterns: list[tuple[int, Any]] = []
        for i, entry in enumerate(entries):
            if _is_pattern(entry):
                self._patterns.append((i, re.compile(fnmatch.translate(entry)).match))
            else:
                self._first.setdefault(entry, i)

    def position(self, event: Any) -> int | None:
        """Return the position of the first entry that matches ``event`` (None when none does)."""
        if not isinstance(event, str):
            if event is None or (pd.api.types.is_scalar(event) and pd.isna(event)):
                return None
            event = str(event)
        found = self._first.get(event)
        for i, match in self._patterns:
            if found is not None and i > found:
                break
            if match(event):
                return i
        return found

    def matches(self, event: Any) -> bool:
        """Return True if any entry matches ``event``."""
        return self.position(event) is not None


@dataclass(frozen=True)
class StageMap:
    """An ordered, validated list of :class:`Stage`.

    Build one with :meth:`from_dict` or :meth:`from_yaml` (a project file's
    ``stages`` become :attr:`journeylab.core.project.Project.stage_map`).

    Examples
    --------
    >>> sm = StageMap.from_dict({"stages": [
    ...     {"name": "consideration", "events": ["visit", "view"]},
    ...     {"name": "purchase", "events": ["cart_*", "purchase"]}]})
    >>> sm.stage_of("cart_add")
    'purchase'
    """

    stages: tuple[Stage, ...]
    source: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        self._validate()

    # -- construction -------------------------------------------------
    @classmethod
    def from_dict(cls, spec: Mapping[str, Any] | list, source: str | None = None) -> StageMap:
        """Build a stage map from ``{"stages": [...]}`` or a bare list of stages."""
        items = spec.get("stages") if isinstance(spec, Mapping) else spec
        where = source or "stage map"
        if not isinstance(items, list) or not items:
            raise SchemaError(
                "A stage map needs a non-empty list under 'stages'.",
                source=where,
                hint="write stages: [{name: awareness, events: [ad_view]}, ...]",
            )
        stages = []
        for i, item in enumerate(items):
            if not isinstance(item, Mapping) or "name" not in item:
                raise SchemaError(
                    f"Stage #{i + 1} must be a mapping with a 'name' and 'events'.",
                    source=where,
                    rows=[i],
                )
            unknown = set(item) - {"name", "events", "kpis", "description"}
            if unknown:
                key = sorted(unknown)[0]
                raise SchemaError(
                    f"Stage {item['name']!r} has an unknown key {key!r}"
                    f"{did_you_mean(key, ['name', 'events', 'kpis', 'description'])}.",
                    source=where,
                    rows=[i],
                )
            events = item.get("events") or []
            if isinstance(events, str):
                events = [events]
            kpis = tuple(_kpi_from_spec(k, item["name"], where) for k in item.get("kpis") or [])
            stages.append(
                Stage(
                    name=str(item["name"]),
                    events=tuple(str(e) for e in events),
                    kpis=kpis,
                    description=str(item.get("description", "")),
                )
            )
        return cls(tuple(stages), source=source)

    @classmethod
    def from_yaml(cls, path: str | Path) -> StageMap:
        """Read a stage map from a YAML file."""
        path = Path(path)
        try:
            spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise SchemaError(f"The stage map is not valid YAML: {exc}", source=str(path)) from exc
        return cls.from_dict(spec, source=str(path))

    @classmethod
    def coerce(cls, value: StageMap | Mapping | list | str | Path | None) -> StageMap:
        """Accept a StageMap, a dict/list spec or a YAML path.

        Raises
        ------
        ParameterError
            For None: there is no default stage map, every analysis that needs
            stages must be given the company's own.

        Examples
        --------
        >>> StageMap.coerce({"stages": [{"name": "purchase", "events": ["purchase"]}]}).names
        ['purchase']
        """
        if value is None:
            raise ParameterError(
                "No stage map given, and there is no default one: a stage map says which of "
                "your events belong to which stage. Pass the project's (stage_map="
                "load_project('journeylab.yaml').stage_map, or project=...) or build one with "
                "StageMap.from_dict({'stages': [{'name': ..., 'events': [...]}, ...]}) or "
                "StageMap.from_yaml(path); the bundled sample's is "
                "journeylab.datasets.sample_stage_map()."
            )
        if isinstance(value, StageMap):
            return value
        if isinstance(value, (str, Path)):
            return cls.from_yaml(value)
        return cls.from_dict(value)

    # -- validation ---------------------------------------------------
    def _validate(self) -> None:
        where = self.source or "stage map"
        seen: dict[str, int] = {}
        for i, stage in enumerate(self.stages):
            if stage.name in seen:
                raise SchemaError(
                    f"Stage {stage.name!r} is defined twice.",
                    source=where,
                    rows=[seen[stage.name], i],
                )
            seen[stage.name] = i
            if not stage.events:
                raise SchemaError(
                    f"Stage {stage.name!r} has no events.",
                    source=where,
                    rows=[i],
                    hint="list the event names (or patterns such as 'cart_*') that belong to it, or remove the stage.",
                )
        # An exact event name matched by two stages is ambiguous.
        for stage in self.stages:
            for pattern in stage.events:
                if _is_pattern(pattern):
                    continue
                others = [
                    s.name for s in self.stages if s.name != stage.name and s.matches(pattern)
                ]
                if others:
                    raise SchemaError(
                        f"Event {pattern!r} is in two stages: {stage.name!r} and {others[0]!r}.",
                        source=where,
                        hint="an event must belong to exactly one stage; keep it in one of them "
                        "(or make the patterns disjoint).",
                    )
        for stage in self.stages:
            for kpi in stage.kpis:
                for event in kpi.events:
                    if _is_pattern(event):
                        continue
                    if self.stage_of(event) is None:
                        raise SchemaError(
                            f"KPI {kpi.name!r} of stage {stage.name!r} counts event {event!r}, which no stage contains"
                            f"{did_you_mean(event, self.event_names())}.",
                            source=where,
                        )

    # -- queries ------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Stage names in journey order."""
        return [s.name for s in self.stages]

    def event_names(self) -> list[str]:
        """All exact event names and patterns listed, in stage order."""
        return [e for s in self.stages for e in s.events]

    def __getitem__(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise ParameterError(
            f"Unknown stage {name!r}{did_you_mean(name, self.names)}; stages are {self.names}."
        )

    def __iter__(self):
        return iter(self.stages)

    def __len__(self) -> int:
        return len(self.stages)

    def index(self, name: str) -> int:
        """Position of stage ``name`` in journey order (raises for an unknown stage)."""
        return self.names.index(self[name].name)

    def stage_of(self, event: str) -> str | None:
        """Return the stage an event belongs to, or None if no stage lists it."""
        for stage in self.stages:
            if stage.matches(event):
                return stage.name
        return None

    def earliest_index(self, events: Iterable[str]) -> int | None:
        """Position of the earliest stage any of ``events`` belongs to (None when none is staged).

        Examples
        --------
        >>> sm = StageMap.from_dict({"stages": [{"name": "visit", "events": ["view"]},
        ...                                     {"name": "buy", "events": ["order"]}]})
        >>> sm.earliest_index(["order", "refund"]), sm.earliest_index(["refund"])
        (1, None)
        """
        staged = (self.stage_of(e) for e in events)
        return min((self.index(st) for st in staged if st), default=None)

    def event_to_stage(self, events: Iterable[str]) -> dict[str, str | None]:
        """Map each distinct event name to its stage (None when unmapped)."""
        return {
            e: self.stage_of(e) for e in pd.unique(pd.Series(list(events), dtype="object").dropna())
        }

    def assign(self, events: pd.DataFrame | pd.Series, column: str = "event") -> pd.Series:
        """Return the stage of every row as an ordered categorical (NaN when unmapped).

        The lookup runs once per distinct event name, so it is cheap on large logs.
        """
        names = events[column] if isinstance(events, pd.DataFrame) else events
        # One hash pass numbers the names; each distinct name is looked up once.
        codes, distinct = pd.factorize(names)
        stages = self.names
        position = {name: i for i, name in enumerate(stages)}
        of_name = [self.stage_of(e) for e in distinct]
        lookup = np.array(
            [-1 if st is None else position[st] for st in of_name] + [-1], dtype=np.int64
        )
        stage_codes = lookup[codes]  # code -1 (a missing name) reads the last entry: no stage
        return pd.Series(
            pd.Categorical.from_codes(stage_codes, categories=stages, ordered=True),
            index=names.index,
            name="stage",
        )

    def kpis(self) -> pd.DataFrame:
        """One row per KPI: stage, kpi, label, measure, events."""
        rows = [
            {
                "stage": s.name,
                "kpi": k.name,
                "label": k.label,
                "measure": k.measure,
                "events": list(k.events),
            }
            for s in self.stages
            for k in s.kpis
        ]
        return pd.DataFrame(rows, columns=["stage", "kpi", "label", "measure", "events"])

    def to_dict(self) -> dict[str, Any]:
        """Return the map as a plain dict (the YAML form)."""
        return {
            "stages": [
                {
                    "name": s.name,
                    "events": list(s.events),
                    "description": s.description,
                    "kpis": [
                        {
                            "name": k.name,
                            "events": list(k.events),
                            "measure": k.measure,
                            "label": k.label,
                        }
                        for k in s.kpis
                    ],
                }
                for s in self.stages
            ]
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per stage with its events and KPI names."""
        return pd.DataFrame(
            {
                "stage": [s.name for s in self.stages],
                "events": [", ".join(s.events) for s in self.stages],
                "kpis": [", ".join(k.label for k in s.kpis) for s in self.stages],
                "description": [s.description for s in self.stages],
            }
        )

    def _repr_html_(self) -> str:
        return "<h4>Stage map</h4>" + self.to_frame().to_html(index=False, border=0)


def _is_pattern(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def _kpi_from_spec(spec: Any, stage: str, where: str) -> KPI:
    if not isinstance(spec, Mapping) or "name" not in spec:
        raise SchemaError(
            f"A KPI of stage {stage!r} must be a mapping with 'name' and 'events'.", source=where
        )
    measure = spec.get("measure", "count")
    if measure not in _MEASURES:
        raise SchemaError(
            f"KPI {spec['name']!r} of stage {stage!r} has measure {measure!r}{did_you_mean(measure, _MEASURES)}; "
            f"use one of {list(_MEASURES)}.",
            source=where,
        )
    events = spec.get("events") or []
    if isinstance(events, str):
        events = [events]
    if not events:
        raise SchemaError(f"KPI {spec['name']!r} of stage {stage!r} lists no events.", source=where)
    return KPI(
        name=str(spec["name"]),
        events=tuple(str(e) for e in events),
        measure=measure,
        label=str(spec.get("label", "")),
    )
