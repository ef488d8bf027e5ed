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

.PHONY: test-float32 demo test lint bench docs clean

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

# The suite runs on every core (pytest-xdist), one BLAS/torch thread per worker; then the
# analysis packages' numerical tests (those stating float32 tolerances, and those marked
# float32) run again with the GPU's default precision on the CPU. `make test-float32` runs
# every analysis test in float32 (about 2 more minutes).
FLOAT32_DIRS = tests/rsa tests/encoding tests/align tests/ricci tests/trsa tests/stats
test: $(VENV)/.stamp-test
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n auto
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n auto -q --dtype=float32 -m "float32 or tolerance" $(FLOAT32_DIRS)

test-float32: $(VENV)/.stamp-test
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n auto -q --dtype=float32 $(FLOAT32_DIRS)

lint: $(VENV)/.stamp-test
	$(BIN)/ruff check brainalign tests benchmarks docs/examples && $(BIN)/ruff format --check brainalign tests benchmarks docs/examples && $(BIN)/lint-imports

bench: $(VENV)/.stamp-test
	$(BIN)/python benchmarks/run.py

# The docs extra (Sphinx, numpydoc, sphinx-gallery, the theme, myst-parser for the markdown
# pages, spkit for the EEG example's data) joins the same environment as the test extras do:
# every installed package is held at its version by a constraints file. The site is built
# from scratch each time, so every gallery example runs; any warning fails the build.
$(VENV)/.stamp-docs: pyproject.toml $(VENV)/.stamp-base
	$(BIN)/python -m pip freeze --exclude-editable > $(VENV)/pre-docs-versions.txt
	$(PIP) install --quiet -e ".[docs,models]" -c $(VENV)/pre-docs-versions.txt
	touch $@

docs: $(VENV)/.stamp-docs
	rm -rf docs/_build/html docs/api/generated docs/auto_examples
	MPLBACKEND=Agg $(BIN)/python -m sphinx -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) brainalign-out .pytest_cache
