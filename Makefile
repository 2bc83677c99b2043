# Two commands matter: `make demo` (the main job end to end on the embedded default) and `make test`.
# torch is installed first, alone: any later `torch` requirement (deepspeed, accelerate, ...) would otherwise
# resolve to a multi-GB CUDA build on a CPU machine. Everything else is pinned by constraints.txt.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0
PIP    := DS_BUILD_OPS=0 $(BIN)/python -m pip install --progress-bar off -c constraints.txt

.PHONY: demo test lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --progress-bar off $(TORCH)

$(VENV)/.core: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e .
	touch $@

$(VENV)/.dev: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e '.[dev]'
	touch $@ $(VENV)/.core

demo: $(VENV)/.core
	$(BIN)/ufvideo demo --workdir runs/demo

test: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: $(VENV)/.dev
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(VENV)/.dev
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

clean:
	rm -rf runs/demo .pytest_cache build *.egg-info
