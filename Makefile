# Two entry points for a fresh machine: `make demo` and `make test`. Both set up .venv first (once).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.callwatch-installed

.PHONY: demo test check setup serve bench

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The CPU build of torch first, so nothing later pulls a CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[test]"
	$(VENV)/bin/callwatch setup
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/callwatch demo

serve: $(STAMP)
	$(VENV)/bin/callwatch serve

test: $(STAMP)
	# Pyflakes' checks and the type checker first: a minute, and they catch what a merge leaves behind.
	$(VENV)/bin/ruff check --select F .
	$(VENV)/bin/mypy
	$(PY) -m pytest -q

# The fast tier, while developing: lint, types, and the tests that need no model, browser, database or server
# process (tests/conftest.py: HEAVY_FIXTURES). `make test` is the whole suite, as CI runs it.
check: $(STAMP)
	$(VENV)/bin/ruff check --select F .
	$(VENV)/bin/mypy
	$(PY) -m pytest -q -m "not heavy"

bench: $(STAMP)
	$(PY) benchmarks/asr.py
	$(PY) benchmarks/live.py
