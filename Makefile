# The two commands a fresh machine needs: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)
PORT ?= 8000
MINERS ?= 8
MINER_PORT ?= 9100

# Use the machine's PostgreSQL and Redis when they answer and nothing else was chosen.
LOCAL_PG := postgres://postgres@127.0.0.1:5432/validator_endpoint
LOCAL_REDIS := redis://127.0.0.1:6379/0
SERVICES_ENV = $(shell $(PYTHON) bin/local_services.py "$(LOCAL_PG)" "$(LOCAL_REDIS)" 2>/dev/null)

.PHONY: install browser clients run manage test bench lint format

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -r requirements-dev.txt
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: install lint browser clients
	$(SERVICES_ENV) $(PY) manage.py makemigrations --check --dry-run
	$(SERVICES_ENV) $(PY) -m pytest

# The page tests drive Debian's chromium (Playwright's own download doesn't work here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the page tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q chromium >/dev/null; }

# The official OpenAI Node SDK, for the client compatibility tests (tests/clients).
NODE_CLIENTS := tests/clients/node
clients: $(NODE_CLIENTS)/node_modules/.package-lock.json

$(NODE_CLIENTS)/node_modules/.package-lock.json: $(NODE_CLIENTS)/package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
	  echo "installing Debian's nodejs and npm for the client tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q nodejs npm >/dev/null; }
	cd $(NODE_CLIENTS) && npm ci --no-audit --no-fund --loglevel=error

bench: install
	$(SERVICES_ENV) $(PY) -m pytest tests/bench -s -p no:cacheprovider

run: install
	$(SERVICES_ENV) PORT=$(PORT) MINERS=$(MINERS) MINER_PORT=$(MINER_PORT) RESET=$(RESET) bash bin/run-local

# `make manage ARGS="key list"`: a manage.py command on the services `make run` chose.
manage: install
	$(SERVICES_ENV) $(PY) manage.py $(ARGS)
