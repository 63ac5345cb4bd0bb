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
# The one lock of Python pins (make lock writes it from the venv the tests run in).
LOCK := images/naslid/requirements.lock
# Tagged with the commit: an immutable name that naslid submit accepts (see images/naslid/Dockerfile).
IMAGE ?= naslid:$(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
# Caches outside the clone, keyed by their inputs: they survive a fresh clone on this machine.
NASLID_CACHE ?= /var/cache/naslid
WHEELHOUSE ?= $(NASLID_CACHE)/wheelhouse-$(shell sha256sum $(LOCK) | cut -c1-12)
WHEELHOUSE_PORT ?= 38471
# The base: a digest-pinned registry image for a cluster build (BASE=python:3.11-slim-bookworm@sha256:...),
# or by default the one make base-image builds from Debian packages (keyed by its recipe).
BASE ?= naslid-base:$(shell sha256sum images/base/build.sh | cut -c1-12)
# The image's OCI labels: where the source lives and the commit it was built from.
SOURCE ?= $(shell git remote get-url origin 2>/dev/null || echo unknown)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)

.PHONY: install run test test-all lint format compile bench lock wheelhouse base-image image test-containers clean

$(STAMP): pyproject.toml $(LOCK)
	@command -v $(PY) >/dev/null || { echo "make: $(PY) not found (naslid needs Python 3.11; set PY=...)"; exit 1; }
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@# a venv made before the lock has xgboost's GPU wheel, whose nvidia-nccl-cu12 overwrote
	@# torch's libnccl.so.2: remove both, then put back the NCCL the lock pins (torch's)
	@if $(BIN)/pip show -q nvidia-nccl-cu12 2>/dev/null; then \
	  $(BIN)/pip uninstall -y -q xgboost nvidia-nccl-cu12 && \
	  $(BIN)/pip install --quiet --force-reinstall --no-deps $$(grep -i '^nvidia-nccl' $(LOCK)); fi
	$(BIN)/pip install --quiet -c $(LOCK) $(TORCH_PINS)
	$(BIN)/pip install --quiet -c $(LOCK) -e '.[dev]'
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

# The lock from the venv the tests run in (after changing pyproject.toml: make install, make lock).
lock: $(STAMP)
	$(BIN)/python images/lock.py --out $(LOCK)

wheelhouse:
	@PY=$(PY) images/wheelhouse.sh $(LOCK) $(WHEELHOUSE)

base-image:
	@images/base/build.sh $(BASE)

image:
	@PY=$(PY) SOURCE=$(SOURCE) REVISION=$(REVISION) \
	  images/build-image.sh $(IMAGE) $(BASE) $(LOCK) $(WHEELHOUSE) $(WHEELHOUSE_PORT)

# The pipeline in real containers: starts a dockerd of its own, builds base and image, runs
# tests/test_containers.py (which may not skip here), stops dockerd (images/test-containers.sh).
test-containers: $(STAMP)
	@PY=$(PY) BIN=$(BIN) IMAGE=$(IMAGE) BASE=$(BASE) LOCK=$(LOCK) WHEELHOUSE=$(WHEELHOUSE) \
	  WHEELHOUSE_PORT=$(WHEELHOUSE_PORT) SOURCE=$(SOURCE) REVISION=$(REVISION) \
	  images/test-containers.sh

clean:
	rm -rf $(VENV) runs .pytest_cache
