# `make run`: set up from nothing and run the pipeline on params.yaml. `make test`: the tests.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
SHARED_DATA ?= ../shared/data

.PHONY: install data run rerun test bench
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

# Offline machines: make the local CIFAR archives visible under data/raw/ (see README).
data:
	mkdir -p data/raw
	if [ -d $(SHARED_DATA) ]; then for f in $(SHARED_DATA)/*.tar.gz; do \
		[ -e data/raw/$$(basename $$f) ] || ln -s $$(realpath $$f) data/raw/; done; fi

# DVC stages call `python`: the venv's, whether or not it is activated. `run` reruns only what is out
# of date (nothing on a fresh clone: the committed results match the code and params); `rerun`
# reruns every stage on this machine's hardware.
run: install data
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

rerun: install data
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro -f

test: install data
	$(BIN)/python -m pytest

bench: install data
	$(BIN)/python -m benchmarks.sampler_overhead
	$(BIN)/python -m benchmarks.presample_forward
	$(BIN)/python -m benchmarks.train_throughput
