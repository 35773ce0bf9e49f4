# charter — two commands from a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench docs clean help demo demo-reset

help:
	@echo "make run    set up the virtualenv and the embedded store, then start charter"
	@echo "make test   set up the virtualenv and run lint, type checks and the whole test suite"
	@echo "make bench  run the benchmarks (writes bench/results/, see docs/benchmarks.md)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/python -m compileall -q src/charter
	touch $(STAMP)

run: $(STAMP)
	@$(BIN)/python -m compileall -q src/charter  # bytecode even where PYTHONDONTWRITEBYTECODE is set
	$(BIN)/charter init
	@echo
	@echo "charter is ready: the store is in ./.charter. Quickstart (from README.md), in another shell:"
	@awk '/^## Quickstart/{on=1} on&&/^```sh/{p=1;next} p&&/^```/{exit} p' README.md
	@echo
	$(BIN)/charter server --signin-link

demo: $(STAMP)
	$(BIN)/python -m examples.demo

demo-reset: $(STAMP)
	$(BIN)/python -m examples.demo --reset

docs: $(STAMP)
	$(BIN)/python -m charter.cli.reference > docs/cli.md

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .charter .pytest_cache .mypy_cache .ruff_cache
