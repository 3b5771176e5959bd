# engagement-stream: `make demo` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo demo-serve web test lint unit integration soak run stack-up stack-down clean bench bench-profile bench-restarts

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
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

# The read-only web page against the configured Redis (see README "Web page").
web: install
	$(BIN)/engagement web

lint: $(STAMP)
	$(BIN)/ruff check stream devtools tests
	$(BIN)/ruff format --check stream devtools tests
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

integration: install
	$(BIN)/pytest tests/integration -q

test: install lint
	$(BIN)/pytest -q

# The fault suite at ten times the size run by `make test` (2M events, 200 SIGKILLs, ...).
soak: install
	FAULT_SCALE=$${FAULT_SCALE:-10} $(BIN)/pytest tests/integration/test_faults.py -q -s

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
	rm -rf $(VENV) .demo .stack .bench .engagement-data .pytest_cache .mypy_cache .ruff_cache .artifacts
