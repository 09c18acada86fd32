# Postbote — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test install install-test system-deps bench mutate coverage clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e .

install-test: $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'

## run: install, create ./var/postbote.db and postbote.toml, serve the API and deliver.
run: install
	$(BIN)/postbote init
	$(BIN)/postbote serve

## system-deps: Debian packages the test tiers and benchmarks use (Postfix's smtp-sink).
system-deps:
	scripts/install-system-deps

## test: install everything and run all test tiers.
test: install-test system-deps
	$(BIN)/python -m pytest -q -ra

## bench: delivery throughput into smtp-sink, SQLite and PostgreSQL.
bench: install system-deps
	$(BIN)/python benchmarks/throughput.py --messages 20000 --store sqlite --store postgresql

## mutate: mutation testing of the core modules against the fast tiers; prints the score per package (not in CI: slow).
mutate: install-test system-deps
	$(BIN)/pip install -q 'mutmut==3.8.1'
	$(BIN)/python scripts/mutate

## coverage: every tier with branch coverage, subprocesses (the CLI as a process) followed.
coverage: install-test system-deps
	$(BIN)/pip install -q 'coverage>=7.10'
	rm -f .coverage .coverage.*
	$(BIN)/python -m coverage run -m pytest -q
	$(BIN)/python -m coverage combine -q
	$(BIN)/python -m coverage report --skip-covered --sort=cover

clean:
	rm -rf $(VENV) var build src/*.egg-info .pytest_cache mutants .coverage .coverage.*
