# The README's two commands: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PORT ?= 8000

.PHONY: install run test test-sqlite test-postgres bench lint format clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

# Example site on SQLite, Celery eager, console mail/SMS: codes and links print here.
# The issuer (and the base of magic links) follows PORT unless AUTHDEVICE_ISSUER is set.
RUN_ENV = DEBUG=1 AUTHDEVICE_ISSUER=$${AUTHDEVICE_ISSUER:-http://127.0.0.1:$(PORT)}

run: install
	$(RUN_ENV) $(PY) manage.py migrate --noinput
	$(RUN_ENV) $(PY) manage.py authdevice_demo --port $(PORT)
	$(RUN_ENV) $(PY) manage.py runserver 127.0.0.1:$(PORT)

# The whole suite: SQLite, then PostgreSQL (+ Redis, Celery worker) that the tests start.
test: install
	$(PY) tests/run_suite.py

test-sqlite: install
	$(PY) -m pytest -m "not postgres"

test-postgres: install
	AUTHDEVICE_TEST_DB=postgres $(PY) -m pytest

bench: install
	$(PY) benchmarks/run.py

lint: install
	$(PY) -m ruff check authdevice project tests benchmarks
	$(PY) -m ruff format --check authdevice project tests benchmarks

format: install
	$(PY) -m ruff format authdevice project tests benchmarks
	$(PY) -m ruff check --fix authdevice project tests benchmarks

clean:
	rm -rf $(VENV) db.sqlite3* staticfiles .pytest_cache
