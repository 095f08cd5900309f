#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for tests and drills, run as a plain process (no system
# service): data, log and unix socket in build/pg/ of the checkout (or $CONFAB_PG_DIR), listening on
# 127.0.0.1 on a port picked free at the first start and kept for later starts.
#   scripts/pg.sh start    create the cluster if needed and start it (idempotent); prints the URL
#   scripts/pg.sh stop     stop it (idempotent)
#   scripts/pg.sh url      the admin URL: postgresql://postgres:PASSWORD@127.0.0.1:PORT/postgres
#   scripts/pg.sh status   exit 0 when it runs
#   scripts/pg.sh destroy  stop it and delete its folder
# PostgreSQL refuses to run as root: as root the cluster belongs to the unprivileged `postgres`
# user (Debian's postgresql package creates it) and runs under `runuser -u postgres`.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${CONFAB_PG_DIR:-$ROOT/build/pg}
BIN=${CONFAB_PG_BIN:-/usr/lib/postgresql/15/bin}
# Loopback only and thrown away; the password is there so that URLs carry one, as in production.
PASSWORD=confab-test

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

running() {
  [ -f "$DIR/data/PG_VERSION" ] && as_pg "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1
}

url() {
  echo "postgresql://postgres:$PASSWORD@127.0.0.1:$(cat "$DIR/port")/postgres"
}

free_port() {
  node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

create() {
  if [ ! -x "$BIN/initdb" ]; then
    echo "pg.sh: $BIN/initdb not found: install Debian's postgresql package (scripts/bootstrap.sh does)" >&2
    exit 1
  fi
  mkdir -p "$DIR/data" "$DIR/run" "$DIR/log"
  printf '%s\n' "$PASSWORD" > "$DIR/pwfile"
  free_port > "$DIR/port"
  if [ "$(id -u)" = 0 ]; then chown -R postgres: "$DIR"; fi
  as_pg "$BIN/initdb" -D "$DIR/data" -U postgres --pwfile="$DIR/pwfile" -E UTF8 --no-locale \
    --auth-local=trust --auth-host=scram-sha-256 >"$DIR/log/initdb.log" 2>&1 || {
    cat "$DIR/log/initdb.log" >&2
    exit 1
  }
  as_pg tee -a "$DIR/data/postgresql.conf" >/dev/null <<CONF
# scripts/pg.sh: a test cluster on loopback
listen_addresses = '127.0.0.1'
port = $(cat "$DIR/port")
unix_socket_directories = '$DIR/run'
max_connections = 200
CONF
}

case "${1:-}" in
  start)
    [ -f "$DIR/data/PG_VERSION" ] || create
    if ! running; then
      as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log/postgres.log" -w -t 60 start >/dev/null || {
        tail -n 20 "$DIR/log/postgres.log" >&2
        exit 1
      }
    fi
    url
    ;;
  stop)
    if running; then as_pg "$BIN/pg_ctl" -D "$DIR/data" -m fast -w -t 60 stop >/dev/null; fi
    ;;
  url)
    [ -f "$DIR/port" ] || { echo "pg.sh: no cluster in $DIR (run: scripts/pg.sh start)" >&2; exit 1; }
    url
    ;;
  status)
    running
    ;;
  destroy)
    if running; then as_pg "$BIN/pg_ctl" -D "$DIR/data" -m immediate -w stop >/dev/null; fi
    rm -rf "$DIR"
    ;;
  *)
    echo "usage: scripts/pg.sh start|stop|url|status|destroy" >&2
    exit 2
    ;;
esac
