# The security review of template.yaml (docs/deploy.md, "Security review"). Included from the top
# Makefile; also usable alone: make -f mk/checkov.mk checkov
#
# checkov (tools/requirements-checkov.txt, pinned) lives in its own virtualenv, .venv-checkov, apart
# from the others. It runs offline (--skip-download: no policy metadata from Prisma Cloud) and fails
# on any failed check; a finding that does not apply is skipped in template.yaml itself, with
# checkov's inline `Metadata: checkov: skip:` and the reason beside it.

PYTHON ?= python3
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
CHECKOV := $(CHECKOV_VENV)/bin/checkov
TEMPLATE ?= template.yaml

.PHONY: checkov checkov-venv checkov-clean

checkov-venv: $(CHECKOV_STAMP) ## Create .venv-checkov with the pinned checkov (tools/requirements-checkov.txt)

$(CHECKOV_STAMP): tools/requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements-checkov.txt
	touch $@

checkov: checkov-venv ## checkov on template.yaml (CloudFormation checks; any failed check fails; part of `make lint`)
	$(CHECKOV) --file $(TEMPLATE) --framework cloudformation --skip-download --quiet --compact

clean: checkov-clean
checkov-clean:
	rm -rf $(CHECKOV_VENV)
