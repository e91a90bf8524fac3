#!/usr/bin/env bash
# Throwaway PostgreSQL server for flatnet's tests.
#
#   tools/pg-test-server.sh start   -> prints a SQLAlchemy URL, exits 0
#   tools/pg-test-server.sh stop    -> stops the server and removes it
#
# The cluster lives in a fresh temp dir, runs as the postgres user and
# listens only on a unix socket in that dir (no TCP port, so parallel
# runs cannot clash). The dir is remembered in $FLATNET_PG_STATE
# (default /tmp/flatnet-pg-test-server.<uid>.state) for `stop`.
# Exit status 3 when PostgreSQL is not installed.
set -euo pipefail

STATE=${FLATNET_PG_STATE:-/tmp/flatnet-pg-test-server.$(id -u).state}
DBNAME=flatnet_test
PORT=5432

pg_bindir() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] && { echo "$d"; return 0; }
    done
    command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return 0; }
    return 1
}

as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start() {
    local bin dir
    bin=$(pg_bindir) || { echo "error: PostgreSQL is not installed" >&2; exit 3; }
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
        echo "error: no postgres user" >&2; exit 3
    fi
    dir=$(mktemp -d /tmp/flatnet-pg.XXXXXX)
    chmod 755 "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust \
        -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; rm -rf "$dir"; exit 1; }
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
        -o "-c listen_addresses='' -k $dir -p $PORT -c fsync=off" start \
        >/dev/null || { cat "$dir/server.log" >&2; rm -rf "$dir"; exit 1; }
    as_pg "$bin/createdb" -h "$dir" -p $PORT -U postgres "$DBNAME"
    echo "$dir" >>"$STATE"  # one line per server: a second start never
                            # orphans the first
    echo "postgresql+psycopg://postgres@/$DBNAME?host=$dir&port=$PORT"
}

stop() {
    local bin dir
    [ -f "$STATE" ] || { echo "no server recorded in $STATE" >&2; exit 0; }
    bin=$(pg_bindir) || true
    while IFS= read -r dir; do
        if [ -n "$bin" ] && [ -d "$dir/data" ]; then
            as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop \
                >/dev/null || true
        fi
        case "$dir" in
            /tmp/flatnet-pg.*) rm -rf "$dir" ;;
        esac
    done <"$STATE"
    rm -f "$STATE"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
