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

# The test extras go into the demo's environment without changing a package the demo
# installed: every one is held at its demo version by a constraints file (pip stops with an
# error rather than up- or downgrade it). GraphRicciCurvature 0.6.1 (the curvature
# reference, tests only) pins scipy<=1.13.1 for no reason of its own (it runs on current
# scipy: tests/test_environment.py), so it is installed without its dependencies, which the
# test extra lists.
$(VENV)/.stamp-test: pyproject.toml $(VENV)/.stamp-base
	$(BIN)/python -m pip freeze --exclude-editable > $(VENV)/demo-versions.txt
	$(PIP) install --quiet -e ".[test,models,dask,ricci]" -c $(VENV)/demo-versions.txt
	$(PIP) install --quiet --no-deps GraphRicciCurvature==0.6.1
	touch $@

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
