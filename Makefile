# Two commands set everything up on a fresh machine with Python 3.11:
#   make book   build the book into _build/html
#   make test   install the test extras and run the whole suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.stamp

.PHONY: book test lint bench clean

$(STAMP)-runtime: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet pip==26.3 setuptools==84.2.1
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

$(STAMP)-test: $(STAMP)-runtime requirements-test.txt
	$(BIN)/python -m pip install --quiet -r requirements-test.txt
	touch $@

book: $(STAMP)-runtime
	$(BIN)/jupyter-book build . --warningiserror --nitpick --keep-going
	@echo "The book is built: open file://$(CURDIR)/_build/html/index.html"

test: $(STAMP)-test
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2

lint: $(STAMP)-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check minidl tests benchmarks

bench: $(STAMP)-test
	$(BIN)/python benchmarks/bench_step.py

clean:
	rm -rf _build
