# The two commands of the quick start are `make lab` and `make test`; the rest are their parts.
SHELL := /bin/bash
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
STAMP := $(VENV)/.bootstrap-$(shell cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -c1-12)
SCENARIOS ?= default farm

.PHONY: bootstrap lab lab-down lab-status bench-scale test lint unit molecule clean

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

## make test: everything CI runs
test: lint unit molecule

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
	for s in $(SCENARIOS); do molecule test -s $$s || { rc=$$?; break; }; done; \
	svpn lab host-cleanup; exit $$rc

clean: lab-down
	rm -rf $(VENV) .lab
