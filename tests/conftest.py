"""Shared fixtures: paths to the real public datasets and a small seeded sample."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import matplotlib
import pandas as pd
import pytest

matplotlib.use("Agg")

REPO = Path(__file__).resolve().parents[1]
#: The real public datasets live beside the repository, in ../shared/data
#: (override with JOURNEYLAB_SHARED_DATA). They are never copied into the repo.
SHARED_DATA = Path(os.environ.get("JOURNEYLAB_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_file(*parts: str) -> Path:
    """Path to a file of ../shared/data, skipping the test when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"real dataset {path} not found: these tests need ../shared/data beside the "
            "repository (or JOURNEYLAB_SHARED_DATA pointing at it)"
        )
    return path


@functools.lru_cache(maxsize=1)
def load_online_retail(path: Path) -> pd.DataFrame:
    """All 541,909 UCI Online Retail rows: user_id (None when missing), timestamp, value = Quantity x UnitPrice."""
    import duckdb

    return duckdb.sql(
        "SELECT InvoiceNo, Quantity, UnitPrice, Country, "
        "CAST(CAST(CustomerID AS BIGINT) AS VARCHAR) AS user_id, InvoiceDate AS timestamp, "
        "Quantity * UnitPrice AS value "
        f"FROM read_csv('{path}', types={{'InvoiceNo': 'VARCHAR', 'StockCode': 'VARCHAR'}})"
    ).df()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The ../shared/data folder; skips when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA}: ../shared/data is needed")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sample():
    """The default-size seeded sample (20,000 users, six months)."""
    from journeylab.datasets.sample import make_sample

    return make_sample(seed=2026, n_users=20_000)


@pytest.fixture(scope="session")
def small_sample():
    """A small seeded sample (3,000 users) for quick structural tests."""
    from journeylab.datasets.sample import make_sample

    return make_sample(seed=7, n_users=3_000)
