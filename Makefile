# Aurora Features. `make demo` runs the main job end to end; `make test` runs every test.
# Both do all set-up themselves: venv, local stack (or Docker Compose), migrations, feast apply.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# stream/core/native.py decides what the mypyc build covers, and skips a build that is current.
NATIVE_SOURCES := $(wildcard stream/*.py stream/core/*.py)
# Made by every build attempt; whether the compiled modules are used is stream/core/native.py's call.
NATIVE := build/native/.attempted

.PHONY: help install native lock up down status migrate apply lint test demo replay bench bench-quick soak clean

help:            ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

install: $(STAMP) $(NATIVE) ## venv with the pinned dependencies (constraints.txt), aggregation compiled
$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python >= 3.11 is required (PYTHON=$(PYTHON))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $@

native: $(NATIVE) ## compile the aggregation with mypyc (stream/core/native.py); rebuilt when it changes
$(NATIVE): $(STAMP) $(NATIVE_SOURCES)
	@# No compiler, say: everything runs as Python, and the next change to the sources tries again.
	$(PY) -m stream native build || echo "mypyc build failed: the aggregation runs as Python"
	@mkdir -p $(@D) && touch $@

lock:            ## re-resolve the dependencies and rewrite constraints.txt
	$(PYTHON) -m venv --clear .lock-venv
	.lock-venv/bin/pip install -q '.[dev]'
	{ echo "# Exact versions for reproducible installs; regenerate with make lock."; \
	  .lock-venv/bin/pip freeze --exclude aurora-features; } > constraints.txt
	rm -rf .lock-venv

# REDIS_CLUSTER=1 (make up REDIS_CLUSTER=1) adds the local 3-master Redis Cluster; the tests and
# benchmarks that use it start it themselves, and `make down` stops it either way.
# OIDC=1 adds the OpenID Connect provider the feature server's permissions are tested with, TLS=1
# the encrypted Postgres and Redis (docs/security.md); their tests start them themselves too.
up: install      ## start Kafka, PostgreSQL and Redis and wait until they answer (idempotent)
	$(if $(filter-out 0 false no,$(REDIS_CLUSTER)),AURORA_STACK_REDIS_CLUSTER=true) \
	$(if $(filter-out 0 false no,$(OIDC)),AURORA_STACK_OIDC=true) \
	$(if $(filter-out 0 false no,$(TLS)),AURORA_STACK_TLS=true) $(PY) -m devstack up

down:            ## stop exactly what `make up` started
	@if [ -x $(PY) ]; then $(PY) -m devstack down; else echo "nothing to stop (no venv)"; fi

status: install  ## what runs where
	$(PY) -m devstack status

migrate: up      ## apply the versioned SQL migrations
	$(PY) -m stream migrate

apply: migrate   ## register the feature repository with Feast (feast apply)
	$(PY) -m stream feast apply

lint: install    ## ruff and mypy --strict
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: apply lint ## every test against the real stack
	$(PY) -m pytest

demo: apply      ## the main job end to end: a day of traffic through a real worker
	$(PY) -m stream demo

replay: apply    ## recompute feature history (ARGS="--from 2026-11-01 --to 2026-11-08 --online")
	$(PY) -m stream replay $(ARGS)

bench: apply     ## every benchmark beside its baseline: results, chart, bench/README.md table
	$(PY) -m bench

bench-quick: apply ## the same benchmarks, small (under 3 minutes)
	$(PY) -m bench --quick

soak: apply      ## 10 minutes at 80% of the measured rate: RSS and lag must not grow
	$(PY) -m bench.soak $(ARGS)

clean:           ## stop the stack, remove its data and the venv
	@if [ -x $(PY) ]; then $(PY) -m devstack clean; fi
	rm -rf $(VENV) .stack build
