"""The seeded sample generator: realistic event logs with known, planted effects.

``python -m journeylab.datasets --out DIR`` writes the sample's tables as Parquet.
"""

from journeylab.datasets.sample import (
    CHANNELS,
    DEFAULT_STAGE_MAP,
    DEVICES,
    PAID_CHANNELS,
    PERSONAS,
    REGIONS,
    SAMPLE_STAGE_MAP,
    make_sample,
    sample_project,
    sample_stage_map,
    write_sample,
)
from journeylab.datasets.sample_bundle import TABLES, Sample

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
    "SAMPLE_STAGE_MAP",
    "DEFAULT_STAGE_MAP",
    "sample_stage_map",
]
