# Headlight — two entry points: `make demo` (the main job) and `make test`.
# Both install what is missing (Debian packages, the default model) and are idempotent.
SHELL := /bin/bash
export PATH := /opt/swift/usr/bin:$(PATH)
SWIFT ?= swift
# One set of flags for the CLI and the tests, so `make test` after `make demo` reuses the build.
RELEASE := -c release -Xswiftc -enable-testing
BIN := .build/release/headlight

.PHONY: demo test deps model build clean pytest-python lint slurm-deps test-slurm

deps:
	@bash scripts/install-deps.sh

model: deps
	@bash scripts/fetch-model.sh >/dev/null
	@bash scripts/fetch-model.sh gemma3-270m >/dev/null   # Gemma3ForwardTests (~1 min of `make test`)

build: deps
	$(SWIFT) build $(RELEASE) --product headlight

# The main job: the retrieval-heads notebook end to end (detect, look, composition graph,
# ablate top-K vs random heads, causal graph) on the default model, ~5 min on 2 cores after
# the build. Cells are cached in reports/retrieval-heads/.cache; the last line printed is the
# report's path.
demo: model build
	$(BIN) doctor
	$(BIN) notebook run notebooks-cli/retrieval-heads.md

# slurm-wlm and munge for the one-node Slurm test (SlurmClusterCLITests, ~30 s to install); where
# they cannot be installed the test is skipped with the reason printed.
slurm-deps:
	@bash scripts/slurm/local-cluster.sh install || echo "slurm-wlm/munge not installed: SlurmClusterCLITests will be skipped"

# The Slurm recipe alone: a one-node cluster on localhost runs detect.sbatch as an array of 2
# and merge.sbatch after it, and the merged file is compared with a single run.
test-slurm: model slurm-deps
	$(SWIFT) build $(RELEASE) --product headlight
	$(SWIFT) test $(RELEASE) --filter SlurmClusterCLITests

# Unit tests, fixture tests and tests on the real default model, from an optimized build; then
# a report (the demo's if `make demo` ran, else the one the tests write) checked in headless
# Chromium; then the attention viewer of a fresh trace report, with scripts on (hover, head
# selector) and off (static SVGs), and its layout.
test: model lint slurm-deps
	$(SWIFT) build $(RELEASE) --product headlight
	$(SWIFT) test $(RELEASE)
	$(MAKE) --no-print-directory pytest-python
	HEADLIGHT_WITH_CHROMIUM=1 bash scripts/install-deps.sh
	bash scripts/screenshot-report.sh
	bash scripts/check-viewer.sh
	bash scripts/screenshot-report.sh $${HL_VIEWER_DIR:-/tmp/hl-viewer}/report

# The Python package (python/) in a virtual environment under .build (h5py, numpy, pytest from
# PyPI if missing), tested on run files the CLI writes. pytest's non-zero exit, including 5 for
# "no tests collected", fails the target; run from the repository root so the installed package
# is imported, not python/headlight.
PYVENV := .build/python-venv
pytest-python: model build
	test -x $(PYVENV)/bin/python || python3 -m venv $(PYVENV)
	$(PYVENV)/bin/python -m pip install --quiet --disable-pip-version-check ./python pytest
	HEADLIGHT_BIN=$(CURDIR)/$(BIN) $(PYVENV)/bin/python -m pytest -q -p no:cacheprovider python/tests

# Formatting: swift-format (part of the toolchain) with .swift-format; any finding fails.
lint:
	@out=$$($(SWIFT) format lint --strict -r Sources Tests Package.swift 2>&1); \
	if [ -n "$$out" ]; then echo "$$out"; echo "swift-format: fix the lines above (swift format -i -r Sources Tests)"; exit 1; fi; \
	echo "swift-format lint: clean"

clean:
	rm -rf .build
