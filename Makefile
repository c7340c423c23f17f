# Two entry points do all set-up on a fresh machine:
#   make demo   – run the main job on the embedded default (CPU, offline)
#   make test   – run the test suite
#   make lint   – ruff (lint + format check) and mypy, as CI runs them
# A CUDA torch installed beforehand (TORCH_SPEC='' make ...) is kept; by default the local CPU build is used.
PY ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: setup demo test lint clean

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	@if [ -n "$(TORCH_SPEC)" ] && ! $(BIN)/python -c "import torch" 2>/dev/null; then $(BIN)/pip install -q "$(TORCH_SPEC)"; fi
	$(BIN)/pip install -q -e '.[test]'
	touch $@

setup: $(BIN)/.installed

demo: setup
	$(BIN)/ltx2stream demo

test: setup
	$(BIN)/python -m pytest

# Paths and rules come from pyproject.toml ([tool.ruff], [tool.mypy] with its `files`).
lint: setup
	$(BIN)/ruff check ltx2stream tests bench clients
	$(BIN)/ruff format --check ltx2stream tests bench clients
	$(BIN)/mypy

clean:
	rm -rf $(VENV)
