# anthropic-compliance-collector — `make help` lists the targets.
#
# Everything a target needs is installed by the target itself: a project-local virtualenv (.venv)
# with moto for the AWS services, and the Rust crates through cargo. Nothing needs Docker.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
CARGO ?= cargo

.PHONY: help venv test lint check demo clean

help: ## Show this list
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | sort | \
		awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

venv: $(VENV)/.installed ## Create .venv with moto and the CloudWatch CBOR front (tools/requirements.txt)

$(VENV)/.installed: tools/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.txt
	touch $@

test: venv ## Run every test: unit, adapters on moto and the simulator, end to end through the Lambda Runtime API
	$(CARGO) build --workspace --all-targets --locked
	$(CARGO) test --workspace --locked

lint: ## cargo fmt --check, clippy -D warnings, cfn-lint, sam validate --lint, sigma check on every rule and checkov on the template
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(MAKE) validate
	$(MAKE) sigma-check
	$(MAKE) checkov

check: lint test ## Everything CI runs

demo: venv ## Run the collector and the detector end to end on local services (simulator + moto) and show what landed and what alerted
	$(CARGO) build --locked --bin anthropic-compliance-collector --bin anthropic-compliance-detector
	$(CARGO) run --locked --quiet --example demo

clean: ## Remove build outputs and virtualenvs
	$(CARGO) clean
	rm -rf $(VENV) .venv-sam .venv-checkov .aws-sam

# Deployment (deploy.mk), the chaos suite (chaos.mk) and the benchmarks (bench.mk).
include $(sort $(wildcard mk/*.mk))
