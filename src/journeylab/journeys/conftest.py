"""Doctest set-up for the Spark examples: a small local session, or a clean skip.

The examples of :mod:`journeylab.journeys.spark` run for real when PySpark and
Java are installed; they find ``spark`` (a local session in UTC), ``events``
and ``stages`` (the tiny log and stage map of the module's first example) in
their namespace. Without PySpark or Java they are skipped with the reason.
Other doctests of this package never start Spark.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess

import pytest

SPARK_MODULE = "journeylab.journeys.spark"


def _is_spark_doctest(item: pytest.Item) -> bool:
    name = getattr(item, "name", "")
    return type(item).__name__ == "DoctestItem" and (
        name == SPARK_MODULE or name.startswith(SPARK_MODULE + ".")
    )


def _missing() -> str | None:
    """Say what Spark lacks here, or None."""
    try:
        importlib.import_module("pyspark")
    except ImportError:
        return "pyspark is not installed (pip install pyspark)"
    java = shutil.which("java")
    try:
        ok = java is not None and (
            subprocess.run([java, "-version"], capture_output=True, timeout=30).returncode == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return None if ok else "Spark needs Java 17+ on PATH (java -version failed)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the Spark examples, with the reason, where PySpark or Java is missing."""
    spark_items = [item for item in items if _is_spark_doctest(item)]
    if not spark_items:
        return
    reason = _missing()
    if reason:
        for item in spark_items:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def _spark_session():
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[1]")
        .appName("journeylab-doctests")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(autouse=True)
def _spark_namespace(request: pytest.FixtureRequest, doctest_namespace: dict) -> None:
    if not _is_spark_doctest(request.node):
        return
    from journeylab.core.stages import StageMap

    spark = request.getfixturevalue("_spark_session")
    doctest_namespace["spark"] = spark
    doctest_namespace["events"] = spark.createDataFrame(
        [
            ("a", "2026-05-01 09:00:00", "visit", "email", None),
            ("a", "2026-05-03 10:00:00", "purchase", None, 90.0),
            ("b", "2026-05-02 11:00:00", "visit", "email", None),
        ],
        "user_id string, timestamp string, event string, channel string, value double",
    )
    doctest_namespace["stages"] = StageMap.from_dict(
        {
            "stages": [
                {"name": "consideration", "events": ["visit"]},
                {"name": "purchase", "events": ["purchase"]},
            ]
        }
    )
