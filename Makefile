# Two commands set everything up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
export TF_CLI_CONFIG_FILE := $(CURDIR)/terraform/terraformrc

.PHONY: install demo test test-fast lint bench clean

install: $(STAMP) terraform/terraformrc

# CLI config for running terraform by hand in the modules (the driver writes its own).
terraform/terraformrc: $(STAMP) controlplane/drivers/terraform.py
	$(BIN)/python -c 'import pathlib, controlplane.drivers.terraform as t; pathlib.Path("$@").write_text(t.cli_config(t.DEFAULT_MIRROR, None))'

$(STAMP): pyproject.toml
	@scripts/install-system-deps.sh
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# The machine's pip config names index folders that may not exist: drop those warnings only.
	set -o pipefail; $(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]' 2>&1 \
	  | { grep -v "^WARNING: Location 'file:" || true; }
	@rm -f $(VENV)/.installed-* && touch $@

# The examples' lifecycle on a copy of tenant-configs/ (out/demo-configs): see scripts/demo.sh.
demo: install
	scripts/demo.sh

# Two workers (pytest-xdist), one per core: most tests wait on terraform, Postgres or a
# subprocess, and each worker starts its own embedded Postgres, so they never share state.
test: install
	$(BIN)/pytest -q -p no:cacheprovider -n 2

test-fast: install
	$(BIN)/pytest -q -m "not slow"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	@# checkov (settings and why each check is skipped: .checkov.yaml and inline skips):
	@# the Terraform modules, then the Kubernetes objects the examples render.
	$(BIN)/checkov -d terraform/ --quiet --compact
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  $(BIN)/tenantctl render -f tenant-configs/ --out "$$tmp" >/dev/null && \
	  $(BIN)/checkov -d "$$tmp" --framework kubernetes --quiet --compact

bench: install
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) out .pytest_cache
