# MediaRouter: `make run` starts everything on the embedded default; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export PORT
# hypothesis (the property tests, schemathesis) keeps its files under .var/, not in the checkout
export HYPOTHESIS_STORAGE_DIRECTORY ?= $(CURDIR)/.var/hypothesis

.PHONY: run dev test lint format migrate superuser clean bench

$(VENV)/.installed: requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit("MediaRouter needs Python 3.11 or newer") if sys.version_info < (3, 11) else None'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

## run: install, migrate, collect static files, and start web (gunicorn) + worker + beat under
##      supervisord at http://127.0.0.1:$(PORT); a process that dies is restarted; Ctrl-C stops all
##      (mediarouter/run.py; tests/core/test_make_run.py runs exactly this recipe)
run: $(VENV)/.installed
	exec $(PY) -m mediarouter.run

## dev: the same with Django's runserver (autoreload) and DEBUG on, for working on the code
dev: $(VENV)/.installed
	exec $(PY) -m mediarouter.run --dev

## test: the whole suite (embedded default unless DATABASE_URL / REDIS_URL are set)
test: $(VENV)/.installed-dev
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

migrate: $(VENV)/.installed
	$(PY) manage.py migrate --noinput

superuser: $(VENV)/.installed
	$(PY) manage.py createsuperuser

## bench: every benchmark in bench/ (needs PostgreSQL and Redis on 127.0.0.1; see bench/README.md)
bench: $(VENV)/.installed-dev
	@for b in api_overhead job_throughput download pages load_drill; do $(PY) bench/$$b.py $(BENCH_ARGS) || exit 1; done

## screenshots: regenerate docs/screenshots/ (the README's pictures) from the browser journey; the
##      test suite itself never writes them (needs Debian's chromium)
.PHONY: screenshots
screenshots: $(VENV)/.installed-dev
	MEDIAROUTER_SCREENSHOTS=1 $(PY) -m pytest tests/browser/test_team_journey.py::test_team_journey tests/browser/test_batch_journey.py tests/browser/test_share_link.py -q

clean:
	rm -rf .var/test .pytest_cache
