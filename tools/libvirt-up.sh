#!/usr/bin/env bash
# Start libvirt for flatnet's VM tests on a machine without systemd.
#
#   tools/libvirt-up.sh up      start virtlogd and libvirtd if they are not
#                               running; fix /dev/kvm's group and mode
#   tools/libvirt-up.sh down    stop only the daemons that `up` started
#   tools/libvirt-up.sh status  print what runs and who started it
#
# Idempotent: `up` does nothing when libvirtd already answers (started by
# systemd, by hand, or by an earlier `up`). What `up` starts is recorded in
# $STATE_DIR/started (one "name pid" line each); `down` stops exactly those
# pids, and only while /proc/<pid>/comm still names the daemon.
#
# /dev/kvm: without udev it stays root:root 0600 and libvirt's QEMU
# capability cache is then declared outdated on every lookup ("KVM was
# enabled when probing ..., but it is not available now", libvirt
# virQEMUCapsIsValid): each domain start costs ~54 s instead of ~2 s, even
# for TCG domains. `up` sets root:kvm 0660, the mode Debian gives /dev/kvm
# with udev running (group kvm, of which libvirt's qemu user is a member),
# so `down` leaves it: there is nothing to restore to on a normal host.
#
# libvirtd's default stdio_handler=logd needs virtlogd for the domain log and
# for <serial type='file'>; under systemd it is socket-activated, here it is
# started first.
#
# Exit status: 0 ready, 3 libvirt or qemu is not installed (the caller may
# skip VM tests and say why), 1 anything else (a daemon failed to start).
set -euo pipefail

STATE_DIR="${FLATNET_LIBVIRT_STATE:-/run/flatnet-libvirt}"
URI="qemu:///system"
STARTED="$STATE_DIR/started"

log() { echo "libvirt-up: $*" >&2; }

installed() {
    local missing=()
    for b in libvirtd virtlogd virsh qemu-system-x86_64; do
        command -v "$b" >/dev/null 2>&1 || missing+=("$b")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "not installed: ${missing[*]} (make deps installs them)"
        return 3
    fi
}

answers() { timeout 10 virsh -q -c "$URI" version >/dev/null 2>&1; }

fix_kvm() {
    [ -c /dev/kvm ] || return 0
    getent group kvm >/dev/null || return 0
    local cur
    cur="$(stat -c '%G %a' /dev/kvm)"
    if [ "$cur" != "kvm 660" ]; then
        chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
        log "/dev/kvm: group/mode $cur -> kvm 660 (Debian's udev mode)"
    fi
}

# our_pid NAME: the recorded pid of NAME if that process still runs it
our_pid() {
    local name="$1" pid
    [ -f "$STARTED" ] || return 1
    pid="$(awk -v n="$name" '$1 == n {print $2}' "$STARTED" | tail -1)"
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] \
        && echo "$pid"
}

wait_for() {  # wait_for SECONDS CMD...: poll CMD every 0.1 s
    local n=$(( $1 * 10 )); shift
    while [ "$n" -gt 0 ]; do "$@" && return 0; sleep 0.1; n=$((n - 1)); done
    return 1
}

start_daemon() {  # start_daemon NAME SOCKET: daemonize, record the pid
    local name="$1" sock="$2" pidfile="$STATE_DIR/$1.pid"
    rm -f "$pidfile"
    "$name" --daemon --pid-file "$pidfile"
    if ! wait_for 30 test -S "$sock" || ! wait_for 5 test -s "$pidfile"; then
        log "$name did not come up (socket $sock)"
        return 1
    fi
    echo "$name $(cat "$pidfile")" >> "$STARTED"
    log "started $name pid $(cat "$pidfile")"
}

virtlogd_running() {
    # a socket file can outlive its daemon (kill -9): ask for a listener
    [ -S /run/libvirt/virtlogd-sock ] && \
        timeout 5 virt-admin -c virtlogd:///system version >/dev/null 2>&1
}

up() {
    [ "$(id -u)" = 0 ] || { log "must run as root"; return 1; }
    installed || return $?
    mkdir -p "$STATE_DIR"
    fix_kvm
    if ! virtlogd_running; then
        start_daemon virtlogd /run/libvirt/virtlogd-sock
    fi
    if ! answers; then
        start_daemon libvirtd /run/libvirt/libvirt-sock
        wait_for 30 answers || { log "libvirtd does not answer"; return 1; }
    fi
    log "ready: $(virsh -q -c "$URI" version | tr '\n' ' ' | tr -s ' ')"
}

stop_pid() {  # stop_pid NAME PID: SIGTERM, then SIGKILL after 10 s
    local name="$1" pid="$2"
    kill -TERM "$pid" 2>/dev/null || return 0
    if ! wait_for 10 test ! -d "/proc/$pid"; then
        log "$name pid $pid ignored SIGTERM; killing"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped $name pid $pid"
}

down() {
    [ -f "$STARTED" ] || { log "nothing was started by up"; return 0; }
    local pid
    # libvirtd before virtlogd: libvirtd holds connections to virtlogd
    for name in libvirtd virtlogd; do
        if pid="$(our_pid "$name")"; then stop_pid "$name" "$pid"; fi
    done
    rm -f "$STARTED"
}

status() {
    for name in virtlogd libvirtd; do
        if pid="$(our_pid "$name")"; then
            echo "$name: running, pid $pid, started by libvirt-up"
        elif pgrep -x "$name" >/dev/null; then
            echo "$name: running, not started by libvirt-up"
        else
            echo "$name: not running"
        fi
    done
    [ -c /dev/kvm ] && echo "/dev/kvm: $(stat -c '%U:%G %a' /dev/kvm)"
    answers && echo "libvirtd answers at $URI" || echo "no answer at $URI"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
