# `make run`: set up from nothing and run the pipeline on params.yaml. `make test`: the tests.
# Installs go through requirements.lock, the exact versions the committed results were made with.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
SHARED_DATA ?= ../shared/data

CORE_TESTS := tests/test_package.py tests/test_sampling.py tests/test_scores.py tests/test_trainer.py tests/test_selector.py \
	tests/test_phases.py tests/test_costmodel.py tests/test_readme.py

.PHONY: install data run rerun test test-core lock bench gpu-wheels experiment
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements.lock -e '.[pipeline,dev]'
	touch $@

# The pipeline's environment as it is now -> requirements.lock (after changing a version on purpose).
lock: install
	{ sed -n '1,2p' requirements.lock; $(BIN)/python -m pip freeze --exclude-editable | grep -v '^isample'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

# The core alone, as a library user installs it (torch only), in its own venv: make test-core PYTHON=python3.12
CORE_VENV ?= .venv-core
test-core:
	test -x $(CORE_VENV)/bin/python || $(PYTHON) -m venv $(CORE_VENV)
	$(CORE_VENV)/bin/python -m pip install -q -e . pytest
	$(CORE_VENV)/bin/python -m pytest -q $(CORE_TESTS)

# Offline machines: make the local CIFAR archives visible under data/raw/ (see docs/data.md).
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

# The tests on two workers (pytest-xdist), each process with one thread so that the two share the
# cores instead of fighting over them; the pipeline's tests each take a clone of their own kind (fresh, on a baseline, multi-process).
test: install data
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadgroup

# One of the notebook's experiments with the GPU recipe (recipes/gpu.yaml, docs/experiments.md):
# make experiment E=1 ARGS="--seeds 0 1 2 --peers"
experiment: install data
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m recipes $(E) $(ARGS)

bench: install data
	$(BIN)/python -m benchmarks.sampler_overhead
	$(BIN)/python -m benchmarks.presample_forward
	$(BIN)/python -m benchmarks.train_throughput
	$(BIN)/python -m benchmarks.ddp_scaling

# Wheels for benchmarks/gpu_check.sh on a GPU machine with no package index (Python 3.12, x86-64 Linux):
# pydantic and what it needs, at the lock's versions. make gpu-wheels GPU_PYTHON=3.11 for another Python.
GPU_PYTHON ?= 3.12
GPU_WHEELS := pydantic pydantic_core annotated-types typing-inspection
gpu-wheels: install
	$(BIN)/python -m pip download -q --no-deps --only-binary=:all: --python-version $(GPU_PYTHON) --implementation cp \
		--platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
		$(foreach name,$(GPU_WHEELS),$$(grep -i '^$(name)==' requirements.lock))
