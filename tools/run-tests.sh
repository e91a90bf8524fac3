#!/usr/bin/env bash
# Runs the whole suite. Starts a throwaway PostgreSQL server for the
# PostgreSQL tests when one is installed, and treats "no tests collected"
# (pytest exit code 5) as a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

pg_cleanup=""
# A state file of our own: another run's `stop` must not stop our server.
export FLATNET_PG_STATE=${FLATNET_PG_STATE:-/tmp/flatnet-pg-state.$$}
if [ -z "${FLATNET_TEST_PG_URL:-}" ] && [ "$(id -u)" = 0 ]; then
    if url=$(bash tools/pg-test-server.sh start); then
        export FLATNET_TEST_PG_URL="$url"
        pg_cleanup=1
    else
        echo "note: no PostgreSQL server; PostgreSQL tests will skip" >&2
    fi
fi

# libvirtd/virtlogd for the VM tests (tools/libvirt-up.sh; exit 3 = qemu
# or libvirt not installed: those tests then skip and say why). Daemons
# started here are stopped afterwards.
libvirt_cleanup=""
if [ "$(id -u)" = 0 ]; then
    started=/run/flatnet-libvirt/started
    had_state=$([ -s "$started" ] && echo 1 || true)
    bash tools/libvirt-up.sh up || echo "note: no libvirtd; VM tests will skip or fail" >&2
    [ -z "$had_state" ] && [ -s "$started" ] && libvirt_cleanup=1
fi

$PY -m pytest -q "$@" tests
rc=$?
[ -n "$pg_cleanup" ] && bash tools/pg-test-server.sh stop
[ -n "$libvirt_cleanup" ] && bash tools/libvirt-up.sh down
if [ $rc -eq 5 ]; then
    echo "error: pytest collected no tests" >&2
    exit 1
fi
exit $rc
