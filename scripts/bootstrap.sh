#!/usr/bin/env bash
# Installs what `make test` / `make demo` need on a fresh Debian machine; a no-op when all is there.
set -euo pipefail

APT_PACKAGES=(
  g++ cmake make pkg-config
  libgtest-dev googletest libbenchmark-dev
  libssl-dev openssl nlohmann-json3-dev libsqlite3-dev sqlite3 libboost1.81-dev
  libjemalloc-dev  # confab-server's allocator (native-server/CMakeLists.txt)
  libpq-dev postgresql  # the PostgreSQL store; make test-server-pg runs a throwaway cluster (scripts/pg.sh)
  nginx  # the load balancer of make demo-cluster and make test-cluster (run as a plain process)
  emscripten
  chromium wrk
  python3 ruby golang-go  # examples/signing/ is tested in each language (tests/server/signing_examples)
)

# `bootstrap.sh --fuzz` (make fuzz): clang and its sanitizer/libFuzzer runtimes too. Large, and
# needed by nothing else, so make test does not install them.
if [ "${1:-}" = "--fuzz" ]; then
  APT_PACKAGES+=(clang libclang-rt-14-dev llvm)
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ! command -v node >/dev/null 2>&1; then missing+=(nodejs npm); fi

if ((${#missing[@]})); then
  echo "bootstrap: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "bootstrap: Node >= 20 is required (found $(node --version))" >&2
  exit 1
fi

# npm dependencies: the web package (SDK, browser tests), the CommonMark spec examples, the server
# tests' (OpenAPI validators, the MCP client) and the
# browser benchmarks' baselines (bench/: marked, markdown-it, eventsource-parser, the AirOps SDK).
for dir in web tests/markdown tests/server bench; do
  [ -f "$dir/package.json" ] || continue
  stamp=$dir/node_modules/.confab-stamp
  want=$(cat "$dir/package.json" "$dir/package-lock.json" 2>/dev/null | sha256sum | cut -c1-16)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "bootstrap: npm install in $dir/"
    if [ -f "$dir/package-lock.json" ]; then
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    else
      (cd "$dir" && npm install --no-audit --no-fund --loglevel=error)
    fi
    echo "$want" > "$stamp"
  fi
done
