# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint types unit bench browser clean test-pythons

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,structlog,postgresql,mysql,web]'
	touch $(STAMP)

## demo: record a few real events into the default store and show them
demo: $(STAMP)
	$(BIN)/python examples/demo.py
	$(BIN)/code-wake events --app code-wake-demo --limit 10
	$(BIN)/code-wake errors --app code-wake-demo
	@echo
	@echo "See it in a browser: $(BIN)/code-wake serve   then open http://127.0.0.1:8000/"

## lint: ruff and mypy (strict)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## browser: Debian's Chromium for the web view's browser tests, when missing (as root)
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y chromium chromium-driver; \
		else echo "No /usr/bin/chromium: the browser tests will skip (apt-get install chromium chromium-driver)"; fi; \
	fi

## test: lint, types and the whole suite with branch coverage
test: lint browser
	$(BIN)/python -m pytest --cov --cov-branch --cov-report=term $(PYTEST_ARGS)

## test-pythons: the suite on the other Python versions we promise, each in its own environment
# PYTHONS lists them; FULL_PYTHONS run the whole suite, the others the exit and fork tests; none
# repeats the fault tests (they stop the database servers; what they prove does not vary by version).
# An interpreter is python3.X on PATH, else the newest pyenv 3.X.
PYTHONS ?= 3.10 3.12 3.13
FULL_PYTHONS ?= 3.10 3.13
EXIT_AND_FORK_TESTS := tests/integration
test-pythons:
	@set -e; for v in $(PYTHONS); do \
	    py=$$(.ci/find-python $$v); \
	    $(MAKE) --no-print-directory VENV=.venv-$$v PYTHON=$$py .venv-$$v/.installed; \
	    case " $(FULL_PYTHONS) " in *" $$v "*) what=tests;; *) what="$(EXIT_AND_FORK_TESTS)";; esac; \
	    echo "== Python $$v: $$what"; \
	    .venv-$$v/bin/python -m pytest -p no:cacheprovider -m "not fault" $$what $(PYTEST_ARGS); \
	done

## bench: the benchmarks (never part of the tests)
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .venv-3.* .coverage .coverage.* .pytest_cache .mypy_cache .ruff_cache *.egg-info
