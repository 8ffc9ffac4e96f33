#!/usr/bin/env bash
# pg.sh - a private, throw-away PostgreSQL server for lyncd's tests, on loopback only.
#
#   eval "$(scripts/pg.sh start)"   # sets LYNCD_TEST_PG (a superuser URL) and LYNCD_TEST_PGDATA
#   scripts/pg.sh stop              # stops the server in $LYNCD_TEST_PGDATA and removes it
#
# The cluster lives in a new temporary directory, listens on 127.0.0.1 at a free port (and on a
# Unix socket inside that directory, never /var/run), trusts loopback connections, and is owned
# by the `postgres` system user when run as root (initdb refuses root). Nothing of the system's
# own PostgreSQL cluster is touched. Installs the Debian package when the binaries are missing.
set -euo pipefail

bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  if [ -z "$d" ] || [ ! -x "$d/initdb" ]; then
    if [ "$(id -u)" = 0 ]; then
      echo "pg.sh: installing postgresql" >&2
      apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2
      # Debian's package starts its own cluster; ours is separate, so stop that one.
      pg_ctlcluster --force "$(ls /usr/lib/postgresql | sort -V | tail -1)" main stop >&2 2>/dev/null || true
      d=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    else
      echo "pg.sh: PostgreSQL is not installed; run as root or install postgresql" >&2
      exit 70
    fi
  fi
  echo "$d"
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-}" in
start)
  bin=$(bindir)
  data=$(mktemp -d /tmp/lyncd-pg.XXXXXX)
  [ "$(id -u)" = 0 ] && chown postgres: "$data"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  as_owner "$bin/initdb" -D "$data/db" -U postgres -A trust -E UTF8 --no-locale >"$data.initdb.log" 2>&1 \
    || { cat "$data.initdb.log" >&2; exit 1; }
  # Many test databases and connections at once; fsync stays on (the crash tests rely on it).
  as_owner "$bin/pg_ctl" -D "$data/db" -l "$data/db/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $data -c max_connections=300" start >&2
  echo "export LYNCD_TEST_PG='postgres://postgres@127.0.0.1:$port/postgres'"
  echo "export LYNCD_TEST_PGDATA='$data'"
  ;;
stop)
  data=${LYNCD_TEST_PGDATA:?pg.sh stop: LYNCD_TEST_PGDATA is not set}
  bin=$(bindir)
  as_owner "$bin/pg_ctl" -D "$data/db" -m fast -w stop >&2 || true
  rm -rf "$data" "$data.initdb.log"
  ;;
*)
  echo "usage: $0 start|stop" >&2
  exit 64
  ;;
esac
