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
	dnsmasq-base dnsmasq-utils iptables ebtables ipset conntrack arping \
	busybox udhcpc isc-dhcp-client \
	postgresql

.PHONY: all deps install test unit functional lint typecheck demo bench \
	genconfig clean

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

demo: install
	$(PY) demo/run.py

bench: install
	bash tools/run-bench.sh

genconfig: install
	$(VENV)/bin/oslo-config-generator \
	    --config-file etc/oslo-config-generator/flatnet.conf

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache \
	    .ruff_cache
