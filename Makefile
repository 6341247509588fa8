# Quick start: `make demo` and `make test`. Both create .venv and install the package when missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.genmodels-installed
# The pins are what the test machines hold locally (a CUDA build that also runs on CPU);
# pyproject.toml itself only sets lower bounds.
TORCH_PINS ?= "torch>=2.3,<=2.14.1" "torchvision>=0.18,<=0.29.1"
# One stable demo directory: `make demo` again resumes it (--ckpt_path last starts fresh when it holds no
# checkpoint yet); `rm -rf runs/demo` for a new one.
DEMO_DIR ?= runs/demo

.PHONY: demo test test-fast install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PINS)
	$(PY) -m pip install --quiet -e ".[dev,docs]"
	touch $(STAMP)

# pytest-xdist workers (one torch thread each, tests/conftest.py): the end-to-end quality floors are
# single-threaded, so one process would leave the second core idle for most of the suite.
# TEST_WORKERS=0 runs everything in this process.
TEST_WORKERS ?= 2

test: $(STAMP)
	WANDB_MODE=offline WANDB_SILENT=true $(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal --durations=20 $(PYTEST_ARGS)

# The edit loop: everything but the end-to-end (slow), multi-process (ddp) and browser tests.
test-fast: $(STAMP)
	WANDB_MODE=offline WANDB_SILENT=true $(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal -m "not slow and not ddp and not browser" --durations=10 $(PYTEST_ARGS)

demo: $(STAMP)
	$(VENV)/bin/genmodels fit --config experiments/dcgan/digits.yaml --trainer.default_root_dir $(DEMO_DIR) --ckpt_path last
	@echo "demo run directory: $(DEMO_DIR) (samples/, checkpoints/, config.yaml, wandb/)"

clean:
	rm -rf runs lightning_logs wandb .pytest_cache
