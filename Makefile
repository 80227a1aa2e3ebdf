# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=
# Tests run in parallel processes (pytest-xdist): most of their time is waiting on
# servers and subprocesses. PYTEST_WORKERS=0 runs them in this process.
PYTEST_WORKERS ?= 3
XDIST := $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist worksteal)
# PostgreSQL server used for the second test run (a scratch database is created per run).
# That run leaves out the tests that cannot depend on the database (tests/conftest.py).
TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: install run test test-sqlite test-postgres test-celery lint bench system-deps screenshots clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip >/dev/null 2>&1 || true
	$(BIN)/pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# Byte-compile our own modules: an editable install leaves that to the first import,
# which cannot write it where PYTHONDONTWRITEBYTECODE is set, so every process (each
# test's servers and CLI calls) would compile them again. Up-to-date files are skipped.
install: $(STAMP)
	$(BIN)/python -m compileall -q src

run: install
	$(BIN)/dataferry serve

# Debian packages the tests and benchmarks use, installed only when missing.
system-deps:
	@missing=""; \
	command -v rclone >/dev/null 2>&1 || missing="$$missing rclone"; \
	test -x /usr/sbin/sshd || missing="$$missing openssh-server"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing:$$missing"; \
	    (apt-get install -y -q $$missing >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q $$missing >/dev/null)) \
	    || echo "could not install$$missing; tests that need them skip"; \
	  else echo "not root or no apt-get: missing$$missing (tests that need them skip)"; fi; \
	fi

test: install system-deps test-sqlite test-postgres test-celery

test-sqlite: install
	$(BIN)/python -m pytest $(XDIST) $(PYTEST_ARGS)

# Under CI=true this run must happen; elsewhere it skips with a reason if no server answers.
test-postgres: install
	DATAFERRY_TEST_POSTGRES_URL=$(TEST_POSTGRES_URL) $(BIN)/python -m pytest $(XDIST) $(PYTEST_ARGS)

# The job tests again with executor=celery: PostgreSQL, real `dataferry worker` processes,
# Redis (DATAFERRY_TEST_BROKER_URL, default redis://127.0.0.1:6379/7) and a RabbitMQ smoke run.
test-celery: install
	DATAFERRY_TEST_POSTGRES_URL=$(TEST_POSTGRES_URL) DATAFERRY_TEST_EXECUTOR=celery \
	  $(BIN)/python -m pytest $(XDIST) -m "executors or celery_only" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: install system-deps
	$(BIN)/python bench/transfer_local.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/datasets.py
	$(BIN)/python bench/datasets_integrity.py
	$(BIN)/python bench/transfer_sftp.py
	$(BIN)/python bench/sinks.py
	$(BIN)/python bench/jobs.py
	$(BIN)/python bench/dashboard_jobs.py
	$(BIN)/python bench/replication.py

# Browser tests again, saving the dashboard's pages to docs/screenshots/ (shown in the README).
screenshots: install system-deps
	DATAFERRY_SCREENSHOTS=1 $(BIN)/python -m pytest tests/e2e -q

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
