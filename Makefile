# The two commands a newcomer runs: `make demo` and `make test`. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)

# Test settings: PostgreSQL and Redis on this machine, production-like settings (DEBUG off).
TEST_ENV := DATABASE_URL=$${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/loyalty} \
	SECRET_KEY=test-only-secret-key-not-for-production \
	ALLOWED_HOSTS=localhost,127.0.0.1,testserver \
	SECURE_SSL_REDIRECT=0 SESSION_COOKIE_SECURE=0 CSRF_COOKIE_SECURE=0 SECURE_HSTS_SECONDS=0 \
	MANIFEST_STATIC=0 WHITENOISE_USE_FINDERS=1 EMAIL_BACKEND=django.core.mail.backends.locmem.EmailBackend \
	TEST_REDIS_URL=$${TEST_REDIS_URL:-redis://127.0.0.1:6379/15} \
	DJANGO_ALLOW_ASYNC_UNSAFE=true

DEMO_DB ?= postgres://postgres@127.0.0.1:5432/loyalty_demo
DEMO_ENV := DEBUG=1 DATABASE_URL=$${DATABASE_URL:-$(DEMO_DB)}

.PHONY: help venv services chromium lint test test-fast demo migrate seed run worker beat bench compose-check clean

help:
	@echo "make demo   set up, load demo data and serve at http://127.0.0.1:8000"
	@echo "make test   set up and run lint, import contracts and the whole test suite"

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*; touch $(STAMP)

venv: $(STAMP)

services:
	@bash scripts/ensure-services.sh

chromium:
	@bash scripts/ensure-chromium.sh

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	DATABASE_URL= DEBUG=1 $(BIN)/python manage.py makemigrations --check --dry-run

test: venv services chromium lint
	$(TEST_ENV) $(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: venv services
	$(TEST_ENV) $(BIN)/python -m pytest -m "not browser and not integration" $(PYTEST_ARGS)

demo: venv services
	@$(BIN)/python scripts/create_database.py "$${DATABASE_URL:-$(DEMO_DB)}"
	$(DEMO_ENV) $(BIN)/python manage.py migrate --noinput
	$(DEMO_ENV) $(BIN)/python manage.py seed_demo
	@echo "Serving on http://127.0.0.1:8000 (Ctrl-C to stop)"
	$(DEMO_ENV) $(BIN)/python manage.py runserver 127.0.0.1:8000

bench: venv services
	@for script in bench/*.py; do echo "== $$script"; $(TEST_ENV) $(BIN)/python $$script || exit 1; done

compose-check:
	docker-compose -f docker-compose.yml config -q

clean:
	rm -rf $(VENV) staticfiles db.sqlite3
