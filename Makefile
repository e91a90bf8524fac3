# flatnet: two commands set everything up on a fresh Debian 12 host (root):
#   make demo   installs what it needs, then runs the demo in a sandbox
#   make test   installs what it needs, then runs every test
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

# Debian packages flatnet needs at run time and in its tests.
DEB_PACKAGES := python3 python3-venv python3-dev gcc libc6-dev \
	iproute2 kmod procps util-linux \
	dnsmasq-base-lua dnsmasq-utils nftables iptables ebtables ipset conntrack arping \
	busybox udhcpc isc-dhcp-client \
	postgresql \
	libvirt-daemon-system libvirt-daemon-config-nwfilter \
	libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 \
	libvirt-dev pkg-config

.PHONY: all deps install install-system test unit functional lint \
	typecheck demo bench genconfig clean

# make install-system: flatnet for operators, outside this checkout:
# a venv under $(PREFIX) with `pip install .` (EXTRAS: postgresql, mysql),
# the commands linked into $(BINDIR), the systemd units (pointing at
# $(PREFIX)) in $(UNITDIR): network role (network + compute), compute
# role alone, metadata; /etc/flatnet/flatnet.conf and compute.conf if
# missing.
# doc/operator-guide.md describes it.
PREFIX ?= /opt/flatnet
BINDIR ?= /usr/local/bin
SYSCONFDIR ?= /etc/flatnet
UNITDIR ?= /etc/systemd/system
EXTRAS ?= postgresql

all: test

# apt-get only runs when a package is missing, so repeated runs are fast.
deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
	    grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "installing Debian packages:" $$missing; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && \
	    apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	touch $@

install: deps $(VENV)/.installed

install-system: deps
	$(PYTHON) -m venv $(PREFIX)
	$(PREFIX)/bin/pip install -q --upgrade pip
	$(PREFIX)/bin/pip install -q '.[$(EXTRAS)]'
	install -d -m 0755 $(BINDIR) $(UNITDIR)
	install -d -m 0755 $(SYSCONFDIR)
	for c in flatnet-manage flatnet-network flatnet-metadata \
	    flatnet-dhcpbridge; do \
	    ln -sf $(PREFIX)/bin/$$c $(BINDIR)/$$c; done
	for u in network compute metadata; do \
	    sed 's#@PREFIX@#$(PREFIX)#g; s#@SYSCONFDIR@#$(SYSCONFDIR)#g' \
	    etc/flatnet/flatnet-$$u.service.in \
	    > $(UNITDIR)/flatnet-$$u.service; done
	[ -e $(SYSCONFDIR)/flatnet.conf ] || \
	    install -m 0640 etc/flatnet/flatnet.conf $(SYSCONFDIR)/flatnet.conf
	[ -e $(SYSCONFDIR)/compute.conf ] || \
	    install -m 0644 etc/flatnet/compute.conf $(SYSCONFDIR)/compute.conf
	@echo "installed in $(PREFIX); next: edit $(SYSCONFDIR)/flatnet.conf," \
	    "flatnet-manage db sync, systemctl enable --now flatnet-network" \
	    "(or flatnet-compute on a compute-only host)"

lint: install
	$(VENV)/bin/ruff check flatnet tests bench demo
	$(VENV)/bin/ruff format --check flatnet tests bench demo

typecheck: install
	$(VENV)/bin/mypy

unit: install
	$(PY) -m pytest -q -m 'not root' tests

# pytest exits 5 when it collected nothing: that is a failure here too.
test: install lint typecheck
	bash tools/run-tests.sh

# make demo NO_VM=1: network namespaces instead of VMs (demo/run.py)
demo: install
	$(PY) demo/run.py $(if $(NO_VM),--no-vm)

bench: install
	bash tools/run-bench.sh

genconfig: install
	$(VENV)/bin/oslo-config-generator \
	    --config-file etc/oslo-config-generator/flatnet.conf

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache \
	    .ruff_cache
