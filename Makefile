# streamfold — the two commands on a fresh machine are `make run` and `make test`.
# Everything lands in git-ignored places: .venv/ (Python deps), .local/ (Kafka jars cache,
# data, logs, pids). Kafka's jars come from Maven Central and redis-server from apt-get,
# both fetched on first use by deploy/binaries.py.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
API    ?= http://127.0.0.1:$(or $(STREAMFOLD_API_PORT),8000)

# Locked dependencies (CPython 3.11, linux x86_64, with hashes): requirements.lock is what
# ships (deploy/Dockerfile), requirements-test.lock adds the `test` extra (make install, CI).
# Both are generated from pyproject.toml by `make lock`; the runtime lock is resolved under
# the test lock as a constraint, so every shipped version is one the suite ran against.
LOCK       := requirements.lock
TEST_LOCK  := requirements-test.lock
# The locking tool lives in its own venv (never in .venv, never in the image).
UV_VERSION := 0.13.8
LOCK_TOOLS := .local/lock-tools
UV         := $(LOCK_TOOLS)/bin/uv
LOCK_ARGS  := --python-version 3.11 --python-platform x86_64-manylinux_2_28 --generate-hashes \
              --quiet --custom-compile-command 'make lock' $(if $(LOCK_UPGRADE),--upgrade)
# Fuzz budget (tests/fuzz/): schemathesis --max-examples per operation and per auth, and
# the phases; `make test` runs the same module with 5 examples and no coverage phase.
FUZZ_EXAMPLES ?= 100
FUZZ_PHASES   ?= examples,coverage,fuzzing,stateful

.PHONY: help install lock up run down status test test-unit fuzz bench lint clean

help:
	@echo "make run    start Kafka, Redis, serve (API + workers); load real data through the API"
	@echo "make up     the same without loading data"
	@echo "make down   stop everything 'up' started"
	@echo "make test   the whole suite, starting its own services"
	@echo "make fuzz   schemathesis over the whole OpenAPI spec, no 5xx allowed (FUZZ_EXAMPLES=$(FUZZ_EXAMPLES))"
	@echo "make lock   regenerate $(LOCK) and $(TEST_LOCK) from pyproject.toml (LOCK_UPGRADE=1: newest versions)"
	@echo "make bench  benchmarks -> bench/results/local/*.json (git-ignored)"

# The compiled ingestion core (pipeline/edge/native, Rust: PyO3 + maturin from the test lock,
# crates from crates.io). Without cargo the Python path runs (/readyz says which) and the
# compiled core's own tests fail: they import it.
NATIVE     := $(VENV)/.native
NATIVE_SRC := pipeline/edge/native/Cargo.toml pipeline/edge/native/Cargo.lock \
              pipeline/edge/native/pyproject.toml $(wildcard pipeline/edge/native/src/*.rs)

$(STAMP): pyproject.toml $(TEST_LOCK) examples/partner_activity/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "Python >= 3.11 is required (PYTHON=$(PYTHON))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --require-hashes -r $(TEST_LOCK)
	$(BIN)/pip install -q --no-deps -e .
	# the worked example of a projection plugin (README, "Replay and new projections")
	$(BIN)/pip install -q --no-deps -e examples/partner_activity
	$(BIN)/pip check
	@touch $@

$(NATIVE): $(STAMP) $(NATIVE_SRC)
	@if command -v cargo >/dev/null 2>&1; then \
		echo "building the compiled ingestion core (cargo, ~3 min the first time)"; \
		PATH="$(abspath $(BIN)):$$PATH" $(BIN)/pip install -q --no-build-isolation --no-deps \
			./pipeline/edge/native && touch $@; \
	else \
		echo "cargo not found: the compiled ingestion core is not built, the Python path runs"; \
		echo "(install Rust, e.g. rustup, then run make install again)"; \
	fi

install: $(STAMP) $(NATIVE)

# Re-resolve both locks from pyproject.toml, keeping existing pins that still fit;
# LOCK_UPGRADE=1 takes the newest versions allowed (the weekly workflow does that).
lock:
	@test -x $(UV) || { $(PYTHON) -m venv $(LOCK_TOOLS) && $(LOCK_TOOLS)/bin/pip install -q 'uv==$(UV_VERSION)'; }
	$(UV) pip compile pyproject.toml --extra test $(LOCK_ARGS) -o $(TEST_LOCK)
	$(UV) pip compile pyproject.toml $(LOCK_ARGS) --constraint $(TEST_LOCK) -o $(LOCK)

up: install
	$(BIN)/streamfold up

run: up
	$(BIN)/streamfold create-admin
	$(BIN)/streamfold load-users deploy/data/us-500.csv
	$(BIN)/streamfold load-weblogs
	$(BIN)/streamfold load-social
	$(BIN)/streamfold load-identity deploy/data/us-500.csv
	@echo
	@echo "API docs:   $(API)/docs"
	@echo "Readiness:  curl -s $(API)/readyz"
	@echo "Token:      TOKEN=\$$(curl -s -X POST $(API)/api/auth/token -d username=admin@example.com -d password=\$$(cat .local/admin-password) | python3 -c 'import sys,json;print(json.load(sys.stdin)[\"access_token\"])')"
	@echo "Users:      curl -s -H \"Authorization: Bearer \$$TOKEN\" '$(API)/api/admin/users?page_size=5&search=gmail'"
	@echo "SQL:        $(BIN)/streamfold sql \"SELECT role, status, count() FROM users FINAL GROUP BY role, status\""
	@echo "Dashboard:  $(API)/dashboard"
	@echo "Identity:   $(API)/identity   (prospects, students, instructors; live over /ws/events)"
	@echo "Read models: $(BIN)/streamfold projections list   (README: Replay and new projections)"
	@echo "Status:     $(BIN)/streamfold status      Stop: make down"

down:
	@if [ -x $(BIN)/streamfold ]; then $(BIN)/streamfold down; else echo "nothing to stop"; fi

status: install
	$(BIN)/streamfold status

test: install
	$(BIN)/pytest -q -p no:cacheprovider

# schemathesis over every operation of /openapi.json with an admin token and with a partner
# key, stateful phase included, on its own stack; fails on any 5xx (tests/fuzz/).
fuzz: install
	STREAMFOLD_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) STREAMFOLD_FUZZ_PHASES=$(FUZZ_PHASES) \
		STREAMFOLD_FUZZ_REPORT_DIR=.local/fuzz \
		$(BIN)/pytest -q -p no:cacheprovider -m fuzz tests/fuzz

test-unit: install
	$(BIN)/pytest -q tests/unit examples

bench: install
	$(BIN)/python bench/commands.py && $(BIN)/python bench/ingest.py && $(BIN)/python bench/dedup.py \
	  && $(BIN)/python bench/ws.py

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean: down
	rm -rf $(VENV) .local
