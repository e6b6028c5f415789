# streamfold — the two commands on a fresh machine are `make run` and `make test`.
# Everything lands in git-ignored places: .venv/ (Python deps), .local/ (Kafka jars cache,
# data, logs, pids). Kafka's jars come from Maven Central and redis-server from apt-get,
# both fetched on first use by deploy/localstack.py.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
API    ?= http://127.0.0.1:$(or $(STREAMFOLD_API_PORT),8000)

.PHONY: help install up run down status test test-unit bench lint clean

help:
	@echo "make run    start Kafka, Redis, serve (API + workers); load real data through the API"
	@echo "make up     the same without loading data"
	@echo "make down   stop everything 'up' started"
	@echo "make test   the whole suite, starting its own services"
	@echo "make bench  benchmarks -> bench/results/local/*.json (git-ignored)"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "Python >= 3.11 is required (PYTHON=$(PYTHON))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

install: $(STAMP)

up: $(STAMP)
	$(BIN)/streamfold up

run: up
	$(BIN)/streamfold create-admin
	$(BIN)/streamfold load-users deploy/data/us-500.csv
	$(BIN)/streamfold load-weblogs
	@echo
	@echo "API docs:   $(API)/docs"
	@echo "Readiness:  curl -s $(API)/readyz"
	@echo "Token:      TOKEN=\$$(curl -s -X POST $(API)/api/auth/token -d username=admin@example.com -d password=\$$(cat .local/admin-password) | python3 -c 'import sys,json;print(json.load(sys.stdin)[\"access_token\"])')"
	@echo "Users:      curl -s -H \"Authorization: Bearer \$$TOKEN\" '$(API)/api/admin/users?page_size=5&search=gmail'"
	@echo "SQL:        $(BIN)/streamfold sql \"SELECT role, status, count() FROM users FINAL GROUP BY role, status\""
	@echo "Dashboard:  $(API)/dashboard"
	@echo "Status:     $(BIN)/streamfold status      Stop: make down"

down:
	@if [ -x $(BIN)/streamfold ]; then $(BIN)/streamfold down; else echo "nothing to stop"; fi

status: $(STAMP)
	$(BIN)/streamfold status

test: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider

test-unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

bench: $(STAMP)
	$(BIN)/python bench/commands.py && $(BIN)/python bench/ingest.py

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean: down
	rm -rf $(VENV) .local
