# Quickstart: `make run` (serve the portal) and `make test` (lint + the whole suite).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
PYTEST_ARGS ?=

.DEFAULT_GOAL := run
.PHONY: run test lint format venv clean browser-deps audit

venv: $(VENV)/.installed

# Re-installs only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e '.[dev]'
	touch $@

run: venv
	PORT=$(PORT) $(BIN)/portal run --port $(PORT)

# Debian's chromium for the browser tests; only when missing and we are root.
browser-deps:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing chromium for the browser tests"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	fi

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: venv browser-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python .ci/audit_dependencies.py
	$(BIN)/pytest $(PYTEST_ARGS)

# Fails on a known vulnerability with a fix available (pip-audit); part of `make test`.
audit: venv
	$(BIN)/python .ci/audit_dependencies.py

# Removes the virtualenv and caches; leaves instance/ (the local database) alone.
clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist *.egg-info
	find . -path ./instance -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
