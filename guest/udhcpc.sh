#!/bin/sh
# busybox udhcpc event script of the test guest: configure eth0 and print
# the lease on the console as one LEASE line (see init.sh).
case "$1" in
    deconfig)
        ip -4 addr flush dev "$interface" 2>/dev/null
        ;;
    bound|renew)
        ip -4 addr flush dev "$interface"
        ip addr add "$ip/${mask:-24}" dev "$interface"
        for r in $router; do
            ip route add default via "$r" dev "$interface"
            break
        done
        echo "LEASE ip=$ip mask=$mask router=$router dns=$dns hostname=$hostname domain=$domain lease=$lease server=$serverid uptime=$(cut -d' ' -f1 /proc/uptime)"
        ;;
    leasefail|nak)
        echo "FNT udhcpc $1 $message"
        ;;
esac
exit 0
