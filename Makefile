# MediaRouter: `make run` starts everything on the embedded default; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export PORT

.PHONY: run test lint format migrate superuser clean bench

$(VENV)/.installed: requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit("MediaRouter needs Python 3.11 or newer") if sys.version_info < (3, 11) else None'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

## run: install, migrate, and start web + worker + beat at http://127.0.0.1:$(PORT) (Ctrl-C stops all)
run: $(VENV)/.installed
	$(PY) manage.py migrate --noinput
	@echo "MediaRouter on http://127.0.0.1:$(PORT)/ (sign up there; Ctrl-C stops web, worker and beat)"
	$(VENV)/bin/honcho -f Procfile.dev start

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

clean:
	rm -rf .var/test .pytest_cache
