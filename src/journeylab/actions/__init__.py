"""From insight to action: audiences, the findings ledger and alerts.

Audiences of the people a campaign moves; the findings ledger that follows a
pain point from month to month and through its fix; alerts on a report's
findings.

The ledger and alert names are imported on first use, so the ``journeylab``
command (which imports :mod:`journeylab.actions.audiences`) stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from journeylab.actions.audiences import build

__all__ = [
    "build",
    "append_findings",
    "read_ledger",
    "finding_history",
    "fix_timeline",
    "experiments_addressing",
    "parse_alert",
    "check_findings",
]

_LAZY = {
    "append_findings": "journeylab.actions.ledger_file",
    "read_ledger": "journeylab.actions.ledger_file",
    "finding_history": "journeylab.actions.ledger_history",
    "fix_timeline": "journeylab.actions.ledger_fixes",
    "experiments_addressing": "journeylab.actions.ledger_fixes",
    "parse_alert": "journeylab.actions.alert_rules",
    "check_findings": "journeylab.actions.alerts",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'journeylab.actions' has no attribute {name!r}")
