# Headlight — two entry points: `make demo` (the main job) and `make test`.
# Both install what is missing (Debian packages, the default model) and are idempotent.
SHELL := /bin/bash
export PATH := /opt/swift/usr/bin:$(PATH)
SWIFT ?= swift
RELEASE := -c release
BIN := .build/release/headlight

.PHONY: demo test deps model build clean

deps:
	@bash scripts/install-deps.sh

model: deps
	@bash scripts/fetch-model.sh >/dev/null

build: deps
	$(SWIFT) build $(RELEASE) --product headlight

# The main job. Grows into the full retrieval-head notebook (issue 7).
demo: model build
	$(BIN) doctor
	$(BIN) inspect --no-tensors
	$(BIN) generate --chat --max-tokens 64 "In one sentence, what is a retrieval head in a transformer?"

# Unit tests, fixture tests and tests on the real default model, from an optimized build.
test: model
	$(SWIFT) build $(RELEASE) --product headlight
	$(SWIFT) test $(RELEASE) -Xswiftc -enable-testing

clean:
	rm -rf .build
