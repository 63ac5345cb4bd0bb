# naslid — every target sets up its own virtual environment when needed.
SHELL := /bin/bash
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch/torchvision first, as exact builds: this machine serves them from local disk;
# the GPU image brings its own (pyproject.toml only lower-bounds them).
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
PROFILE ?= smoke
OUT ?= runs/local
# Tagged with the commit: an immutable name that naslid submit accepts (see images/naslid/Dockerfile).
IMAGE ?= naslid:$(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)

.PHONY: install run test test-all lint format compile bench image clean

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null || { echo "make: $(PY) not found (naslid needs Python 3.11; set PY=...)"; exit 1; }
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH_PINS)
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/naslid run --profile $(PROFILE) --out $(OUT)

test: $(STAMP)
	$(BIN)/python -m pytest

test-all: $(STAMP)
	$(BIN)/python -m pytest -m ''

lint: $(STAMP)
	$(BIN)/ruff check naslid components pipelines tests bench
	$(BIN)/ruff format --check naslid components pipelines tests bench

format: $(STAMP)
	$(BIN)/ruff format naslid components pipelines tests bench
	$(BIN)/ruff check --fix naslid components pipelines tests bench

compile: $(STAMP)
	$(BIN)/naslid compile --out pipelines/naslid.yaml

bench: $(STAMP)
	$(BIN)/python bench/lissnas.py
	$(BIN)/python bench/split_cost.py --quick
	$(BIN)/python bench/supernet_throughput.py --quick
	$(BIN)/python bench/transfer_throughput.py --quick

image:
	@command -v docker >/dev/null && docker info >/dev/null 2>&1 || { echo "make image: no Docker engine reachable here; build images/naslid/Dockerfile where one runs"; exit 1; }
	docker build -f images/naslid/Dockerfile -t $(IMAGE) .

clean:
	rm -rf $(VENV) runs .pytest_cache
