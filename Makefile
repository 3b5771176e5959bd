# engagement-stream: `make demo` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo demo-serve web test lint unit integration faults soak bench-check run stack-up stack-down clean bench bench-profile docs docs-build docs-serve bench-restarts

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# uv (PyPI) installs from its wheel cache in seconds where pip takes about two minutes.
	$(BIN)/pip install --quiet --disable-pip-version-check uv==0.13.10
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev]'
	# The development tools (devtools/) are not part of the package; make them importable here.
	echo "$(CURDIR)" > "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/engagement-devtools.pth"
	touch $(STAMP)

install: $(STAMP)
	$(BIN)/engagement stack prepare

demo: install
	$(BIN)/engagement demo

# The demo, then the stack, the worker and the web page stay up until Ctrl-C.
demo-serve: install
	$(BIN)/engagement demo --serve

# The read-only web page against the configured Redis (see docs/guides/web-page.md).
web: install
	$(BIN)/engagement web

lint: $(STAMP)
	$(BIN)/ruff check stream devtools tests
	$(BIN)/ruff format --check stream devtools tests
	$(BIN)/mypy

# The test tiers (devtools/tiers.py says what each runs); each prints its counts and time.
TIERS := $(BIN)/python -m devtools.tiers

# No service started: the pure core, codecs, config, CLI and calibration maths.
unit: $(STAMP)
	$(TIERS) unit

# Real Kafka, Redis (one server and a cluster), Prometheus and Chromium; no fault suite.
integration: install
	$(TIERS) integration

# The fault suite at gate size (every kill point and outage it checks, small workloads).
faults: install
	$(TIERS) faults

# The gate CI runs: lint and types, the docs build, then the unit, integration and fault tiers.
test: install lint docs-build
	$(TIERS) unit integration faults

# The fault suite at ten times the gate's size and the properties at the nightly profile.
soak: install
	$(TIERS) soak

# The benchmark regression guard (a worker/raw ratio in one run): outside the gate.
bench-check: install
	$(TIERS) bench-check

# The documentation site (mkdocs.yml): the reference pages are generated from the code first.
docs: $(STAMP)
	$(BIN)/python -m devtools.docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The gate's build: the committed pages as they are (the unit tier fails on a stale one).
docs-build: $(STAMP)
	@start=$$(date +%s); NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict && \
	echo "docs build: $$(( $$(date +%s) - start )) s"

docs-serve: $(STAMP)
	$(BIN)/python -m devtools.docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

bench: install
	$(BIN)/engagement bench

bench-profile: install
	$(BIN)/engagement bench --profile

# Restart and rolling-restart timings (static membership), median of 5 rounds.
bench-restarts: install
	$(BIN)/python -m devtools.bench.restart_bench

run: install
	$(BIN)/engagement topics
	$(BIN)/engagement worker

stack-up: install
	$(BIN)/engagement stack up

stack-down: $(STAMP)
	$(BIN)/engagement stack down

clean:
	rm -rf $(VENV) site .demo .stack .bench .engagement-data .pytest_cache .mypy_cache .ruff_cache .artifacts
