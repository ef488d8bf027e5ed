# brainalign: two commands on a fresh machine with Python >= 3.10 and pip.
#   make demo   creates/updates .venv, installs brainalign, runs the demo, writes a report
#   make test   creates/updates .venv with the test extra, runs the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
# The CPU build of torch that lies on disk; any other torch request pulls CUDA packages.
TORCH := torch==2.13.0
OUT ?= brainalign-out/demo

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.stamp-base: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.stamp-test: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -e ".[test,models,dask,ricci]"
	touch $@ $(VENV)/.stamp-base

demo: $(VENV)/.stamp-base
	$(BIN)/brainalign demo --out $(OUT)

test: $(VENV)/.stamp-test
	$(BIN)/python -m pytest

lint: $(VENV)/.stamp-test
	$(BIN)/ruff check brainalign tests benchmarks docs/examples && $(BIN)/ruff format --check brainalign tests benchmarks docs/examples && $(BIN)/lint-imports

bench: $(VENV)/.stamp-test
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) brainalign-out .pytest_cache
