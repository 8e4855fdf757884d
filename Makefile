# Commands of nearby. `make test` is the one test command; `make demo` starts
# everything on loopback and prints example queries; `make stop` ends it all.
#
# Every tool runs from .venv. The servers started here keep their files under
# var/: data in var/pg and var/redis, pidfiles in var/run, logs in var/log.

PYTHON ?= python3
PORT ?= 8000
COUNT ?= 100000

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-installed
VAR := $(CURDIR)/var
RUN := $(VAR)/run
LOG := $(VAR)/log
GUNICORN_PID := $(RUN)/gunicorn.pid
WORKER_PID := $(RUN)/celery-worker.pid
BEAT_PID := $(RUN)/celery-beat.pid
BEAT_SCHEDULE := $(VAR)/celery/beat-schedule

# `down` needs no third-party package: it also runs before the venv exists.
SERVICES_PYTHON = $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))

# Shell test: the pidfile $(1) names a live process.
running = [ -f $(1) ] && kill -0 "$$(cat $(1))" 2>/dev/null

# Stop the process of pidfile $(1), called $(2): TERM, then KILL after 30 s.
define stop_pidfile
	@if $(call running,$(1)); then \
	  pid=$$(cat $(1)); echo "stopping $(2) (pid $$pid)"; kill -TERM $$pid; \
	  for i in $$(seq 150); do kill -0 $$pid 2>/dev/null || break; sleep 0.2; done; \
	  if kill -0 $$pid 2>/dev/null; then echo "$(2) ignored TERM: killing it"; \
	    kill -KILL $$pid; fi; \
	fi; rm -f $(1)
endef

.PHONY: venv services demo stop test bench fmt clean

venv: $(STAMP)

# Reinstalls only when a requirements file is newer than the stamp.
$(STAMP): requirements.txt requirements-dev.txt
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
	  -r requirements-dev.txt
	touch $@

services: venv
	$(BIN)/python scripts/devservices.py up

demo: services
	$(BIN)/python load_data.py --count $(COUNT) --until-total
	@# Exit status 3: a refresh by the running worker holds the lock.
	$(BIN)/python worker.py refresh || [ $$? -eq 3 ]
	mkdir -p $(RUN) $(LOG) $(dir $(BEAT_SCHEDULE))
	@if $(call running,$(GUNICORN_PID)); then echo "gunicorn already runs"; else \
	  if (exec 3<>/dev/tcp/127.0.0.1/$(PORT)) 2>/dev/null; then \
	    echo "port $(PORT) is taken by another program: run make demo PORT=<free port>"; \
	    exit 1; fi; \
	  echo "starting gunicorn on 127.0.0.1:$(PORT)"; \
	  GUNICORN_BIND=127.0.0.1:$(PORT) $(BIN)/gunicorn -c gunicorn.conf.py \
	    --daemon --pid $(GUNICORN_PID) --error-logfile $(LOG)/gunicorn.log \
	    --capture-output web:app; \
	  for i in $$(seq 50); do $(call running,$(GUNICORN_PID)) && break; sleep 0.2; done; \
	  if ! $(call running,$(GUNICORN_PID)); then \
	    echo "gunicorn did not start; the end of $(LOG)/gunicorn.log:"; \
	    tail -n 20 $(LOG)/gunicorn.log; exit 1; fi; fi
	@if $(call running,$(WORKER_PID)); then echo "celery worker already runs"; else \
	  echo "starting celery worker"; \
	  $(BIN)/celery --workdir $(CURDIR) -A worker worker --detach \
	    --pidfile $(WORKER_PID) --logfile $(LOG)/celery-worker.log \
	    --loglevel INFO; fi
	@if $(call running,$(BEAT_PID)); then echo "celery beat already runs"; else \
	  echo "starting celery beat"; \
	  $(BIN)/celery --workdir $(CURDIR) -A worker beat --detach \
	    --pidfile $(BEAT_PID) --logfile $(LOG)/celery-beat.log \
	    --schedule $(BEAT_SCHEDULE) --loglevel INFO; fi
	$(BIN)/python scripts/demo_urls.py --port $(PORT)

stop:
	$(call stop_pidfile,$(GUNICORN_PID),gunicorn)
	$(call stop_pidfile,$(BEAT_PID),celery beat)
	$(call stop_pidfile,$(WORKER_PID),celery worker)
	@if [ -d $(VAR) ]; then $(SERVICES_PYTHON) scripts/devservices.py down; fi

test: services
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/pytest

# Not part of `make test`: seeds its own databases (1,000,000 profiles and a
# 100,000 baseline; 5,000,000 with BENCH_ARGS=--with-5m) and runs for minutes.
# Installs wrk, redis-benchmark and pgbench with apt-get when they are missing.
bench: services
	$(BIN)/python scripts/devservices.py tools
	$(BIN)/python bench/suite.py $(BENCH_ARGS)

fmt: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean: stop
	rm -rf $(VAR)
