#!/bin/busybox sh
# /init of flatnet's tiny test guest (PID 1 of the initramfs that
# tools/build-guest.sh builds). It prints machine-readable lines on the
# serial console (ttyS0), each starting with a keyword:
#
#   FNT <text>                     progress (free text)
#   LEASE ip=.. mask=.. router=.. dns=.. hostname=.. domain=.. lease=.. server=..
#   LEASE-FAILED                   udhcpc got no lease
#   METADATA url=<url> rc=<rc> body=<first 300 bytes, newlines as |>
#   GET url=<url> rc=<rc> bytes=<n> body=<...>     (get and crawl commands)
#   RESULT <command> rc=<rc> [key=value ...]       one per command
#   MARK <text>                    the mark command (for synchronising)
#   FNT-DONE                       all commands ran; the guest powers off
#
# Kernel command line knobs:
#   fnt.md=<url>        fetch <url> after the lease and print METADATA
#   fnt.run=<cmd>;<cmd> commands to run after the lease; arguments are
#                       separated by commas, e.g.
#                       fnt.run=ping,10.9.0.1;spoofip,10.9.0.77,10.9.0.1
#   fnt.hold=<seconds>  stay up this long before powering off
# Commands (see run_one below): ping, tcp, get, crawl, spoofip, spoofmac,
# arpspoof, vlan, rogue-dhcp, listen, sleep, mark.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
up() { cut -d' ' -f1 /proc/uptime; }
echo "FNT init start uptime=$(up)"

MD_URL=""; RUN=""; HOLD=0
for a in $(cat /proc/cmdline); do
    case "$a" in
        fnt.md=*) MD_URL="${a#fnt.md=}" ;;
        fnt.run=*) RUN="${a#fnt.run=}" ;;
        fnt.hold=*) HOLD="${a#fnt.hold=}" ;;
    esac
done

for m in $(cat /etc/modules); do
    insmod "/lib/modules/$m" || echo "FNT insmod $m failed"
done
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
[ -e /sys/class/net/eth0 ] || { echo "FNT ERROR no eth0"; poweroff -f; }
ip link set lo up
ip link set eth0 up
MAC="$(cat /sys/class/net/eth0/address)"
echo "FNT eth0 up mac=$MAC uptime=$(up)"

# -n: exit if no lease; -q: quit once bound; 10 tries 2 s apart
if ! udhcpc -i eth0 -n -q -t 10 -T 2 -s /etc/udhcpc.sh; then
    echo "LEASE-FAILED uptime=$(up)"
fi
MYIP="$(ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1 | head -1)"

oneline() { head -c 300 "$1" | tr '\n\r' '||'; }

# fetch URL: print a GET line, return wget's rc
# (busybox-static 1.35's "wget -T" segfaults: bound it with timeout(1))
fetch() {
    local rc=0
    rm -f /tmp/body
    timeout 5 wget -q -O /tmp/body "$1" || rc=$?
    echo "GET url=$1 rc=$rc bytes=$(wc -c < /tmp/body 2>/dev/null || echo 0) body=$(oneline /tmp/body 2>/dev/null)"
    return $rc
}

CRAWLED=0; CRAWL_ERRORS=0
# crawl URL: EC2-style tree; lines ending in / are directories
crawl() {
    local url="$1" entry
    CRAWLED=$((CRAWLED+1))
    fetch "$url" || { CRAWL_ERRORS=$((CRAWL_ERRORS+1)); return 0; }
    case "$url" in */) ;; *) return 0 ;; esac
    cp /tmp/body "/tmp/dir.$CRAWLED"
    for entry in $(cat "/tmp/dir.$CRAWLED"); do
        # "0=key-name" style entries (public-keys/) name the directory "0/"
        case "$entry" in *=*) entry="${entry%%=*}/" ;; esac
        crawl "$url$entry"
    done
}

# with_mac MAC CMD...: run CMD with eth0's MAC changed, then restore it
with_mac() {
    local new="$1"; shift
    ip link set eth0 down; ip link set eth0 address "$new"; ip link set eth0 up
    "$@"; local rc=$?
    ip link set eth0 down; ip link set eth0 address "$MAC"; ip link set eth0 up
    return $rc
}

rogue_dhcp() {  # rogue_dhcp SECONDS: a DHCP server on eth0 for SECONDS
    local net="${MYIP%.*}"
    printf 'start %s.200\nend %s.210\ninterface eth0\nlease_file /tmp/udhcpd.leases\nopt subnet 255.255.255.0\nopt router %s\n' \
        "$net" "$net" "$MYIP" > /tmp/udhcpd.conf
    : > /tmp/udhcpd.leases
    udhcpd -f /tmp/udhcpd.conf > /tmp/udhcpd.log 2>&1 &
    local pid=$!
    echo "MARK rogue-dhcp-up"
    sleep "$1"
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

vlan() {  # vlan ID DST: ping DST over an 802.1Q sub-interface (0x8100)
    ip link add link eth0 name eth0.v type vlan id "$1" &&
        ip addr add "$MYIP/32" dev eth0.v && ip link set eth0.v up &&
        ip route add "$2/32" dev eth0.v || return 9
    ping -c 2 -W 1 "$2" > /dev/null; local rc=$?
    ip link del eth0.v
    return $rc
}

run_one() {  # run_one NAME ARGS...: print RESULT NAME rc=..
    local name="$1" rc=0; shift
    case "$name" in
        ping) ping -c 2 -W 2 "$1" > /dev/null || rc=$? ;;
        tcp) timeout 5 nc "$1" "$2" < /dev/null > /dev/null || rc=$? ;;
        get) fetch "$1" || rc=$? ;;
        crawl) CRAWLED=0; CRAWL_ERRORS=0; crawl "$1"
               echo "RESULT crawl rc=$CRAWL_ERRORS requests=$CRAWLED errors=$CRAWL_ERRORS args=$1"
               return ;;
        spoofip) ip addr add "$1/32" dev eth0
                 ping -c 2 -W 1 -I "$1" "$2" > /dev/null || rc=$?
                 ip addr del "$1/32" dev eth0 ;;
        spoofmac) with_mac "$(echo "$1" | tr - :)" ping -c 2 -W 1 "$2" > /dev/null || rc=$? ;;
        arpspoof) ip addr add "$1/32" dev eth0
                  arping -U -c 2 -w 2 -I eth0 -s "$1" "$1" > /dev/null 2>&1 || rc=$?
                  ip addr del "$1/32" dev eth0 ;;
        vlan) vlan "$1" "$2" || rc=$? ;;
        rogue-dhcp) rogue_dhcp "$1" || rc=$? ;;
        listen) mkdir -p /tmp/www && echo "port $1" > /tmp/www/index.html &&
                httpd -p "$1" -h /tmp/www || rc=$? ;;
        sleep) sleep "$1" ;;
        mark) echo "MARK $*" ;;
        *) echo "FNT unknown command $name"; rc=127 ;;
    esac
    echo "RESULT $name rc=$rc args=$(echo "$*" | tr ' ' ,)"
}

if [ -n "$MD_URL" ]; then
    rc=0; rm -f /tmp/md
    timeout 5 wget -q -O /tmp/md "$MD_URL" || rc=$?
    echo "METADATA url=$MD_URL rc=$rc body=$(oneline /tmp/md 2>/dev/null)"
fi

IFS_SAVED="$IFS"
IFS=';'
for cmd in $RUN; do
    IFS=','
    # shellcheck disable=SC2086  # split the command on commas on purpose
    set -- $cmd
    IFS="$IFS_SAVED"
    [ $# -gt 0 ] && run_one "$@"
    IFS=';'
done
IFS="$IFS_SAVED"

[ "$HOLD" -gt 0 ] 2>/dev/null && { echo "FNT holding ${HOLD}s"; sleep "$HOLD"; }
echo "FNT-DONE uptime=$(up)"
sync
poweroff -f
