# jobgov: `make test` runs every test; `make demo` runs a governed job on an embedded Temporal dev server.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install browser lint test unit bench demo clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## Lint and type-check: ruff over the code, tests and benchmarks; mypy --strict over jobgov/.
lint: $(STAMP)
	$(VENV)/bin/ruff check jobgov tests bench worker.py
	$(VENV)/bin/mypy

## Debian's chromium for the Temporal UI test (driven by Playwright through its executable_path;
## no browser is ever downloaded), installed with apt when missing.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  sudo=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "installing Debian's chromium for the UI test"; \
	  $$sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q chromium; }

## Run the whole suite: lint first, then unit, integration (real Temporal dev server),
## end-to-end (real opencode) and UI (the Temporal Web UI in headless chromium) tests.
test: lint browser
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
