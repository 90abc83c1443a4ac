# The README's commands. `make run` and `make test` each build .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip

.PHONY: run test test-pgbouncer test-redis-cluster bench lint screenshots install-run install-test chromium pgbouncer clean

run: $(VENV)/.run-installed
	$(PY) -m portal.devserver

test: $(VENV)/.test-installed chromium pgbouncer
	$(PY) -m pytest -q $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-pgbouncer
	$(MAKE) --no-print-directory test-redis-cluster

# The isolation and tenancy suites again, every connection of the app role through a
# PgBouncer in transaction pooling that the tests start (tests/conftest.py).
test-pgbouncer: $(VENV)/.test-installed pgbouncer
	@if [ -x /usr/sbin/pgbouncer ]; then PORTAL_TEST_PGBOUNCER=1 $(PY) -m pytest -q $(PYTEST_ARGS) tests/isolation tests/tenancy; \
	else echo "make test-pgbouncer: skipped, Debian's pgbouncer is not installed (make installs it when run as root)"; fi

# The pictures in README.md and docs/, taken again by the browser test that checks those pages.
screenshots: $(VENV)/.test-installed chromium
	PORTAL_SCREENSHOTS=docs/screenshots $(PY) -m pytest -q tests/browser/test_screenshots.py

lint: $(VENV)/.test-installed
	$(VENV)/bin/ruff check .

bench: $(VENV)/.test-installed
	$(PY) bench/rls_tax.py

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.run-installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q -e '.[embedded]'
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q -e '.[embedded,test]'
	touch $@ $(VENV)/.run-installed

# Browser tests drive Chromium: Debian's package when we are root, else Playwright's.
chromium:
	@if [ -n "$$PORTAL_CHROMIUM" ] || [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get install -y -q chromium >/dev/null || \
	     (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null); \
	else $(PY) -m playwright install chromium; fi

# The suites that use Redis the most, with the portal's keys on a Redis Cluster of three
# masters that the tests start (Debian's redis-server; the job queue stays on a plain Redis).
test-redis-cluster: $(VENV)/.test-installed
	@if [ -x /usr/bin/redis-server ] && [ -x /usr/bin/redis-cli ]; then PORTAL_TEST_REDIS_CLUSTER=1 $(PY) -m pytest -q \
	  $(PYTEST_ARGS) tests/isolation tests/tenancy tests/quotas tests/analytics tests/auth; \
	else echo "make test-redis-cluster: skipped, Debian's redis-server is not installed"; fi

# Debian's PgBouncer, for the tests that run behind it (installed when we are root).
pgbouncer:
	@if [ -x /usr/sbin/pgbouncer ] || [ "$$(id -u)" != 0 ]; then :; \
	else apt-get install -y -q pgbouncer >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null && apt-get install -y -q pgbouncer >/dev/null); fi

clean:
	rm -rf $(VENV) instance
