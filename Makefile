# Two commands matter: `make demo` (the main job end to end on the embedded default) and `make test`.
# torch is installed first, alone: any later `torch` requirement (deepspeed, accelerate, ...) would otherwise
# resolve to a multi-GB CUDA build on a CPU machine. Everything else is pinned by constraints.txt.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0
PIP    := DS_BUILD_OPS=0 $(BIN)/python -m pip install --progress-bar off -c constraints.txt

.PHONY: demo test lint format clean image

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

# The CPU image (components/images/Dockerfile.cpu) with docker, or podman where no docker daemon answers.
# e.g. offline: make image ENGINE=podman BASE_IMAGE=localhost/ufvideo-base:bookworm-minbase \
#                 IMAGE_ARGS="-v /opt/wheels:/opt/wheels:ro --build-arg WHEELS=/opt/wheels"
ENGINE     ?= $(shell docker info >/dev/null 2>&1 && echo docker || echo podman)
IMAGE      ?= ghcr.io/ufvideo/ufvideo:0.1.0
BASE_IMAGE ?= python:3.11-slim-bookworm
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
IMAGE_ARGS ?=

image:
	$(ENGINE) build -f components/images/Dockerfile.cpu --build-arg BASE_IMAGE=$(BASE_IMAGE) \
	  --build-arg TORCH_INDEX=$(TORCH_INDEX) --build-arg GIT_COMMIT=$$(git rev-parse HEAD 2>/dev/null || echo unknown) \
	  $(IMAGE_ARGS) -t $(IMAGE) .

clean:
	rm -rf runs/demo .pytest_cache build *.egg-info
