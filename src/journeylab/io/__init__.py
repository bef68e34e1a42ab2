"""Loading: raw tables in, validated canonical tables with a quality report out.

Every loader accepts CSV, CSV.gz, Parquet, a DuckDB table or query, or a pandas
DataFrame, maps source columns onto the data contract with ``columns=``, and
counts every row it drops, de-duplicates or repairs.

Examples
--------
>>> from journeylab.io import load_events
>>> import pandas as pd
>>> table = load_events(pd.DataFrame({"user_id": ["u1"], "timestamp": ["2026-10-01 09:00"],
...                                   "event": ["visit"]}))
>>> len(table.frame)
1
"""

from journeylab.io.identities import load_identities, resolve_identities
from journeylab.io.loaders import (
    NEAR_DUPLICATE_KEY,
    SCORE_SCALES,
    LoadedTable,
    QualityReport,
    QualityStep,
    event_rank,
    events_relation,
    load_assignments,
    load_events,
    load_feedback,
    load_spend,
    load_transactions,
    sort_events,
)
from journeylab.io.privacy import escape_formulas, pseudonymize, safe_csv

__all__ = [
    "LoadedTable",
    "QualityReport",
    "QualityStep",
    "load_events",
    "load_assignments",
    "load_feedback",
    "load_spend",
    "load_transactions",
    "load_identities",
    "resolve_identities",
    "sort_events",
    "event_rank",
    "events_relation",
    "NEAR_DUPLICATE_KEY",
    "SCORE_SCALES",
    "pseudonymize",
    "safe_csv",
    "escape_formulas",
]
