# The two commands of the quick start: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.edgepack-installed

.PHONY: setup demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	@# Venvs made before the cpu extra hold tensorflow-cpu and tensorflow in one folder: keep one.
	@if $(BIN)/pip show -q tensorflow-cpu 2>/dev/null; then echo "setup: replacing tensorflow-cpu + tensorflow by tensorflow"; \
		$(BIN)/pip uninstall -q -y tensorflow-cpu tensorflow; fi
	$(BIN)/pip install -q -e '.[cpu,dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	bash examples/digits/demo.sh

test: setup
	bash scripts/test-deps.sh
	$(BIN)/lint-imports
	@# Byte-compile once: the many edgepack processes the tests start (and their converter workers) then
	@# read edgepack's .pyc instead of compiling it each (~0.3 s a process where PYTHONDONTWRITEBYTECODE is set).
	$(BIN)/python -m compileall -q edgepack
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python benchmarks/evaluate_throughput.py
	$(BIN)/python benchmarks/cli_startup.py
	$(BIN)/python benchmarks/compression.py
	$(BIN)/python benchmarks/profile_fidelity.py
	$(BIN)/python benchmarks/estimate_accuracy.py
	$(BIN)/python benchmarks/accuracy_control.py

clean:
	rm -rf $(VENV) .venv-device .venv-base examples/digits/out dist benchmarks/.cache
