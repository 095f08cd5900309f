# The two commands a newcomer types: `make demo` and `make test` (plus `make bench`).
# Each installs what is missing, builds what changed, and is fast when nothing did.

SHELL := /bin/bash
export NODE_PATH := /usr/share/nodejs
JOBS ?= $(shell nproc)
NATIVE := build/native-release
WASM := build/wasm-release
NODE_TEST := node --test --test-reporter=spec

.PHONY: all deps native wasm sdk test test-native test-wasm test-web test-server test-sdk test-markdown demo bench clean help

all: native wasm

help:
	@echo "make demo   install, build and start the demo server + page"
	@echo "make test   install, build native and wasm, run every test"
	@echo "make bench  run the benchmarks (not part of make test)"

deps:
	@./scripts/bootstrap.sh

$(NATIVE)/CMakeCache.txt:
	cmake --preset native-release >/dev/null

$(WASM)/CMakeCache.txt:
	cmake --preset wasm-release >/dev/null

native: deps $(NATIVE)/CMakeCache.txt
	cmake --build $(NATIVE) -j$(JOBS)

wasm: deps $(WASM)/CMakeCache.txt
	cmake --build $(WASM) -j$(JOBS)

sdk: wasm
	cd web && CONFAB_WASM_BUILD_DIR=$(CURDIR)/$(WASM)/wasm npm run build

test: native wasm sdk
	@$(MAKE) -k --no-print-directory test-native test-wasm test-web test-server test-sdk test-markdown

test-native:
	@echo "==== core, server and bench smoke tests: native (ctest) ===="
	ctest --test-dir $(NATIVE) --output-on-failure --no-tests=error -j$(JOBS)

test-wasm:
	@echo "==== core tests: WebAssembly under node (ctest) ===="
	ctest --test-dir $(WASM) --output-on-failure --no-tests=error -j$(JOBS)

test-web:
	@echo "==== wasm module (node:test) ===="
	$(NODE_TEST) tests/web/

test-server:
	@echo "==== confab-server over real HTTP (node:test) ===="
	CONFAB_SERVER_BIN=$(CURDIR)/$(NATIVE)/confab-server $(NODE_TEST) tests/server/

test-sdk:
	@echo "==== SDK: node, package, types and Chromium (node:test) ===="
	cd web && CONFAB_SERVER_BIN=$(CURDIR)/$(NATIVE)/confab-server npm test

test-markdown:
	@echo "==== Markdown renderer: CommonMark spec examples (node:test) ===="
	CONFAB_MD_CLI=$(CURDIR)/$(NATIVE)/tests/markdown/md_cli $(NODE_TEST) tests/markdown/

demo: native wasm sdk
	@./scripts/demo.sh

bench: native
	@echo "==== signing: user_hash vs OpenSSL (Google Benchmark) ===="
	$(NATIVE)/bench/identity_bench --benchmark_min_time=0.5

clean:
	rm -rf build
