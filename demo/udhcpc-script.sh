#!/bin/sh
# busybox udhcpc hook for the demo: configure eth0 and print the lease.
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    echo "LEASE ip=$ip mask=$mask router=$router dns=$dns hostname=$hostname domain=$domain lease=$lease server=$serverid"
    ;;
esac
exit 0
