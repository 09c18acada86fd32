# Postbote — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test install install-test system-deps bench clean

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

clean:
	rm -rf $(VENV) var build src/*.egg-info .pytest_cache
