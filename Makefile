# The two commands: `make scan` (set up, then scan the bundled example repository) and `make test`.
# `make test` runs `make lint` first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MULTITOOL_VERSION := 5.7.0
MULTITOOL := .tools/node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool

.PHONY: scan lint test bench tools docs clean

$(BIN)/checker: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# The example is meant to fail the gate: say so plainly, and end successfully unless the scan broke.
scan: $(BIN)/checker
	@$(BIN)/checker scan examples -r org-baseline --sarif-output results.sarif; code=$$?; \
	case $$code in \
	  0) echo "make scan: the gate passed (results.sarif written)";; \
	  1) echo "make scan: the gate FAILED on the example's deliberate violations, as intended (results.sarif written)";; \
	  *) echo "make scan: the scan itself did not complete (exit $$code)"; exit $$code;; \
	esac

$(MULTITOOL):
	mkdir -p .tools
	npm install --prefix .tools --no-save --no-audit --no-fund @microsoft/sarif-multitool-linux@$(MULTITOOL_VERSION)

tools: $(MULTITOOL)

# ruff's rules and mypy's strictness are set in pyproject.toml; the last line proves there is no import cycle.
lint: $(BIN)/checker
	$(BIN)/ruff check checker policies tests bench tools
	$(BIN)/mypy
	$(BIN)/python tools/import_cycles.py

test: lint $(BIN)/checker $(MULTITOOL)
	$(BIN)/python -m pytest -q

bench: $(BIN)/checker
	$(BIN)/python bench/bench.py

# policies/README.md and the README's policy table, written from the checks' metadata and docstrings and the
# bundled rulesets' controls (tests/policies/test_docs.py fails when they are stale).
docs: $(BIN)/checker
	$(BIN)/python tools/policy_docs.py --write

clean:
	rm -rf $(VENV) .tools build *.egg-info results.sarif
