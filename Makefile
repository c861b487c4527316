# The two commands a newcomer needs: `make run` and `make test`. Both set up .venv from pyproject.toml.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install run test test-sqlite test-postgres lint bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11 or newer is required") if sys.version_info < (3, 11) else None'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## Embedded default: SQLite under var/, in-process store, development keys generated on first start.
run: install
	$(BIN)/shengshi migrate
	$(BIN)/shengshi seed-demo
	$(BIN)/shengshi serve --host $(HOST) --port $(PORT)

## The whole suite on both storage backends: SQLite + in-process store, then PostgreSQL + Redis.
test: install lint test-sqlite test-postgres

test-sqlite: install
	SHENGSHI_TEST_BACKEND=sqlite $(BIN)/pytest

test-postgres: install
	SHENGSHI_TEST_BACKEND=postgres $(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache *.egg-info
