# The detection rules in every SIEM (docs/downstream.md, "Detections in your SIEM"). Included from the
# top Makefile; also usable alone: make -f mk/sigma.mk sigma
#
# pySigma and its backends (tools/requirements-sigma.txt, pinned) live in their own virtualenv,
# .venv-sigma, apart from the emulator's .venv. Nothing here needs the network once it is installed:
# the ATT&CK and D3FEND tag validators are skipped because pySigma 1.x downloads those catalogues at
# run time (every other validator of `sigma check` runs, and issues fail the target).

PYTHON ?= python3
SIGMA_VENV := .venv-sigma
SIGMA_STAMP := $(SIGMA_VENV)/.installed
SIGMA := $(SIGMA_VENV)/bin/sigma
# The rules (detections/<pack>/<rule>.yml) and where the conversions go (generated, gitignored).
RULES_DIR ?= detections
SIGMA_DIST ?= $(RULES_DIR)/dist
SIGMA_CHECK_FLAGS := --fail-on-error --fail-on-issues -x attacktag -x d3_fendtag
# The packs: every folder of $(RULES_DIR) but the pipelines and the generated output.
SIGMA_PACKS = $(filter-out $(RULES_DIR)/dist/ $(RULES_DIR)/pipelines/,$(sort $(wildcard $(RULES_DIR)/*/)))

.PHONY: sigma sigma-venv sigma-check sigma-clean

sigma-venv: $(SIGMA_STAMP) ## Create .venv-sigma with sigma-cli, the SIEM backends and DuckDB (tools/requirements-sigma.txt)

$(SIGMA_STAMP): tools/requirements-sigma.txt
	$(PYTHON) -m venv $(SIGMA_VENV)
	$(SIGMA_VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements-sigma.txt
	touch $@

sigma-check: sigma-venv ## sigma check every rule under detections/ (errors and issues fail; part of `make lint`)
	@test -n "$(SIGMA_PACKS)" || { echo "no rule packs under $(RULES_DIR)/" >&2; exit 1; }
	$(SIGMA) check $(SIGMA_CHECK_FLAGS) $(SIGMA_PACKS)

sigma: sigma-check ## Convert every rule to Splunk, Elastic, Sentinel and Panther under detections/dist/ and list what a backend cannot express
	$(SIGMA_VENV)/bin/python tools/sigma_convert.py --rules $(RULES_DIR) --pipelines $(RULES_DIR)/pipelines --out $(SIGMA_DIST)

# The cross-engine test (tests/cross_engine.rs) runs tools/sigma_duckdb.py from .venv-sigma.
test: sigma-venv

clean: sigma-clean
sigma-clean:
	rm -rf $(SIGMA_VENV) $(SIGMA_DIST)
