"""The seeded sample generator: realistic event logs with known, planted effects.

``python -m journeylab.datasets --out DIR`` writes the sample's tables as Parquet.
"""

from journeylab.datasets.sample import (
    CHANNELS,
    DEVICES,
    PAID_CHANNELS,
    PERSONAS,
    REGIONS,
    TABLES,
    Sample,
    make_sample,
    sample_project,
    write_sample,
)

__all__ = [
    "Sample",
    "make_sample",
    "sample_project",
    "write_sample",
    "CHANNELS",
    "PAID_CHANNELS",
    "DEVICES",
    "PERSONAS",
    "REGIONS",
    "TABLES",
]
