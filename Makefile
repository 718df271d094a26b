# Two entry points: `make demo` and `make test`. Both create .venv when it is
# missing, install torch + torchvision first (one pip command, from this
# machine's disk), then lgvsc with the extras they need. A stamp keyed on
# setup.cfg's content makes the second run a no-op.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
KEY    := $(shell cat setup.cfg pyproject.toml | sha256sum | cut -c1-12)
TORCH  := torch==2.14.1 torchvision==0.29.1
# CompressAI (NTSCC's entropy models) pins numpy<2 while Sionna needs numpy>=2.2.6;
# it works with numpy 2, so it is installed without its dependencies, and the ones it
# imports are installed normally (torch-geometric pinned: 2.8 also needs xxhash).
NTSCC_DEPS := torch-geometric==2.8.1 einops pandas pybind11 tomli wheel
NTSCC  := compressai==1.2.8
NTSCC_KEY := $(shell echo "$(NTSCC_DEPS) $(NTSCC)" | sha256sum | cut -c1-12)
DEMO_SCENARIO ?= scenarios/quickstart.yaml
# compile the fast LDPC decoder once per machine (numba's on-disk cache; ~10 s the
# first time, well under a second after)
WARM   := $(BIN)/python -c "from lgvsc.link.ldpc_fast import warm_up; warm_up()"

.PHONY: demo test gpu-check bench clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.torch: | $(BIN)/python
	$(BIN)/pip install $(TORCH)
	touch $@

$(VENV)/.installed-%-$(KEY): $(VENV)/.torch
	$(BIN)/pip install -e ".[$*]"
	rm -f $(VENV)/.installed-$*-*
	touch $@

demo: $(VENV)/.installed-video-$(KEY)
	$(WARM)
	$(BIN)/lgvsc run $(DEMO_SCENARIO)

$(VENV)/.ntscc-$(NTSCC_KEY): $(VENV)/.torch
	$(BIN)/pip install $(NTSCC_DEPS)
	$(BIN)/pip install --no-deps $(NTSCC)
	rm -f $(VENV)/.ntscc*
	touch $@

test: $(VENV)/.installed-dev,video,hf,ray-$(KEY) $(VENV)/.ntscc-$(NTSCC_KEY)
	$(WARM)
	$(BIN)/python -m pytest -q

# every real-tier path on tiny models built in code: CUDA in bfloat16 when available,
# else the CPU in float32 (GPU_CHECK_ARGS="--device cpu" forces the CPU); one line per check
gpu-check: $(VENV)/.installed-dev,video,hf,ray-$(KEY) $(VENV)/.ntscc-$(NTSCC_KEY)
	$(BIN)/python -m lgvsc.sim.gpu_check $(GPU_CHECK_ARGS)

bench: $(VENV)/.installed-video-$(KEY)
	$(WARM)
	$(BIN)/python bench/link_throughput.py
	$(BIN)/python bench/bler_curve.py

clean-venv:
	rm -rf $(VENV)
