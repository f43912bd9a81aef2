# Two commands set up everything: `make demo` runs the embedded demo end to end, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2
SNAKEFLAGS ?=
STAMP := $(VENV)/.installed
# the rules call `plrp`: the venv's commands come first on PATH for every recipe, nothing to activate
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: demo test lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: the CPU wheel; anything else would pull a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test,slurm]'
	# bpnet-lite: a third-party BPNet the tests and benchmarks/quality.py check the profile target against;
	# --no-deps, as its requirements would pull a CUDA torch build
	$(BIN)/pip install -q --no-deps bpnet-lite==1.1.0
	@command -v bedtools >/dev/null || { (apt-get update -qq && apt-get install -y -qq bedtools) >/dev/null \
		|| { echo "bedtools is missing and could not be installed: install it (apt/conda) and rerun" >&2; exit 1; }; }
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --profile workflow/profiles/local $(SNAKEFLAGS)

test: $(STAMP)
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null \
		|| echo "chromium could not be installed: tests/test_igv_browser.py skips its browser test" >&2
	@{ [ -f /usr/share/java/igv.jar ] && command -v xvfb-run >/dev/null; } \
		|| (apt-get update -qq && apt-get install -y -qq igv xvfb xauth) >/dev/null \
		|| echo "IGV desktop could not be installed: tests/test_igv_desktop.py skips" >&2
	@bash tests/cluster/install.sh || echo "SLURM could not be installed: tests/test_slurm.py skips" >&2
	$(BIN)/python -m pytest -q -n $(CORES) tests

lint: $(STAMP)
	$(BIN)/ruff check lrp tests benchmarks
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint

format: $(STAMP)
	$(BIN)/ruff format lrp tests benchmarks
	$(BIN)/snakefmt Snakefile workflow/rules

bench: $(STAMP)
	$(BIN)/python benchmarks/engine.py

clean:
	rm -rf results resources logs .snakemake
