# Two commands on a fresh machine:
#   make run   - set up, create the database in the data dir (cocoa db where), the admin, serve on :8000 with a worker
#   make test  - set up and run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench clean

$(STAMP): pyproject.toml package-lock.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	npm ci --no-audit --no-fund --silent  # the map library (package.json), served from node_modules
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/cocoa quickstart
	$(BIN)/cocoa serve

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: install
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/engine.py

clean:
	rm -rf $(VENV) var artifacts
