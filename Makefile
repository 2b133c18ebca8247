# execgate — every routine task is one `make` target. `make help` lists them.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv run run-tiers test test-fast screenshot check lint typecheck protos check-generated buf lint-deploy dist check-wheel test-pythons bench bench-short bench-scaling abuse clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH" >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP) ## create .venv and install execgate with its dev tools

run: $(STAMP) ## run the product as on one box: demo data in SQLite, execgate serve --workers auto, examples printed
	$(PY) -m scripts.run_local

run-tiers: $(STAMP) ## the same with the two tiers: gateway and service as two processes
	$(PY) -m scripts.run_local --tiers

test: $(STAMP) ## run the whole test suite (PostgreSQL tests run when initdb/pg_ctl are installed)
	$(PY) -m pytest

test-fast: $(STAMP) ## the tests that start no process (no servers, CLIs or PostgreSQL): -m "not slow"
	$(PY) -m pytest -m "not slow"

screenshot: $(STAMP) ## retake docs/viewer.png, the README's picture of the viewer (needs chromium)
	EXECGATE_UI_SCREENSHOT=docs/viewer.png $(PY) -m pytest -q tests/gateway/ui/test_viewer_screenshot.py

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

lint-deploy: $(STAMP) ## hadolint the Dockerfile; validate deploy/compose.yaml and the Kubernetes manifests offline
	$(VENV)/bin/hadolint Dockerfile
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.compose-spec deploy/compose.yaml
	$(VENV)/bin/kubernetes-validate --strict --quiet --kubernetes-version 1.33.0 $$(find deploy/kubernetes -name '*.yaml' ! -name kustomization.yaml | sort)

check: lint typecheck check-generated lint-deploy ## every static check CI runs

dist: $(STAMP) ## build the sdist and the wheel into dist/
	$(PY) -m build --outdir dist .

check-wheel: $(STAMP) ## build sdist + wheel, install the wheel in a clean venv outside the checkout, run it
	$(PY) -m scripts.check_wheel --python $(PYTHON)

test-pythons: $(STAMP) ## the fast tests and the wheel check on every other supported Python found here
	PY=$(PY) bash scripts/test_pythons.sh

bench: $(STAMP) ## the full benchmark (several minutes; see bench/README.md)
	$(PY) -m bench.run

bench-short: $(STAMP) ## a seconds-long benchmark run that proves the harness works
	$(PY) -m bench.run --short
	$(PY) -m bench.scaling --short
	$(PY) -m bench.watchers --short
	$(PY) -m bench.watchers --short --source library

bench-scaling: $(STAMP) ## throughput by --workers, single-process and two tiers, vs the peer (~7 minutes)
	$(PY) -m bench.scaling

abuse: $(STAMP) ## a bounded abuse run on loopback (connection caps, timeouts, shedding); fails on a missed target
	$(PY) -m bench.abuse

clean: ## remove the venv, caches and local data
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache var dist build
