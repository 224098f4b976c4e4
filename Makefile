# Two commands for a fresh machine: `make up` starts the platform, `make test` runs the test suite.
# Each creates .venv when missing and installs the project into it; a second run installs nothing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test lint protos clean-var

up: $(STAMP)
	$(BIN)/dinhdanh up

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m tests.browser_setup
	$(BIN)/python -m tests.hsm_setup
	$(BIN)/python -m pytest -n auto --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check .

protos: $(STAMP)
	$(BIN)/python -m protos

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	$(BIN)/python -m protos
	touch $(STAMP)
