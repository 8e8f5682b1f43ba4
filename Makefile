# Photohead: `make demo` (set up + reconstruct the sample photo) and `make test` (every test).
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU-only machines get the CPU build of torch ("+cpu" local version), never a multi-GB CUDA build;
# a machine with an NVIDIA driver gets the default (CUDA) build.
TORCH_SPEC ?= $(shell command -v nvidia-smi >/dev/null 2>&1 && echo "torch==2.13.0" || echo "torch==2.13.0+cpu")
# ../shared/models (development machines, CI) joins the model search path when it exists.
SHARED_MODELS := $(abspath ../shared/models)
export PHOTOHEAD_MODEL_PATH := $(PHOTOHEAD_MODEL_PATH)$(if $(wildcard $(SHARED_MODELS)),$(if $(PHOTOHEAD_MODEL_PATH),:)$(SHARED_MODELS))
OUT ?= out/demo
PYTEST_ARGS ?= -m "not slow"

.PHONY: demo test test-all venv extension bench clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade "pip>=23.2"
	$(PY) -m pip install "$(TORCH_SPEC)"
	$(PY) -m pip install -e ".[test,formats,train,blender]"
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(PY) -m backend.cli reconstruct --sample grace_hopper -o $(OUT) --blend
	@echo "Demo outputs in $(OUT)/ (open preview.png)"

test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

test-all: venv
	$(PY) -m pytest -m ""

extension: venv
	$(PY) -m addon.build

bench: venv
	$(PY) -m benchmarks.run_all

clean:
	rm -rf $(VENV) out dist build *.egg-info
