"""No shipped notebook shows row-level data: every artefact of every report is scanned for ids.

Each runnable notebook in ``notebooks/`` is run by the report runner on a
small seeded sample; then every file of the published folder
(``executed.ipynb``, both HTML files, ``metrics.json``, ``run.json``) is
split into word tokens and checked against the sample's user and session
ids. A ``display(ws)`` that printed the users table, or a ``frame.head()``
left in a cell, fails here.
"""

from __future__ import annotations

import re

import pytest

from journeylab.datasets.sample import make_sample
from journeylab.reports import runner as reports

SEED, N_USERS, MONTH = 17, 1500, "2026-10"
NOTEBOOKS = reports.list_notebooks()


@pytest.fixture(scope="module")
def sample_ids() -> set[str]:
    sample = make_sample(seed=SEED, n_users=N_USERS)
    ids: set[str] = set()
    for table in sample.tables().values():
        for column in ("user_id", "session_id"):
            if table is not None and column in table:
                ids |= set(table[column].dropna().astype(str))
    assert len(ids) > N_USERS
    return ids


def test_every_runnable_notebook_is_scanned():
    assert {"monthly_report", "explore", "journey_map", "attribution"} <= set(NOTEBOOKS)


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_no_artefact_holds_a_user_or_session_id(name, sample_ids, tmp_path):
    specs = reports.notebook_parameters(name)
    wanted = {"seed": SEED, "n_users": N_USERS, "n_boot": 20}
    run = reports.run_report(
        name, month=MONTH, params={k: v for k, v in wanted.items() if k in specs}, out_dir=tmp_path
    )
    artefacts = sorted(run.folder.iterdir())
    assert {p.name for p in artefacts} >= {
        "executed.ipynb",
        "report.html",
        "metrics.json",
        "run.json",
    }
    for path in artefacts:
        tokens = set(re.findall(r"[A-Za-z0-9_\-]+", path.read_text(errors="replace")))
        leaked = sorted(tokens & sample_ids)
        assert not leaked, f"{name}/{path.name} shows ids such as {leaked[:5]}"
