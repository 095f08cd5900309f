# The two commands a newcomer types: `make demo` and `make test` (plus `make bench`).
# Each installs what is missing, builds what changed, and is fast when nothing did.

SHELL := /bin/bash
export NODE_PATH := /usr/share/nodejs
JOBS ?= $(shell nproc)
NATIVE := build/native-release
WASM := build/wasm-release
TSAN := build/native-tsan
FUZZ := build/fuzz
FUZZ_SECONDS ?= 120
NODE_TEST := node --test --test-reporter=spec

.PHONY: all deps native wasm sdk tsan test test-native test-wasm test-web test-server test-server-pg test-sdk test-markdown test-bench test-cluster test-tsan demo demo-cluster bench fuzz fuzz-build fuzz-merge clean help

all: native wasm

help:
	@echo "make demo   install, build and start the demo server + page"
	@echo "make demo-cluster  the same with 3 instances on one PostgreSQL database behind nginx"
	@echo "make test   install, build native and wasm, run every test"
	@echo "make bench  run the benchmarks (not part of make test)"
	@echo "make test-tsan  native and server tests under ThreadSanitizer (not part of make test)"
	@echo "make fuzz   run each libFuzzer harness for FUZZ_SECONDS (default 120); make fuzz-merge keeps new coverage"

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

$(TSAN)/CMakeCache.txt:
	cmake --preset native-tsan >/dev/null

tsan: deps $(TSAN)/CMakeCache.txt
	cmake --build $(TSAN) -j$(JOBS)

sdk: wasm
	cd web && CONFAB_WASM_BUILD_DIR=$(CURDIR)/$(WASM)/wasm npm run build

test: native wasm sdk
	@$(MAKE) -k --no-print-directory test-native test-wasm test-web test-server test-server-pg test-sdk test-markdown test-bench test-cluster

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

# The same server suite (and the C++ store tests) against PostgreSQL: scripts/pg.sh starts a
# throwaway cluster in build/pg/, every test server gets a database of its own, the cluster stops.
test-server-pg:
	@echo "==== confab-server over real HTTP, PostgreSQL store (ctest store tests + node:test) ===="
	@./scripts/pg.sh start >/dev/null || exit 1; \
	url=$$(./scripts/pg.sh url); status=0; \
	CONFAB_TEST_DATABASE_URL=$$url ctest --test-dir $(NATIVE) --output-on-failure --no-tests=error -R '/postgres' || status=1; \
	CONFAB_TEST_STORE=postgres CONFAB_TEST_DATABASE_URL=$$url CONFAB_SERVER_BIN=$(CURDIR)/$(NATIVE)/confab-server \
	  $(NODE_TEST) tests/server/ || status=1; \
	./scripts/pg.sh stop; \
	exit $$status

# Several instances on one PostgreSQL database behind nginx round-robin (tests/cluster/): each test
# file starts its own PostgreSQL (scripts/pg.sh, in build/test-cluster/), three instances with a
# short lease and nginx on free ports, and stops all of it.
test-cluster:
	@echo "==== several instances on one PostgreSQL database, through nginx (node:test) ===="
	CONFAB_SERVER_BIN=$(CURDIR)/$(NATIVE)/confab-server $(NODE_TEST) --test-concurrency=1 tests/cluster/

test-sdk:
	@echo "==== SDK: node, package, types and Chromium (node:test) ===="
	cd web && CONFAB_SERVER_BIN=$(CURDIR)/$(NATIVE)/confab-server npm test

# The benchmark runners, once each with tiny durations (10 streams, 1 s wrk): they must run and
# yield numbers; nothing is timed or compared. The Google Benchmark binary runs in ctest.
test-bench:
	@echo "==== benchmarks: one short smoke iteration of each runner (no timings asserted) ===="
	node bench/run.mjs --smoke
	node bench/browser/run.mjs --smoke

test-markdown:
	@echo "==== Markdown renderer: CommonMark spec examples (node:test) ===="
	CONFAB_MD_CLI=$(CURDIR)/$(NATIVE)/tests/markdown/md_cli $(NODE_TEST) tests/markdown/

# The native ctest suite and the server's node tests against a ThreadSanitizer build. The first
# report ends the process (halt_on_error, exit code 66), so no test passes over a race; the node
# helpers print a server's report and fail the test file that started it. Sanitized code runs
# several times slower: CONFAB_TEST_SLOWDOWN widens the liveness bounds of tests/server/threads.
# Every test server runs 8 I/O threads (2 in make test) for more interleavings.
TSAN_OPTIONS_ALL := halt_on_error=1 exitcode=66 second_deadlock_stack=1
test-tsan: tsan
	@status=0; \
	echo "==== ThreadSanitizer: core and server tests (ctest) ===="; \
	TSAN_OPTIONS="$(TSAN_OPTIONS_ALL)" ctest --test-dir $(TSAN) --output-on-failure --no-tests=error -j$(JOBS) || status=1; \
	echo "==== ThreadSanitizer: confab-server over real HTTP (node:test) ===="; \
	TSAN_OPTIONS="$(TSAN_OPTIONS_ALL)" CONFAB_TEST_SLOWDOWN=3 CONFAB_TEST_THREADS=8 CONFAB_SERVER_BIN=$(CURDIR)/$(TSAN)/confab-server \
	  $(NODE_TEST) tests/server/ || status=1; \
	exit $$status

# Fuzzing (clang, libFuzzer, ASan + UBSan; not part of make test, which replays the corpus only).
fuzz-build:
	@./scripts/bootstrap.sh --fuzz
	@[ -f $(FUZZ)/CMakeCache.txt ] || cmake --preset fuzz >/dev/null
	cmake --build $(FUZZ) -j$(JOBS) --target confab_fuzzers

fuzz: fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) ./scripts/fuzz.sh run

# Adds what the last `make fuzz` found that covers new code to tests/fuzz/corpus/ (then commit it).
fuzz-merge: fuzz-build
	./scripts/fuzz.sh merge

demo: native wasm sdk
	@./scripts/demo.sh

# Three instances on one PostgreSQL database behind nginx, the demo pages pointing at nginx
# (scripts/cluster.sh run; Ctrl-C or scripts/cluster.sh stop stops everything).
demo-cluster: native wasm sdk
	@./scripts/cluster.sh run

# Signing, server throughput and streams (bench/run.mjs), then the browser benchmarks
# (bench/browser/run.mjs), then one table: bench/results/latest.md (+ .json). A failing part is reported
# as "not run" and makes the target fail after the table is written.
bench: native sdk
	@status=0; \
	echo "==== 1-3: signing, server throughput, streams (bench/run.mjs) ===="; \
	node bench/run.mjs || status=1; \
	echo "==== 4-6: browser rendering, stream parsing, size and start-up (bench/browser/run.mjs) ===="; \
	node bench/browser/run.mjs || status=1; \
	echo "==== report ===="; \
	node bench/report.mjs || status=1; \
	exit $$status

clean:
	rm -rf build
