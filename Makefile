# West Tek: `make demo` runs the suite on embedded defaults; `make test` runs every test.
# Both set up what they need (a .venv, node packages, Debian packages) on a fresh machine.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
JLPM := $(BIN)/jlpm
DEMO_DIR := .demo
# The build hook and jupyter-builder call jlpm and node tools by name.
export PATH := $(abspath $(BIN)):$(PATH)
DEMO_PORT ?= 8000
CHP_VERSION := 5.3.0

PY_SOURCES := westtek_core westtek_server_ext westtek_spawner westtek_hub hub_config images tests bench
LAB_SOURCES := $(shell find labextension -type f 2>/dev/null) package.json tsconfig.json

.PHONY: help demo demo-docker images docker-deps docker-daemon test-images test lint test-python test-ui check-node check-demo-ports install system-test-deps postgres-deps bench clean

help:
	@echo "make demo   set up and start the West Tek demo hub on http://127.0.0.1:$(DEMO_PORT)"
	@echo "make test   set up and run every test (lint, Python, UI, infra)"
	@echo "make demo-docker  the demo hub with each server in its own container (needs Docker)"
	@echo "make images build the notebook and hub images (westtek/notebook, westtek/hub)"
	@echo "make lint   ruff, mypy, eslint and prettier"
	@echo "make bench  run the benchmarks under bench/ (not part of make test; about an hour)"
	@echo "make clean  remove the venv, builds and demo state"

check-node:
	@command -v node >/dev/null 2>&1 || { echo "Node.js 20 or newer is needed to build the JupyterLab extension and run the proxy: install it (e.g. 'apt-get install nodejs npm') and run make again." >&2; exit 1; }
	@node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || { echo "Node.js $$(node --version) is too old: West Tek needs Node.js 20 or newer; upgrade it and run make again." >&2; exit 1; }
	@command -v npm >/dev/null 2>&1 || { echo "npm is missing: install it (e.g. 'apt-get install npm') and run make again." >&2; exit 1; }

# The virtual environment with the build tools the editable install needs without isolation.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.build-tools: $(BIN)/python
	$(BIN)/pip install --quiet "hatchling>=1.21" "hatch-jupyter-builder>=0.5" "hatch-nodejs-version>=0.3.2" editables "jupyterlab>=4.2,<5"
	@touch $@

# The prebuilt JupyterLab extension the wheel carries.
westtek_server_ext/labextension/static/style.js: $(VENV)/.build-tools $(LAB_SOURCES) | check-node
	$(JLPM) install
	$(JLPM) build:prod
	@touch $@

$(VENV)/.installed: pyproject.toml westtek_server_ext/labextension/static/style.js
	$(BIN)/pip install --quiet --no-build-isolation -e ".[test,lint]"
	$(BIN)/jupyter labextension develop --overwrite . >/dev/null
	@# the editable install writes install.json through the develop link into the build
	@# output, where the wheel would then hold it twice
	@rm -f westtek_server_ext/labextension/install.json
	@touch $@

$(BIN)/configurable-http-proxy: | $(BIN)/python check-node
	npm install --silent --no-audit --no-fund --prefix $(VENV)/chp configurable-http-proxy@$(CHP_VERSION)
	ln -sf ../chp/node_modules/.bin/configurable-http-proxy $@

install: $(VENV)/.installed $(BIN)/configurable-http-proxy

check-demo-ports:
	@for port in $(DEMO_PORT) 8001 8081 10101; do \
	  if (exec 3<>/dev/tcp/127.0.0.1/$$port) 2>/dev/null; then \
	    echo "Port $$port on 127.0.0.1 is already in use (another JupyterHub?): stop that program, or for port $(DEMO_PORT) run 'make demo DEMO_PORT=<free port>'." >&2; exit 1; \
	  fi; \
	done

demo: check-node check-demo-ports install
	@mkdir -p $(DEMO_DIR)
	@echo
	@echo "  West Tek demo hub: http://127.0.0.1:$(DEMO_PORT)/"
	@echo "  Labs: vault-13 (alice, bob), vault-101 (carol); hub admin: overseer"
	@echo "  Every demo user's password: westtek-demo     (Ctrl-C stops the hub)"
	@echo
	cd $(DEMO_DIR) && ../$(BIN)/jupyterhub -f ../hub_config/jupyterhub_config.py \
	  --JupyterHub.bind_url=http://127.0.0.1:$(DEMO_PORT)

# The same demo with the docker backend: each researcher's server is a container of the
# notebook image with their own home volume, restored from their lab's store at each start.
demo-docker: check-node check-demo-ports install images
	@mkdir -p $(DEMO_DIR)
	@echo
	@echo "  West Tek demo hub (docker backend): http://127.0.0.1:$(DEMO_PORT)/"
	@echo "  Labs: vault-13 (alice, bob), vault-101 (carol); hub admin: overseer"
	@echo "  Every demo user's password: westtek-demo     (Ctrl-C stops the hub)"
	@echo
	cd $(DEMO_DIR) && ../$(BIN)/jupyterhub -f ../hub_config/jupyterhub_docker_config.py \
	  --JupyterHub.bind_url=http://127.0.0.1:$(DEMO_PORT)

# -- container images ------------------------------------------------------------------------
# Debian's Docker engine, and debootstrap: the images' base is made from Debian's packages.
SUDO = $$( [ "$$(id -u)" = 0 ] || echo sudo )
SCIENCE_PACKAGES ?= numpy scipy pandas matplotlib
DOCKERD_LOG ?= /tmp/westtek-dockerd.log
docker-deps:
	@command -v dockerd >/dev/null 2>&1 && command -v debootstrap >/dev/null 2>&1 || { \
	  echo "Installing Debian's docker.io and debootstrap for the container images"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq docker.io debootstrap >/dev/null; }

# A Docker daemon that answers: Debian's dockerd is started in the background when none does.
docker-daemon: docker-deps
	@docker info >/dev/null 2>&1 || { \
	  echo "Starting Debian's dockerd in the background (log: $(DOCKERD_LOG))"; \
	  $(SUDO) setsid dockerd </dev/null >$(DOCKERD_LOG) 2>&1 & \
	  for i in $$(seq 60); do docker info >/dev/null 2>&1 && exit 0; sleep 1; done; \
	  echo "dockerd did not answer within 60 s: see $(DOCKERD_LOG)" >&2; exit 1; }

images: install docker-daemon
	$(BIN)/python images/build.py --science-packages "$(SCIENCE_PACKAGES)" --chp-version $(CHP_VERSION)

# The tests run real containers of the notebook image where a Docker daemon can run; where
# none can, those tests skip with the reason and everything else still runs.
test-images:
	@$(MAKE) --no-print-directory images || echo "make images failed (above): the container tests skip where no Docker daemon answers, and fail where one does"

# Debian packages the tests need: Chromium for the UI tests.
system-test-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the UI tests"; \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq chromium >/dev/null; }

# Debian's PostgreSQL server: the hub service's tests run against it (started on loopback).
postgres-deps:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null 2>&1 || { \
	  echo "Installing Debian's postgresql for the hub service's tests"; \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq postgresql >/dev/null; }

lint: install lint-infra
	$(BIN)/ruff check $(PY_SOURCES)
	$(BIN)/ruff format --check $(PY_SOURCES)
	$(BIN)/mypy
	$(JLPM) lint:check

# Real notebooks for the knowledge-base tests: the statsmodels sdist's examples, fetched
# once from the package index here, so the tests themselves never touch the network.
EXAMPLE_NOTEBOOKS := tests/.cache/example-notebooks/statsmodels/.complete
$(EXAMPLE_NOTEBOOKS): | $(VENV)/.installed
	$(BIN)/python -m tests.example_notebooks

# Test files run in parallel, one worker per core (up to 4): most tests wait on servers and
# subprocesses, so two workers on two cores take about 15 minutes where one took 25.
test-python: install postgres-deps test-images $(EXAMPLE_NOTEBOOKS) $(INFRA_DEPS)  # the AWS contract test synthesizes the stack
	$(BIN)/pytest --numprocesses=auto --maxprocesses=4 --dist=loadfile

test-ui: install system-test-deps
	WESTTEK_PYTHON=$(abspath $(BIN)/python) $(JLPM) test:ui

# infra/ (the AWS CDK app) has its own package.json: installed once, then linted, tested
# and synthesized (dev and prod) offline, without AWS credentials.
.PHONY: lint-infra test-infra
INFRA_DEPS := infra/node_modules/.package-lock.json
$(INFRA_DEPS): infra/package.json infra/package-lock.json | check-node
	npm ci --prefix infra --no-audit --no-fund --loglevel=error
	@touch $@

lint-infra: $(INFRA_DEPS)
	npm run --prefix infra lint

test-infra: $(INFRA_DEPS)
	npm test --prefix infra
	npm run --prefix infra synth

test: lint test-python test-ui test-infra

# Benchmarks are not tests: they time things against peers and write bench/README.md.
bench: install images
	@command -v restic >/dev/null 2>&1 || { \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq restic >/dev/null; }
	$(BIN)/python bench/snapshot_vs_restic.py --reps 3
	$(BIN)/python bench/drift.py
	$(BIN)/python bench/live_drift.py
	$(BIN)/python bench/kb.py
	$(BIN)/python bench/agent_answers.py
	$(BIN)/python bench/hub_load.py
	$(BIN)/python bench/spawner.py
	$(BIN)/python bench/soak.py
	$(BIN)/python bench/spawn_restore.py
	$(BIN)/python bench/images.py
	{ command -v chromium >/dev/null 2>&1 || { $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq chromium >/dev/null; }; } && WESTTEK_PYTHON=$(abspath $(BIN)/python) node bench/ui.mjs

clean:
	rm -rf $(VENV) $(DEMO_DIR) node_modules lib westtek_server_ext/labextension tsconfig.tsbuildinfo infra/node_modules infra/cdk.out
