# Two entry points on a fresh machine: `make demo` and `make test`. Both create .venv on first use.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo_out

.PHONY: demo demo-quick test lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[onnx,tensorboard,hub,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/modistill demo --out $(DEMO_DIR)

demo-quick: $(STAMP)
	$(BIN)/modistill demo --out $(DEMO_DIR)-quick --quick

test: $(STAMP)
	$(BIN)/python -m pytest
	$(BIN)/ruff check src tests benchmarks

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(DEMO_DIR) $(DEMO_DIR)-quick
