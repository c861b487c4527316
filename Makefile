# The two commands a newcomer needs: `make run` and `make test`. Both set up .venv from pyproject.toml.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
HOST   ?= 127.0.0.1
PORT   ?= 8000

# The suite and `make run` start many Python processes (servers, CLI runs, pytest's rewritten tests):
# let them cache compiled bytecode, even where the environment turned that off, so each process does not
# compile the whole project again.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install browser bench-tools run test test-sqlite test-postgres lint bench screenshots clean

# Packages that plug in from outside (examples/), installed editable next to the platform as any
# third-party package would be: the tests enable and use them end to end. One line each.
EXAMPLES :=
EXAMPLES += examples/hello-miniapp
EXAMPLES += examples/example-channel

$(STAMP): pyproject.toml $(addsuffix /pyproject.toml,$(EXAMPLES))
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11 or newer is required") if sys.version_info < (3, 11) else None'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]' $(addprefix -e ,$(EXAMPLES))
	@touch $(STAMP)

install: $(STAMP)

## Debian's chromium for the browser tests (Playwright drives it; it downloads no browser of its own).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
	      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }; \
	  else \
	    echo "chromium is missing: install Debian's chromium package (apt-get install chromium)" >&2; exit 1; \
	  fi; }
	@command -v chromium >/dev/null 2>&1

## Debian's wrk for the benchmarks (bench/gate.py drives its load with it: compiled, not Python on the cores).
bench-tools:
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's wrk for the benchmarks"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null \
	      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null; }; \
	  else \
	    echo "wrk is missing: install Debian's wrk package (apt-get install wrk)" >&2; exit 1; \
	  fi; }
	@command -v wrk >/dev/null 2>&1

## Embedded default: SQLite under var/, in-process store, development keys generated on first start.
run: install
	$(BIN)/shengshi migrate
	$(BIN)/shengshi seed-demo
	$(BIN)/shengshi serve --host $(HOST) --port $(PORT)

## The whole suite on both storage backends: SQLite + in-process store, then PostgreSQL + Redis. (Side by
## side, make -j2, each pass took 2.5 times as long on two cores: the servers, browsers and CLI runs the
## tests start need the cores too, so one after the other is the faster.)
test: install lint browser test-sqlite test-postgres

test-sqlite: install browser
	SHENGSHI_TEST_BACKEND=sqlite $(BIN)/pytest

test-postgres: install browser
	SHENGSHI_TEST_BACKEND=postgres $(BIN)/pytest

## Screenshots of the wallet and the dashboard for docs/ (the browser tests take them; CJK fonts needed).
screenshots: install browser
	@fc-list :lang=zh 2>/dev/null | grep -q . || DEBIAN_FRONTEND=noninteractive apt-get install -y -q fonts-noto-cjk >/dev/null
	SHENGSHI_TEST_BACKEND=sqlite SHENGSHI_TEST_SCREENSHOT_DIR=docs/screenshots $(BIN)/pytest tests/browser -q

## The gate at rush hour (issue 15) on PostgreSQL + Redis against its baselines, then the books;
## options through BENCH_ARGS, e.g. make bench BENCH_ARGS="--rounds 3 --crash" (see bench/gate.py --help).
bench: install bench-tools
	$(BIN)/python bench/gate.py $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache *.egg-info
