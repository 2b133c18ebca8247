# execgate — every routine task is one `make` target. `make help` lists them.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv run test check lint typecheck protos check-generated buf bench bench-short bench-scaling abuse clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH" >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP) ## create .venv and install execgate with its dev tools

run: $(STAMP) ## run the product: SQLite store seeded with demo data, service and gateway, examples printed
	$(PY) -m scripts.run_local

test: $(STAMP) ## run the whole test suite (PostgreSQL tests run when initdb/pg_ctl are installed)
	$(PY) -m pytest

lint: $(STAMP) ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP) ## mypy --strict over the packages, tests, bench and scripts
	$(VENV)/bin/mypy

protos: $(STAMP) ## regenerate gen/ and third_party/ from protos/
	$(PY) -m scripts.gen_protos

check-generated: protos ## fail if the committed generated code differs from `make protos`
	git diff --exit-code -- gen third_party tests/gen
	@test -z "$$(git status --porcelain -- gen third_party tests/gen)" || { git status --porcelain -- gen third_party tests/gen; echo "untracked generated files" >&2; exit 1; }

buf: ## buf lint, format and breaking (needs the buf CLI, see .ci/run)
	bash scripts/buf_checks.sh

check: lint typecheck check-generated ## every static check CI runs

bench: $(STAMP) ## the full benchmark (several minutes; see bench/README.md)
	$(PY) -m bench.run

bench-short: $(STAMP) ## a seconds-long benchmark run that proves the harness works
	$(PY) -m bench.run --short
	$(PY) -m bench.scaling --short
	$(PY) -m bench.watchers --short
	$(PY) -m bench.watchers --short --source library

bench-scaling: $(STAMP) ## throughput by --workers, single-process and two tiers, vs the peer (~5 minutes)
	$(PY) -m bench.scaling

abuse: $(STAMP) ## a bounded abuse run on loopback (connection caps, timeouts, shedding); fails on a missed target
	$(PY) -m bench.abuse

clean: ## remove the venv, caches and local data
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache var
