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
# Clean Blender Pythons for the add-on tests: only bpy and Blender's numpy, the oldest and the
# newest release the manifest claims (blender_tests run in-process on both; test_installed_zip
# installs the linux zip into each). Blender 4.2 to 5.0 bundle numpy 1.26.4.
BPY_OLDEST ?= 4.2.23
BPY_NEWEST ?= 5.0.1
BPY_NUMPY ?= 1.26.4
BPY42_SITE := $(CURDIR)/.venv-bpy42/lib/python3.11/site-packages
# Zip-level tests run once (they start their own clean Blenders of both versions).
ZIP_TESTS := --ignore=blender_tests/test_installed_zip.py --ignore=blender_tests/test_platform_zips.py

.PHONY: demo test test-all venv mediapipe bpy-venvs extension bench clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade "pip>=23.2"
	$(PY) -m pip install "$(TORCH_SPEC)"
	$(PY) -m pip install -e ".[test,formats,train,blender]"
	touch $@

venv: $(VENV)/.installed

# MediaPipe's face detector + Face Mesh weights for the default detector (auto): the pinned wheel,
# checked by sha256; a no-op when they are installed already.
mediapipe: venv
	$(PY) -m backend.cli models fetch mediapipe

.venv-bpy42/.installed: Makefile $(VENV)/.installed
	rm -rf $(@D) && $(PYTHON) -m venv --without-pip $(@D)
	$(PY) -m pip --python $(@D)/bin/python install "bpy==$(BPY_OLDEST)" "numpy==$(BPY_NUMPY)"
	touch $@

.venv-bpy50/.installed: Makefile $(VENV)/.installed
	rm -rf $(@D) && $(PYTHON) -m venv --without-pip $(@D)
	$(PY) -m pip --python $(@D)/bin/python install "bpy==$(BPY_NEWEST)" "numpy==$(BPY_NUMPY)"
	touch $@

bpy-venvs: .venv-bpy42/.installed .venv-bpy50/.installed

demo: venv mediapipe
	$(PY) -m backend.cli reconstruct --sample grace_hopper -o $(OUT) --blend
	@echo "Demo outputs in $(OUT)/ (open preview.png)"

# Every test on bpy 5.0 (the venv's), then the add-on tests again on bpy 4.2 (its site-packages first).
test: venv mediapipe bpy-venvs
	$(PY) -m pytest $(PYTEST_ARGS)
	PYTHONPATH=$(BPY42_SITE) $(PY) -m pytest blender_tests $(PYTEST_ARGS) $(ZIP_TESTS)

test-all: venv mediapipe bpy-venvs
	$(PY) -m pytest -m ""
	PYTHONPATH=$(BPY42_SITE) $(PY) -m pytest blender_tests -m "" $(ZIP_TESTS)

extension: venv mediapipe
	$(PY) -m addon.build

bench: venv
	$(PY) -m benchmarks.run_all

clean:
	rm -rf $(VENV) .venv-bpy42 .venv-bpy50 out dist build *.egg-info
