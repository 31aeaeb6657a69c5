# Two commands for a newcomer: `make run` and `make test`. Both set up .venv by themselves.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test lint bench-store bench-recall clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/engram demo

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench research
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest

bench-store: $(STAMP)
	$(PY) bench/store.py

LOCOMO ?= ../shared/data/locomo
bench-recall: $(STAMP)
	$(PY) bench/locomo.py --data $(LOCOMO)
	$(PY) bench/recall_scale.py --data $(LOCOMO) --sizes 100000

clean:
	rm -rf $(VENV) engram-data .pytest_cache .mypy_cache .ruff_cache

# The CLI reference (docs/cli.md), generated from the command tree; tests/test_docs.py checks it.
.PHONY: docs-cli
docs-cli: $(STAMP)
	$(PY) tests/test_docs.py
