# jobgov: `make test` runs every test; `make demo` runs a governed job on an embedded Temporal dev server.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test unit bench demo clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## Run the whole suite: unit, integration (real Temporal dev server) and end-to-end (real opencode).
test: $(STAMP)
	$(PY) -m pytest

## Only the fast unit tests.
unit: $(STAMP)
	$(PY) -m pytest tests/unit

## One governed job end to end on an embedded Temporal dev server (real opencode, scripted model).
demo: $(STAMP)
	$(VENV)/bin/jobgov demo

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis *.egg-info
