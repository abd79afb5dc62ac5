# Meepo's tasks. `make run` sets everything up and serves the demo; `make test` is what CI runs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python

.PHONY: help venv test-deps lint test test-postgres run css css-check bench

help:
	@echo "make run   - install, build the demo catalogue (or MEEPO_STORE_URL), serve on :8000"
	@echo "make test  - install, lint and run the test suite on SQLite and PostgreSQL 15 at once (CI)"
	@echo "make test-postgres - the whole suite on a throwaway PostgreSQL 15 server alone"
	@echo "make lint | css | bench"

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

# Servers and a browser the tests drive for real; Debian packages, installed only when missing.
TEST_DEBS := chromium nginx-light wrk gettext-base postgresql redis-server
test-deps:
	@missing=""; for p in $(TEST_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	MEEPO_DEBUG=1 $(PY) manage.py makemigrations --check --dry-run

# The suite on SQLite and on a throwaway PostgreSQL 15, two pytest processes side by side (own
# data dirs, output prefixed [sqlite] / [postgres]); fails when either fails. Tests that do not
# use the outer database (browser, deploy stacks, cluster) run once, split to even the two out:
# see tests/postgres/run.py and docs/deploy.md for the times.
test: venv test-deps lint css-check
	$(PY) -m tests.postgres.run --both

# The whole suite on PostgreSQL 15 alone: tests/postgres/run.py starts a throwaway server (temp
# dir, unprivileged user, loopback port), points MEEPO_DATABASE_URL at it and runs pytest.
test-postgres: venv test-deps
	$(PY) -m tests.postgres.run

# The stylesheet (Tailwind CSS 4 + DaisyUI 5) and vendored htmx, built from package-lock.json's
# exact versions into static/; the built files are committed so a Python-only box serves the site.
# `npm ci` refuses a lock file that lacks other platforms' optional Tailwind binaries (a registry
# mirror that serves only this platform's); `npm install` then installs the same locked versions.
css:
	npm ci --no-audit --no-fund --loglevel=error 2>/dev/null || npm install --no-audit --no-fund --loglevel=error
	npm run build

# CI fails when the committed build is stale (a template uses a class the committed CSS lacks).
css-check: css
	git diff --exit-code --stat static/dist/app.css static/vendor/htmx.min.js

# The demo runs in production mode (DEBUG off, gunicorn, whitenoise) with a secret key of its own,
# generated once into the git-ignored var/; exported MEEPO_* variables win. PORT=8001 make run
PORT ?= 8000
RUN_SECRET := var/.run-secret-key
run: venv
	@mkdir -p var && test -s $(RUN_SECRET) || $(PY) -c "import secrets; print(secrets.token_urlsafe(50))" > $(RUN_SECRET)
	@MEEPO_SECRET_KEY="$${MEEPO_SECRET_KEY:-$$(cat $(RUN_SECRET))}" \
	MEEPO_ALLOWED_HOSTS="$${MEEPO_ALLOWED_HOSTS:-localhost,127.0.0.1}" \
	MEEPO_SERVE_MEDIA="$${MEEPO_SERVE_MEDIA:-true}" \
	MEEPO_LOG_LEVEL="$${MEEPO_LOG_LEVEL:-WARNING}" \
	$(PY) manage.py demo --port $(PORT)

bench: venv
	@echo "see docs/benchmarks.md: $(PY) -m bench.<name>"
