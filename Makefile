# engagement-stream: `make demo` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
KERNEL := $(VENV)/.kernel
# The compiled kernel's build cache lives outside the checkout, so a fresh clone reuses it.
KERNEL_TARGET ?= $(HOME)/.cache/engagement-stream/kernel-target
CARGO  ?= $(shell command -v cargo 2>/dev/null || (test -x $(HOME)/.cargo/bin/cargo && echo $(HOME)/.cargo/bin/cargo))

.PHONY: install demo demo-serve web test lint unit integration faults soak bench-check run stack-up stack-down clean bench bench-profile docs docs-build docs-serve bench-restarts

$(STAMP): pyproject.toml kernel/requirements-build.txt
	$(PYTHON) -m venv $(VENV)
	# uv (PyPI) installs from its wheel cache in seconds where pip takes about two minutes.
	$(BIN)/pip install --quiet --disable-pip-version-check uv==0.13.10
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev]' -r kernel/requirements-build.txt
	# The development tools (devtools/) are not part of the package; make them importable here.
	echo "$(CURDIR)" > "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/engagement-devtools.pth"
	touch $(STAMP)

# The compiled per-event kernel (kernel/, Rust through PyO3, built by maturin) into the
# virtualenv; without a Rust toolchain the pure-Python core runs (ENGAGEMENT_KERNEL=auto).
$(KERNEL): $(STAMP) kernel/Cargo.toml kernel/Cargo.lock kernel/pyproject.toml $(wildcard kernel/src/*.rs)
	@if [ -z "$(CARGO)" ]; then \
	  echo "kernel: no cargo found, so the compiled kernel is not built and the pure-Python core runs."; \
	  echo "kernel: to build it, install Rust >= 1.85 (rustup, or a distribution's rustc/cargo that new;"; \
	  echo "kernel: Debian 12's own cargo is too old) and run make install again."; \
	else \
	  start=$$(date +%s); \
	  PATH="$$(dirname $(CARGO)):$$PATH" CARGO_TARGET_DIR=$(KERNEL_TARGET) VIRTUAL_ENV=$(CURDIR)/$(VENV) \
	    $(BIN)/maturin develop --quiet --release --manifest-path kernel/Cargo.toml && \
	  echo "kernel: built in $$(( $$(date +%s) - start )) s" && touch $(KERNEL); \
	fi

install: $(STAMP) $(KERNEL)
	$(BIN)/engagement stack prepare

demo: install
	$(BIN)/engagement demo

# The demo, then the stack, the worker and the web page stay up until Ctrl-C.
demo-serve: install
	$(BIN)/engagement demo --serve

# The read-only web page against the configured Redis (see docs/guides/web-page.md).
web: install
	$(BIN)/engagement web

lint: $(STAMP) $(KERNEL)
	$(BIN)/ruff check stream devtools tests
	$(BIN)/ruff format --check stream devtools tests
	$(BIN)/mypy

# The test tiers (devtools/tiers.py says what each runs); each prints its counts and time.
TIERS := $(BIN)/python -m devtools.tiers

# No service started: the pure core, codecs, config, CLI and calibration maths.
unit: $(STAMP) $(KERNEL)
	$(TIERS) unit

# Real Kafka, Redis (one server and a cluster), Prometheus and Chromium; no fault suite.
integration: install
	$(TIERS) integration

# The fault suite at gate size (every kill point and outage it checks, small workloads).
faults: install
	$(TIERS) faults

# The gate CI runs: lint and types, the docs build, then the unit, integration and fault tiers.
test: install lint docs-build
	@$(BIN)/python -c 'import engagement_kernel' 2>/dev/null || { echo "make test: the compiled \
	kernel is not built (make install builds it where Rust's cargo is found); the gate needs \
	it, or its differential tests would be skipped"; exit 1; }
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
