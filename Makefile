# journeylab — set-up, the monthly report and the tests in one command each.
# Needs only Python 3.11+ and make: every target creates .venv and installs into it.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.journeylab-installed
MONTH  ?= 2026-10
PYTEST_ARGS ?=

.PHONY: setup report test lab lint sample clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install journeylab with its test tools

report: $(STAMP)  ## the main job: the monthly report on the bundled sample data
	$(BIN)/journeylab report monthly_report --month $(MONTH)

test: $(STAMP)  ## the whole test suite
	$(BIN)/python -m pytest -n 2 --dist loadfile -q $(PYTEST_ARGS)

lab: $(STAMP)  ## JupyterLab with jupytext pairing, for interactive work
	$(BIN)/python -m pip install --quiet -e ".[lab]"
	$(BIN)/jupyter lab notebooks/

lint: $(STAMP)
	$(BIN)/python -m pip install --quiet "ruff==0.17.6"
	$(BIN)/ruff check src tests notebooks benchmarks
	$(BIN)/ruff format --check src tests notebooks benchmarks

sample: $(STAMP)  ## write the seeded sample to data/sample/ (Parquet)
	$(BIN)/python -m journeylab.datasets --out data/sample

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
