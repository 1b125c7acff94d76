# Two entry points on a fresh machine: `make demo` and `make test`. Both create .venv on first use.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo_out

.PHONY: demo demo-quick demo-seeds test lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[onnx,tensorboard,hub,tune,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/modistill demo --out $(DEMO_DIR)

demo-quick: $(STAMP)
	$(BIN)/modistill demo --out $(DEMO_DIR)-quick --quick

# Five held-out seeds (200-204, each about as long as `make demo`), the mean ± sd summary with the claims, and the
# README's results section.
demo-seeds: $(STAMP)
	$(BIN)/modistill demo --seeds --out demo_seeds --readme README.md

test: $(STAMP)
	$(BIN)/python -m pytest
	$(BIN)/ruff check src tests benchmarks

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(DEMO_DIR) $(DEMO_DIR)-quick
