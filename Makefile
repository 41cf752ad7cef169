# qpi-kit: two commands on a fresh machine.
#   make reproduce   create .venv, install the kit, run the main job at the CPU profile
#   make test        same environment, run the whole test suite
#   make seeds       the ID/OOD table over seeds 0 1 2 (results/$(PROFILE)/table_seeds.*)
#   make ablations   every ablation over seeds 0 1 2, reusing the seeds runs (results/$(PROFILE)/ablations/)
#   make figures     every paper figure and table the kit maps: seeds, ablations, then the notebook chain
#   make book        the README, docs/ and the notebooks as a website in _build/book/_build/html (offline,
#                    from the committed outputs; fails on a broken link or a missing figure)
# Variables: PROFILE (quick), RUN_DIR (runs/$(PROFILE)), PYTHON (python3), TEST_WORKERS (cores, at most 4),
#            INSTALLER (uv, or pip),
#            TORCH_SPEC (torch==2.13.0: a CPU build here; on a CUDA machine use e.g. TORCH_SPEC=torch)
PYTHON ?= python3
VENV ?= .venv
PROFILE ?= quick
RUN_DIR ?= runs/$(PROFILE)
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Real STM files: a ../shared/data folder beside the checkout (as in CI) is used offline when it
# exists; otherwise qpi_utils.realdata downloads them (checksummed) into the user cache.
ifneq ($(wildcard ../shared/data/FeSe_topography.sxm),)
export QPI_DATA_DIR ?= $(abspath ../shared/data)
endif

SEEDS ?= 0 1 2
# a benchmark that fails must fail the target, not vanish into the pipe to tee
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c

.PHONY: reproduce test seeds ablations figures book benchmark clean-venv

# INSTALLER=uv (the default) installs with uv, which pip puts in the venv first: it fetches and
# unpacks in parallel and byte-compiles on every core. A fresh 2-core install with the same package
# versions took 42 s against pip's 56 s (the faster of two each, empty caches; pip's other took
# 76 s: benchmarks/bench_install.py, results/benchmarks/install.json). uv reads no pip.conf: the
# find-links folders pip is given (PIP_FIND_LINKS or pip's global.find-links: where a machine keeps
# its CPU torch wheel, as CI does) are passed on, so uv picks the same torch as pip. INSTALLER=pip
# is pip alone; pip compiles one file at a time, so compileall does it on every core (compiling
# nothing at install was slower still: results/benchmarks/install_compile.json); a file that does
# not compile (a package's Python 2 test data) is skipped, as pip skips it.
INSTALLER ?= uv
FIND_LINKS = $(foreach d,$(sort $(PIP_FIND_LINKS) $(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null)),--find-links $(d))
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
ifeq ($(INSTALLER),uv)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/python -m uv pip install --quiet --python $(BIN)/python --compile-bytecode $(FIND_LINKS) "$(TORCH_SPEC)" -e ".[dev]"
else
	$(BIN)/python -m pip install --quiet --no-compile --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile "$(TORCH_SPEC)" -e ".[dev]"
	$(BIN)/python -m compileall -qq -j 0 "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" || true
endif
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

reproduce: $(STAMP)
	$(BIN)/qpi reproduce --profile $(PROFILE) --run-dir $(RUN_DIR)

# the suite in parallel workers, one per core (at most 4: the notebook chain, one file, is the longest
# part), a file per worker so a module's fixtures are made once, the longest files first
# (tests/conftest.py's LONGEST_FIRST; xdist's own reordering by number of tests is turned off)
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1); echo $$(( n < 4 ? n : 4 )))

test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

seeds: $(STAMP)
	$(BIN)/qpi seeds --profile $(PROFILE) --seeds $(SEEDS) --run-dir runs/$(PROFILE)-seeds

ablations: $(STAMP)
	$(BIN)/qpi ablation all --profile $(PROFILE) --seeds $(SEEDS) --run-dir runs/$(PROFILE)-ablations \
		--base-run-dir runs/$(PROFILE)-seeds

book: $(STAMP)
	$(BIN)/python -m qpi_lab.book --out _build/book

figures: $(STAMP)
	$(BIN)/qpi figures --profile $(PROFILE) --seeds $(SEEDS) --run-dir runs/$(PROFILE)-seeds

benchmark: $(STAMP)
	$(BIN)/python benchmarks/bench_simulate.py | tee results/benchmarks/simulate.txt
	$(BIN)/python benchmarks/bench_train.py --profile $(PROFILE) | tee results/benchmarks/train_$(PROFILE).txt
	$(BIN)/python benchmarks/bench_evaluate.py --profile $(PROFILE) | tee results/benchmarks/evaluate_$(PROFILE).txt
	$(BIN)/python benchmarks/bench_least_squares.py --profile $(PROFILE) | tee results/benchmarks/least_squares_$(PROFILE).txt
	$(BIN)/python benchmarks/bench_layouts.py --profile $(PROFILE) | tee results/benchmarks/layouts_$(PROFILE).txt
	$(BIN)/python benchmarks/bench_threads.py --profile $(PROFILE) | tee results/benchmarks/threads_$(PROFILE).txt
	$(BIN)/python benchmarks/bench_batch_size.py --profile $(PROFILE) --batches 20 | tee results/benchmarks/batch_size_$(PROFILE).txt
	$(BIN)/python benchmarks/patience_replay.py --run-dir runs/$(PROFILE)-seeds | tee results/benchmarks/patience_replay_$(PROFILE).txt
	$(BIN)/python benchmarks/chain_breakdown.py --profile $(PROFILE) | tee results/benchmarks/chain_breakdown_$(PROFILE).txt

clean-venv:
	rm -rf $(VENV)
