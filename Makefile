# The two commands of the quick start are `make lab` and `make test`; the rest are their parts.
SHELL := /bin/bash
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
STAMP := $(VENV)/.bootstrap-$(shell cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -c1-12)
SCENARIOS ?= default farm scale ssh

.PHONY: bootstrap lab lab-down lab-status bench-scale bench bench-helpdesk bench-metrics test test-kernel lint unit molecule clean

bootstrap: $(STAMP)

$(STAMP): pyproject.toml scripts/bootstrap.sh
	scripts/bootstrap.sh
	rm -f $(VENV)/.bootstrap-* && touch $@

## make lab: bring up the lab farm (inventories/lab), deploy it with playbooks/site.yml, connect users, show status
lab: bootstrap
	svpn lab up

lab-down: bootstrap
	svpn lab down

lab-status: bootstrap
	svpn lab status

## make bench-scale: wall time of scale.yml adding one concentrator to the lab farm (brings the lab up first)
bench-scale: bootstrap
	svpn lab up
	svpn lab bench-scale

## make test: everything CI runs (the kernel's ESP last: test-kernel)
test: lint unit molecule test-kernel

lint: bootstrap
	ruff check scripts tests plugins molecule
	ruff format --check scripts tests plugins molecule
	yamllint --strict .
	ansible-lint --profile production

unit: bootstrap
	python -m pytest -q tests/unit

molecule: bootstrap
	svpn lab prepare
	set -o pipefail; rc=0; \
	for s in $(SCENARIOS); do echo "== molecule $$s: start $$(date -u +%T)"; molecule test -s $$s || { rc=$$?; break; }; \
		echo "== molecule $$s: done $$(date -u +%T)"; done; \
	svpn lab host-cleanup; exit $$rc

## make test-kernel: the kernel's ESP (concentrator_data_plane: kernel) on a QEMU guest with Debian's kernel,
## managed over SSH (molecule/kernel); TCG is slow, so it is its own target, which CI runs after `make test`
test-kernel: bootstrap
	scripts/bootstrap.sh vm
	svpn lab prepare
	set -o pipefail; rc=0; echo "== molecule kernel: start $$(date -u +%T)"; \
	molecule test -s kernel || rc=$$?; echo "== molecule kernel: done $$(date -u +%T)"; \
	svpn lab vm down --all; svpn lab host-cleanup; exit $$rc

## make bench: 10,000 users through the LB onto the lab farm, a reconnect storm, then 10,000 with the farm's
## preferred ECP-384 for the planner's calibration (docs/benchmarks.md); not part of `make test`
bench: bootstrap
	svpn lab up
	svpn loadtest --users 10000 --ike-proposal aes256gcm16-prfsha256-curve25519 --fresh-nodes --storm \
		--duration 600 --json .lab/reports/bench-10000.json
	svpn loadtest --users 10000 --fresh-nodes --duration 600 --json .lab/reports/bench-10000-ecp384.json

## make bench-helpdesk: svpn status, whereis and explain timed while the load test holds 10,000 users on the lab
## farm (docs/benchmarks.md); not part of `make test`
bench-helpdesk: bootstrap
	svpn lab up
	svpn loadtest --users 10000 --duration 1200 --during-settle 30 \
		--during 'svpn helpdesk bench --runs 5 --json .lab/reports/helpdesk-bench-10000.json' \
		--json .lab/reports/loadtest-helpdesk-10000.json

## make bench-metrics: what a scrape of each exporter costs (wall time, CPU) while the load test holds 10,000
## users on the lab farm (docs/benchmarks.md); not part of `make test`
bench-metrics: bootstrap
	svpn lab up
	svpn loadtest --users 10000 --duration 1200 --during-settle 30 \
		--during 'python -m svpn.metrics.bench --json .lab/reports/metrics-bench-10000.json' \
		--json .lab/reports/loadtest-metrics-10000.json

clean: lab-down
	rm -rf $(VENV) .lab
