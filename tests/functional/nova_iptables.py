"""What ``iptables-save -c`` shows on an all-in-one nova-network 16.0.0
host (nova-network and nova-compute), for the topology of
tests/functional/test_host_rules.py.

Built from nova's code, not from flatnet's:

* ``nova/network/linux_net.py IptablesManager.__init__``: each binary's
  wrapped built-in chains with the unwrapped jumps ``INPUT -j
  <bin>-INPUT`` ..., the shared ``nova-filter-top`` (first rule of
  ``FORWARD`` and ``OUTPUT``, ``-j <bin>-local`` in it) and
  ``nova-postrouting-bottom`` (last rule of ``POSTROUTING``, ``-j
  <bin>-snat`` in it, ``<bin>-snat -j <bin>-float-snat`` first);
  ``IptablesTable._modify_rules`` puts the last binary to apply first
  and removes duplicate lines (so one ``-j nova-filter-top`` each);
* ``linux_net.get_gateway_rules`` (``FORWARD -i/-o br100 -j ACCEPT``,
  added by both binaries: the compute host plugs the bridge too),
  ``_add_dnsmasq_accept_rules``, ``_add_dhcp_mangle_rule``,
  ``metadata_forward``, ``init_host``/``add_snat_rule`` and
  ``floating_forward_rules`` (172.31.50.100 -> 10.201.0.3 on ``pub0``;
  and 172.31.50.101 -> 10.201.0.4, an association flatnet's database no
  longer has: nova left it behind, flatnet must remove it);
* ``nova/virt/firewall.py IptablesFirewallDriver`` on the compute side:
  ``<bin>-local -d <ip> -j $inst-1``, the instance chain (INVALID drop,
  RELATED/ESTABLISHED, provider rules, DHCP from the server, the
  project network (``allow_same_net_traffic``), the group rule udp 9001)
  and ``sg-fallback -j DROP``.

Plus an operator's own chain and jump (``operator-ssh``), which nobody
from nova or flatnet may touch. Rules are spelled as iptables-save
prints them (``-s 0.0.0.0/0`` dropped, hosts as ``/32``).
"""

from __future__ import annotations

FILTER = """\
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:nova-compute-FORWARD - [0:0]
:nova-compute-INPUT - [0:0]
:nova-compute-OUTPUT - [0:0]
:nova-compute-inst-1 - [0:0]
:nova-compute-local - [0:0]
:nova-compute-provider - [0:0]
:nova-compute-sg-fallback - [0:0]
:nova-filter-top - [0:0]
:nova-network-FORWARD - [0:0]
:nova-network-INPUT - [0:0]
:nova-network-OUTPUT - [0:0]
:nova-network-local - [0:0]
:operator-ssh - [0:0]
[0:0] -A INPUT -j nova-network-INPUT
[0:0] -A INPUT -j nova-compute-INPUT
[0:0] -A INPUT -p tcp -m tcp --dport 2222 -j operator-ssh
[0:0] -A FORWARD -j nova-filter-top
[0:0] -A FORWARD -j nova-network-FORWARD
[0:0] -A FORWARD -j nova-compute-FORWARD
[0:0] -A OUTPUT -j nova-filter-top
[0:0] -A OUTPUT -j nova-network-OUTPUT
[0:0] -A OUTPUT -j nova-compute-OUTPUT
[0:0] -A nova-compute-FORWARD -i br100 -j ACCEPT
[0:0] -A nova-compute-FORWARD -o br100 -j ACCEPT
[0:0] -A nova-compute-inst-1 -m state --state INVALID -j DROP
[0:0] -A nova-compute-inst-1 -m state --state RELATED,ESTABLISHED -j ACCEPT
[0:0] -A nova-compute-inst-1 -j nova-compute-provider
[0:0] -A nova-compute-inst-1 -s 10.201.0.1/32 -p udp -m udp --sport 67 \
--dport 68 -j ACCEPT
[0:0] -A nova-compute-inst-1 -s 10.201.0.0/24 -j ACCEPT
[0:0] -A nova-compute-inst-1 -p udp -m udp --dport 9001 -j ACCEPT
[0:0] -A nova-compute-inst-1 -j nova-compute-sg-fallback
[0:0] -A nova-compute-local -d 10.201.0.3/32 -j nova-compute-inst-1
[0:0] -A nova-compute-sg-fallback -j DROP
[0:0] -A nova-filter-top -j nova-network-local
[0:0] -A nova-filter-top -j nova-compute-local
[0:0] -A nova-network-FORWARD -i br100 -j ACCEPT
[0:0] -A nova-network-FORWARD -o br100 -j ACCEPT
[0:0] -A nova-network-INPUT -i br100 -p udp -m udp --dport 67 -j ACCEPT
[0:0] -A nova-network-INPUT -i br100 -p tcp -m tcp --dport 67 -j ACCEPT
[0:0] -A nova-network-INPUT -i br100 -p udp -m udp --dport 53 -j ACCEPT
[0:0] -A nova-network-INPUT -i br100 -p tcp -m tcp --dport 53 -j ACCEPT
[0:0] -A operator-ssh -s 127.0.0.0/8 -j ACCEPT
COMMIT
"""

_FLOATS = (("172.31.50.100", "10.201.0.3"), ("172.31.50.101", "10.201.0.4"))


def _nat_floating() -> list[str]:
    lines = []
    for floating, fixed in _FLOATS:
        lines += [
            f"-A nova-network-OUTPUT -d {floating}/32 -j DNAT "
            f"--to-destination {fixed}",
            f"-A nova-network-PREROUTING -d {floating}/32 -j DNAT "
            f"--to-destination {fixed}",
            f"-A nova-network-POSTROUTING -s {fixed}/32 -m conntrack "
            f"--ctstate DNAT -j SNAT --to-source {floating}",
            f"-A nova-network-float-snat -s {fixed}/32 -d {fixed}/32 "
            f"-j SNAT --to-source {floating}",
            f"-A nova-network-float-snat -s {fixed}/32 -o pub0 "
            f"-j SNAT --to-source {floating}",
        ]
    return ["[0:0] " + line for line in lines]


NAT_HEAD = """\
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:nova-compute-OUTPUT - [0:0]
:nova-compute-POSTROUTING - [0:0]
:nova-compute-PREROUTING - [0:0]
:nova-compute-float-snat - [0:0]
:nova-compute-snat - [0:0]
:nova-network-OUTPUT - [0:0]
:nova-network-POSTROUTING - [0:0]
:nova-network-PREROUTING - [0:0]
:nova-network-float-snat - [0:0]
:nova-network-snat - [0:0]
:nova-postrouting-bottom - [0:0]
[0:0] -A PREROUTING -j nova-network-PREROUTING
[0:0] -A PREROUTING -j nova-compute-PREROUTING
[0:0] -A OUTPUT -j nova-network-OUTPUT
[0:0] -A OUTPUT -j nova-compute-OUTPUT
[0:0] -A POSTROUTING -j nova-network-POSTROUTING
[0:0] -A POSTROUTING -j nova-compute-POSTROUTING
[0:0] -A POSTROUTING -j nova-postrouting-bottom
[0:0] -A nova-compute-snat -j nova-compute-float-snat
[0:0] -A nova-network-POSTROUTING -s 10.201.0.0/24 -d 172.31.50.1/32 \
-j ACCEPT
[0:0] -A nova-network-POSTROUTING -s 10.201.0.0/24 -d 10.201.0.0/24 \
-m conntrack ! --ctstate DNAT -j ACCEPT
[0:0] -A nova-network-PREROUTING -d 169.254.169.254/32 -p tcp -m tcp \
--dport 80 -j DNAT --to-destination 172.31.50.1:8775
[0:0] -A nova-network-snat -j nova-network-float-snat
[0:0] -A nova-network-snat -s 10.201.0.0/24 -o pub0 -j SNAT \
--to-source 172.31.50.1
[0:0] -A nova-postrouting-bottom -j nova-network-snat
[0:0] -A nova-postrouting-bottom -j nova-compute-snat
"""

MANGLE = """\
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:nova-compute-POSTROUTING - [0:0]
:nova-network-POSTROUTING - [0:0]
[0:0] -A POSTROUTING -j nova-network-POSTROUTING
[0:0] -A POSTROUTING -j nova-compute-POSTROUTING
[0:0] -A nova-network-POSTROUTING -o br100 -p udp -m udp --dport 68 \
-j CHECKSUM --checksum-fill
COMMIT
"""


def save_text(fixed_prefix: str = "10.201.0.") -> str:
    """The whole ``iptables-save -c`` text (input for iptables-restore),
    with the fixed network's ``10.201.0.`` replaced by ``fixed_prefix``
    (another /24 for another topology)."""
    nat = NAT_HEAD + "\n".join(_nat_floating()) + "\nCOMMIT\n"
    return (FILTER + nat + MANGLE).replace("10.201.0.", fixed_prefix)


#: floating IPs bound on pub0 by nova (``bind_floating_ip``)
BOUND = tuple(f for f, _ in _FLOATS)
