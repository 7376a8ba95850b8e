# The two front-door commands. Each sets up .venv on first use (Python 3.11+ as python3).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test bench

$(BIN)/reviewrelay: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

run: $(BIN)/reviewrelay  ## run the bot: the local console when no platform token is configured
	$(BIN)/reviewrelay run

test: $(BIN)/reviewrelay  ## lint, type-check and run the whole test suite
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

bench: $(BIN)/reviewrelay  ## benchmarks that print tables (not part of the tests)
	$(BIN)/python -m bench
