# Two commands do all the set-up: `make run` (embedded demo at http://127.0.0.1:8000) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NPM_STAMP := frontend/node_modules/.installed
BUILD := frontend/static/frontend/build/app.js
HOST ?= 127.0.0.1
PORT ?= 8000

# The test suite's real services (override on the command line or in the environment).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/market
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: install frontend run serve test test-faults audit e2e browser lint format bench load messages clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

$(NPM_STAMP): frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error
	touch $(NPM_STAMP)

$(BUILD): $(NPM_STAMP) $(wildcard frontend/src/*.ts) frontend/build.mjs
	cd frontend && npm run --silent build

frontend: $(BUILD)

# The English catalogue is compiled from the committed .po with Babel (no system gettext needed).
MO := locale/en/LC_MESSAGES/django.mo
$(MO): locale/en/LC_MESSAGES/django.po $(STAMP)
	$(VENV)/bin/pybabel compile --statistics -i $< -o $@

install: $(STAMP) frontend $(MO)

## make run: install, prepare the embedded SQLite market, load the demo and serve it.
run: install
	DEBUG=1 $(PY) manage.py migrate --noinput
	DEBUG=1 $(PY) manage.py demo_load
	DEBUG=1 $(PY) manage.py search_rebuild
	@echo ""
	@echo "  再生资源交易市场 → http://$(HOST):$(PORT)/   (operators: http://$(HOST):$(PORT)/admin/)"
	@echo ""
	DEBUG=1 $(PY) manage.py serve --host $(HOST) --port $(PORT)

## make test: install and run the whole suite against PostgreSQL and Redis (with the browser tests).
test: install browser
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(PY) -m pytest $(PYTEST_ARGS)

## make test-faults: only the fault tests (killed web workers and Celery workers, PostgreSQL and Redis
## restarted, replayed and forged webhooks); `make test` runs them too.
test-faults: install
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(PY) -m pytest -m faults tests $(PYTEST_ARGS)

## make audit: pip-audit of the installed packages against PyPI's advisories (tests/audit); needs
## https://pypi.org/pypi/<name>/<version>/json, which this machine's network does not answer.
audit: install
	MARKET_AUDIT=1 DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(PY) -m pytest tests/audit $(PYTEST_ARGS)

## make e2e: only the browser journeys (tests/e2e); screenshots under test-results/e2e/.
e2e: install browser
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(PY) -m pytest tests/e2e $(PYTEST_ARGS)

# The browser tests drive Debian's Chromium (never a downloaded one) and need CJK fonts for readable
# screenshots: installed here when missing and this runs as root, else said how. Without Chromium
# the browser tests fail, they are never skipped.
browser:
	@missing=""; \
	[ -x "$${E2E_CHROMIUM:-/usr/bin/chromium}" ] || missing="$$missing chromium"; \
	fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || missing="$$missing fonts-noto-cjk"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "browser tests: installing$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "browser tests (tests/e2e) need$$missing: run  sudo apt-get install -y$$missing  (or set E2E_CHROMIUM to a Chromium binary); without Chromium they fail"; \
	  fi; \
	fi

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## make bench: benchmarks under tests/bench/, each reported as a ratio to a baseline of the same run.
bench: install
	@if ls tests/bench/test_*.py >/dev/null 2>&1; then \
	  MARKET_BENCH=1 DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(PY) -m pytest tests/bench -p no:cacheprovider -s --timeout=3600; \
	else echo "no benchmarks under tests/bench/"; fi

## make load: only the load test (tests/bench/test_load_mix.py): the realistic mix in locust on granian,
## daphne, Celery and beat, beside pgbench; LOAD_SECONDS (60), LOAD_USERS (50), LOAD_WORKERS (4).
load: install
	MARKET_BENCH=1 DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(PY) -m pytest tests/bench/test_load_mix.py -p no:cacheprovider -s --timeout=3600

## make messages: refresh the English catalogue from the Chinese source strings and compile it.
messages: $(STAMP)
	DEBUG=1 $(PY) manage.py makemessages -l en --ignore=.venv --ignore=node_modules --ignore=var --ignore=tests
	$(VENV)/bin/pybabel compile --statistics -i locale/en/LC_MESSAGES/django.po -o $(MO)

clean:
	rm -rf var/test frontend/static/frontend/build
