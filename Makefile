# Two commands do everything on a fresh machine with only Python 3.11+:
#   make run    the whole system (embedded PostgreSQL + Redis, web, worker, beat, relay, sandbox)
#   make test   lint, then the whole test suite on real PostgreSQL and Redis
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
PYTEST_ARGS ?=

.PHONY: run test lint format install bench chaos clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

run: $(STAMP)
	$(PY) -m config.devstack run

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint
	$(PY) -m config.devstack exec -- $(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m config.devstack exec -- $(PY) bench/run.py

# The seeded chaos run (issue 12): its own stack on free ports, 2 000 payments by default.
# make chaos CHAOS_ARGS="--payments 10000 --seed 7"
CHAOS_ARGS ?=
chaos: $(STAMP)
	$(PY) -m tests.chaos.run $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
