"""Alerts: a rule over the report's findings, and the files a scheduler mails.

``journeylab report monthly_report --month previous --alert 'value_at_stake > 10000 or kind == change_vs_previous'``
checks each finding of the published report against the rule and writes
``alerts.json`` and ``alerts.txt`` beside it.

The rule is a small expression language, evaluated safely: it is parsed with
Python's :mod:`ast` and only the forms below are compiled (into plain Python
closures; nothing is ever passed to ``eval``):

1. **Conditions** joined with ``and``, ``or``, ``not`` and parentheses.
2. **Comparisons** ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``in``,
   ``not in`` (chains such as ``1000 < value_at_stake < 5000`` too).
3. **Values**: numbers (``-0.05``, ``1e4``), quoted strings, ``True`` /
   ``False`` / ``None``, and lists or tuples of these (the right of ``in``).
4. **Names**: a field of the finding (:data:`FIELD_TYPES`: the fields of
   :data:`~journeylab.maps.findings.FINDING_FIELDS`). On the right of
   ``==``, ``!=``, ``in`` or ``not in`` against a text field, a name that is
   not a field is a bare word, compared as text: ``kind == change_vs_previous``
   reads as ``kind == 'change_vs_previous'``. A field name always means the
   field; quote a word that is also a field name. ``true`` / ``false`` are
   bare words for ``counted``.
5. **Types.** ``<``, ``<=``, ``>``, ``>=`` compare numbers; ``==`` and
   ``!=`` compare like with like; ``'word' in text`` is a substring test. A
   bool field alone (``counted``) is a condition; any other field alone is not.
6. **Missing values** (``null`` in ``metrics.json``, e.g. ``overlaps`` of a
   lead finding): ``<``, ``<=``, ``>``, ``>=`` are false; ``==``, ``!=``,
   ``in`` compare it as ``None``.
7. **Refused**, with the position: calls, attributes, subscripts,
   arithmetic, lambdas, comprehensions, f-strings, walrus, dunder names,
   names that are no field (with the closest field), a ``kind`` that is not
   one of :data:`~journeylab.maps.findings.KINDS` (with the closest kind),
   comparisons that name no field, and expressions longer than
   :data:`MAX_LENGTH` characters or nested deeper than :data:`MAX_DEPTH`.

``alerts.json`` holds the rule, the month, the report's path, how many
findings were checked and the matching findings (full records); its
``count`` is what a script tests. ``alerts.txt`` is a short plain-text alert
for cron mail: a header with the month, the count and the report path, then
one line per matching finding with its text.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from journeylab.actions.alert_rules import (
    FIELD_TYPES,
    MAX_DEPTH,
    MAX_LENGTH,
    AlertExpressionError,
    AlertRule,
    parse_alert,
)
from journeylab.core.errors import DataError
from journeylab.core.results import Result, fmt_num
from journeylab.maps.findings import FINDING_FIELDS

__all__ = [
    "Alerts",
    "check_findings",
    "ALERTS_JSON",
    "ALERTS_TXT",
    "FIELD_TYPES",
    "MAX_LENGTH",
    "MAX_DEPTH",
    "AlertExpressionError",
    "AlertRule",
    "parse_alert",
]


ALERTS_JSON = "alerts.json"
ALERTS_TXT = "alerts.txt"


# -- the alert files ----------------------------------------------------------
@dataclass
class Alerts(Result):
    """The findings of one report that match an alert rule.

    Attributes
    ----------
    rule : AlertRule
    matched : list of dict
        The matching finding records, in rank order.
    checked : int
        How many findings the report had.
    month : str or None
    report : str or None
        Path of the report the findings come from.
    notebook, project : str or None
    """

    rule: AlertRule
    matched: list[dict[str, Any]]
    checked: int
    month: str | None = None
    report: str | None = None
    notebook: str | None = None
    project: str | None = None
    title = "Alerts"

    @property
    def count(self) -> int:
        """How many findings match."""
        return len(self.matched)

    def to_frame(self) -> pd.DataFrame:
        """Return the matching findings, one row each."""
        return pd.DataFrame(
            self.matched, columns=list(FINDING_FIELDS) if not self.matched else None
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the content of ``alerts.json``."""
        return {
            "expression": self.rule.expression,
            "month": self.month,
            "project": self.project,
            "notebook": self.notebook,
            "report": self.report,
            "evaluated_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "findings_checked": self.checked,
            "count": self.count,
            "findings": self.matched,
        }

    def text(self) -> str:
        """Return the plain-text alert (``alerts.txt``): a header, then one line per finding."""
        what = " ".join(x for x in (self.project, self.notebook, self.month) if x) or "report"
        if self.count:
            head = (
                f"journeylab alert: {self.count} of {self.checked} finding(s) match in {what} "
                f"[{self.rule.expression}]"
            )
        else:
            head = f"journeylab alert: no finding matches in {what} [{self.rule.expression}] ({self.checked} checked)"
        lines = [head]
        if self.report:
            lines.append(f"report: {self.report}")
        for i, f in enumerate(self.matched, start=1):
            body = f.get("text") or _fallback_text(f)
            lines.append(
                f"{i}. {body} (id {f.get('id')}; value at stake {fmt_num(f.get('value_at_stake'))})"
            )
        return "\n".join(lines) + "\n"

    def summary(self) -> str:
        """Return the alert text."""
        return self.text().rstrip("\n")

    def write(self, folder: str | Path) -> tuple[Path, Path]:
        """Write ``alerts.json`` and ``alerts.txt`` into ``folder`` (each to a temporary name, then renamed)."""
        folder = Path(folder)
        payload = json.dumps(self.to_dict(), indent=2, ensure_ascii=False, default=_json_default)
        return _write_atomic(folder / ALERTS_JSON, payload + "\n"), _write_atomic(
            folder / ALERTS_TXT, self.text()
        )


def check_findings(
    rule: AlertRule | str,
    metrics: Mapping[str, Any],
    *,
    report: str | Path | None = None,
    notebook: str | None = None,
) -> Alerts:
    """Check the findings of a report's ``metrics.json`` against an alert rule.

    Parameters
    ----------
    rule : AlertRule or str
        The rule (a string is parsed with :func:`parse_alert`).
    metrics : mapping
        The report's metrics; its ``findings`` list is checked.
    report : str or Path, optional
        The report's path, for the alert's header.
    notebook : str, optional
        The report's name, for the header.

    Returns
    -------
    Alerts

    Raises
    ------
    DataError
        When ``metrics`` has no ``findings`` list (the report computes no
        findings), or a finding lacks a field the rule reads.

    Examples
    --------
    >>> metrics = {"month": "2026-10", "findings": [
    ...     {"id": "a", "kind": "timing", "value_at_stake": 12000.0, "text": "A gap."},
    ...     {"id": "b", "kind": "segment_gap", "value_at_stake": 80.0, "text": "B gap."}]}
    >>> check_findings("value_at_stake > 10000", metrics).count
    1
    """
    rule = parse_alert(rule) if isinstance(rule, str) else rule
    findings = metrics.get("findings") if isinstance(metrics, Mapping) else None
    if not isinstance(findings, list):
        raise DataError(
            "The report's metrics.json has no 'findings' list, so no alert can be checked"
            + (f" (it has {sorted(metrics)})" if isinstance(metrics, Mapping) else "")
            + ".",
            source=None if report is None else str(report),
            column="findings",
            hint="run a report that computes findings (the monthly report), or drop --alert.",
        )
    bad = [i + 1 for i, f in enumerate(findings) if not isinstance(f, Mapping)]
    if bad:
        raise DataError(
            "Findings of metrics.json that are not objects.", column="findings", rows=bad
        )
    return Alerts(
        rule=rule,
        matched=rule.filter(findings),
        checked=len(findings),
        month=metrics.get("month"),
        report=None if report is None else str(report),
        notebook=notebook,
        project=metrics.get("project"),
    )


def _fallback_text(finding: Mapping[str, Any]) -> str:
    parts: Sequence[Any] = (
        finding.get("kind"),
        finding.get("step"),
        finding.get("dimension"),
        finding.get("segment"),
    )
    return " / ".join(str(p) for p in parts if p not in (None, ""))


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _write_atomic(path: Path, text: str) -> Path:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
