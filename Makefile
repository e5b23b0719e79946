# Two commands: `make run` (the portal on its embedded default) and `make test` (the suite).
# Both build their own virtual environment first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
BENCH_MODE ?= quick

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime-installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime-installed

# Web (gunicorn, static files by WhiteNoise), Celery worker and beat on 127.0.0.1:$(PORT), each
# started again when it dies (Procfile.dev runs the Procfile's lines under partner_portal/supervise.py);
# Ctrl-C stops them all. The sandbox stands in for Real Geeks under /sandbox/.
run: $(VENV)/.runtime-installed
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	PORTAL_BASE_URL=http://127.0.0.1:$(PORT) $(BIN)/python manage.py demo_setup
	@echo "Portal: http://127.0.0.1:$(PORT)/  admin: /admin/  sandbox: /sandbox/requests/  health: /healthz  (Ctrl-C stops all)"
	PATH=$(CURDIR)/$(BIN):$$PATH GUNICORN_BIND=127.0.0.1:$(PORT) PORTAL_BASE_URL=http://127.0.0.1:$(PORT) \
		$(BIN)/honcho start --procfile Procfile.dev

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports --no-logo --no-cache

# The whole suite. Tests that need PostgreSQL, Redis or a real worker start their own servers;
# with REQUIRE_REAL_SERVERS=1 (set by .ci/run) a missing binary fails instead of skipping.
# The unit tests run two at a time (pytest-xdist, one per core); the tests that start real servers
# or a browser run one at a time after them, since their timings are part of what they check.
test: lint
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/pytest -n 2 -m "not integration" --ignore=tests/browser
	$(BIN)/pytest -m integration --ignore=tests/browser
	$(BIN)/pytest tests/browser

# Benchmarks (not part of `make test`): BENCH_MODE=quick (a few minutes) or full. Reports land in
# bench/results/. bench/tools.sh installs wrk, PostgreSQL and Redis when missing (as root).
bench: $(VENV)/.dev-installed
	sh bench/tools.sh
	$(BIN)/python -m bench --mode $(BENCH_MODE)

clean:
	rm -rf $(VENV) var staticfiles
