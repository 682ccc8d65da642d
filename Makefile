# Corral: `make demo` brings up the example project; `make test` runs the whole suite.
# Both call `make setup`, which is idempotent and safe to rerun.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
CORRAL := $(VENV)/bin/corral
DEB_PACKAGES := qemu-system-x86 qemu-utils libvirt-daemon-system libvirt-daemon-driver-lxc libvirt-dev pkg-config \
	dnsmasq-base busybox-static cpio e2fsprogs iproute2 iputils-ping gcc python3-venv python3-dev \
	libvirt-clients libxml2-utils cloud-init openssl mmdebstrap chromium postgresql wrk \
	ansible-core
DEMO := examples/demo.corral

.PHONY: setup demo test lint typecheck unit bench clean-demo

setup: .setup-debs $(VENV)/.installed
	@sh scripts/fetch-kernel.sh
	@sh scripts/start-daemons.sh
	@sh scripts/start-postgres.sh

.setup-debs:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "setup: installing Debian packages:" $$missing; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[test,libvirt,postgresql]'
	@touch $@

demo: setup
	@$(CORRAL) template list --json | grep -q '"tiny"' || $(CORRAL) template build tiny
	$(CORRAL) up $(DEMO)
	$(CORRAL) status -p demo
	@echo
	@echo "Reach the guests: 'corral vm console demo.HOST' (serial console) or ping their addresses above."
	@echo "Remove them:      '$(CORRAL) remove -p demo --yes'"

lint: setup
	$(VENV)/bin/ruff check corral tests bench

typecheck: setup
	$(VENV)/bin/mypy corral

test: setup lint typecheck
	$(VENV)/bin/pytest -q -p no:cacheprovider

bench: setup
	$(PY) bench/parse_resolve.py
	$(PY) bench/status_scale.py
	$(PY) bench/convert_scale.py
	@$(CORRAL) template list --json | grep -q '"tiny"' || $(CORRAL) template build tiny
	$(PY) bench/up_vs_libvirt.py
	$(PY) bench/one_host_floors.py
	$(PY) bench/up_many_hosts.py
	$(PY) bench/status_many_hosts.py
	$(PY) bench/migrate_vs_virsh.py
	$(PY) bench/export_import.py
	$(PY) bench/boot_storm.py
	$(PY) bench/server_load.py
	$(PY) bench/debian_template.py
