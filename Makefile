# Two entry points do all set-up on a fresh machine:
#   make demo   – run the main job on the embedded default (CPU, offline)
#   make test   – run the test suite (in-process tests; the `slow` ones, which start other processes, are left out)
#   make test-all – every test, the `slow` ones too
#   make test-deploy – the fleet test alone (redis-server + haproxy + 3 `serve` replicas on loopback; CI runs it)
#   make test-guarantees – the other `slow` must-show tests CI runs: kill -9 + restart, the terminal client in a pty,
#                  serve --sp 2 against one process
#   make lint   – ruff (lint + format check) and mypy, as CI runs them
# A CUDA torch installed beforehand (TORCH_SPEC='' make ...) is kept; by default the local CPU build is used.
PY ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: setup demo test test-all test-deploy test-guarantees lint vendor-msgpack clean

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	@if [ -n "$(TORCH_SPEC)" ] && ! $(BIN)/python -c "import torch" 2>/dev/null; then $(BIN)/pip install -q "$(TORCH_SPEC)"; fi
	$(BIN)/pip install -q -e '.[test,pocket]'
	touch $@

setup: $(BIN)/.installed

demo: setup
	$(BIN)/ltx2stream demo

test: setup
	$(BIN)/python -m pytest

test-all: setup
	$(BIN)/python -m pytest -m ''

# A `slow` test (it starts processes) that CI runs too: ~2.5 min on 2 busy cores; skipped without
# redis-server/haproxy (Debian packages, installed by .ci/run).
test-deploy: setup
	$(BIN)/python -m pytest -m slow tests/test_deploy.py

# The issues' must-show tests that start server processes (a few minutes on 2 cores).
test-guarantees: setup
	$(BIN)/python -m pytest -m slow tests/test_reliability_crash.py tests/test_client_interactive.py tests/test_server_sp.py

# Paths and rules come from pyproject.toml ([tool.ruff], [tool.mypy] with its `files`).
lint: setup
	$(BIN)/ruff check ltx2stream tests bench clients
	$(BIN)/ruff format --check ltx2stream tests bench clients
	$(BIN)/mypy

# The browser player's MessagePack library: @msgpack/msgpack's UMD dist build, one pinned file with its licence.
# Refresh (or move the pin) with `make vendor-msgpack MSGPACK_VERSION=x.y.z`; needs npm and the npm registry.
MSGPACK_VERSION ?= 3.1.3
MSGPACK_DIR := clients/web/vendor/msgpack
vendor-msgpack:
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	(cd "$$tmp" && npm pack --silent --json "@msgpack/msgpack@$(MSGPACK_VERSION)" > pack.json && tar xzf *.tgz); \
	integrity=$$(sed -n 's/.*"integrity": *"\([^"]*\)".*/\1/p' "$$tmp/pack.json" | head -n 1); \
	mkdir -p $(MSGPACK_DIR); \
	{ echo "// @msgpack/msgpack $(MSGPACK_VERSION): package/dist.umd/msgpack.js of the npm tarball ($$integrity)."; \
	  echo "// ISC licence: LICENSE beside this file. Vendored by \`make vendor-msgpack\`; do not edit by hand."; \
	  grep -v '^//# sourceMappingURL=' "$$tmp/package/dist.umd/msgpack.js"; } > $(MSGPACK_DIR)/msgpack.js; \
	cp "$$tmp/package/LICENSE" $(MSGPACK_DIR)/LICENSE; \
	echo "vendored @msgpack/msgpack $(MSGPACK_VERSION) into $(MSGPACK_DIR)"

clean:
	rm -rf $(VENV)
