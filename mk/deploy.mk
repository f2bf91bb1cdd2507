# Deployment targets (docs/deploy.md). Included from the top Makefile; also usable alone:
#   make -f mk/deploy.mk validate
#
# The tools live in their own virtualenv, .venv-sam, apart from the test one (.venv): aws-sam-cli,
# cfn-lint and the AWS CLI, pinned below; cargo-lambda (for `sam build`) only when building.
# `validate` works offline and without AWS credentials; the other targets talk to your account.

DEPLOY_MK := $(lastword $(MAKEFILE_LIST))

PYTHON ?= python3
SAM_VENV := .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed
CARGO_LAMBDA_STAMP := $(SAM_VENV)/.cargo-lambda-installed

# Pinned tool versions: change them here (the stamp depends on this file, so `make sam-venv` then
# reinstalls).
AWS_SAM_CLI_VERSION := 1.170.0
CFN_LINT_VERSION := 1.58.0
AWSCLI_VERSION := 1.46.3
CARGO_LAMBDA_VERSION := 1.9.2

# SAM CLI sends telemetry unless told not to; nothing here needs it.
SAM := SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam
CFN_LINT := $(SAM_VENV)/bin/cfn-lint
AWS ?= $(SAM_VENV)/bin/aws

STACK ?= anthropic-compliance-collector
TEMPLATE ?= template.yaml
# One SAM config file per stack: its saved answers (parameters, Region) belong to that stack.
SAMCONFIG ?= samconfig.toml
# The payload `make invoke` sends (events/: manual.json, scheduler.json, scheduled.json).
EVENT ?= events/manual.json
# The payload `make invoke-detector` sends (events/detector-*.json: a hunt, SQS events).
DETECTOR_EVENT ?= events/detector-hunt.json
# The Region: the one `sam deploy --guided` saved in $(SAMCONFIG), else AWS_REGION /
# AWS_DEFAULT_REGION, else your AWS config's; looked up once, when first needed. Empty leaves it to
# the tools (they fail asking for one).
SAMCONFIG_REGION = $(shell sed -nE 's/^[[:space:]]*region[[:space:]]*=[[:space:]]*"([a-z0-9-]+)".*/\1/p' $(SAMCONFIG) 2>/dev/null | head -n 1)
REGION ?= $(eval REGION := $$(or $$(SAMCONFIG_REGION),$$(AWS_REGION),$$(AWS_DEFAULT_REGION),$$(shell $$(AWS) configure get region 2>/dev/null)))$(REGION)
REGION_FLAG = $(if $(REGION),--region $(REGION))
# The architecture `sam build` compiles for must be the stack's Architecture parameter: read it from
# the overrides `sam deploy --guided` saved in $(SAMCONFIG) (default arm64).
ARCH ?= $(or $(shell grep -oE 'Architecture=\\?"?(arm64|x86_64)' $(SAMCONFIG) 2>/dev/null | grep -oE 'arm64|x86_64' | tail -n 1),arm64)

# `sam validate` needs a Region and a credential chain that does not fail; it calls no AWS API.
OFFLINE_AWS_ENV := env -u AWS_PROFILE -u AWS_DEFAULT_PROFILE AWS_CONFIG_FILE=/dev/null \
	AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_ACCESS_KEY_ID=offline AWS_SECRET_ACCESS_KEY=offline \
	AWS_SESSION_TOKEN=offline AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1

# The value of one output of the deployed stack ("None" when it has no such output).
define stack_output
$$($(AWS) cloudformation describe-stacks --stack-name $(STACK) $(REGION_FLAG) \
	--query "Stacks[0].Outputs[?OutputKey=='$(1)'].OutputValue" --output text)
endef

.PHONY: sam-venv validate build deploy invoke invoke-detector logs detector-logs destroy

sam-venv: $(SAM_STAMP) ## Create .venv-sam with pinned aws-sam-cli, cfn-lint and the AWS CLI

$(SAM_STAMP): $(DEPLOY_MK)
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check \
		aws-sam-cli==$(AWS_SAM_CLI_VERSION) cfn-lint==$(CFN_LINT_VERSION) awscli==$(AWSCLI_VERSION)
	touch $@

$(CARGO_LAMBDA_STAMP): $(SAM_STAMP)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check cargo-lambda==$(CARGO_LAMBDA_VERSION)
	touch $@

validate: $(SAM_STAMP) ## Lint template.yaml offline: cfn-lint, sam validate and sam validate --lint
	$(CFN_LINT) -- $(TEMPLATE)
	$(OFFLINE_AWS_ENV) $(SAM) validate --template-file $(TEMPLATE) --region us-east-1
	$(OFFLINE_AWS_ENV) $(SAM) validate --lint --template-file $(TEMPLATE) --region us-east-1

# cargo-lambda comes from PyPI with ziglang (a few hundred MB, once) and cross-compiles for the
# Lambda architecture; sam build finds `cargo lambda` and zig through the virtualenv on PATH.
build: $(CARGO_LAMBDA_STAMP) ## sam build: compile the function for Lambda with cargo-lambda (ARCH=arm64|x86_64)
	PATH="$(CURDIR)/$(SAM_VENV)/bin:$$PATH" $(SAM) build --template-file $(TEMPLATE) \
		--parameter-overrides Architecture=$(ARCH)

# First use ($(SAMCONFIG) holds no parameter_overrides yet): --guided asks for the Region and
# every parameter and saves them. If the Architecture chosen differs from the one just built,
# build again for it and deploy again, so the binary always matches the function.
deploy: validate build ## Deploy the stack (guided the first time; then with the answers saved in SAMCONFIG)
	@set -eu; \
	if grep -Eqs '^[[:space:]]*parameter_overrides[[:space:]]*=' $(SAMCONFIG); then \
		$(SAM) deploy --config-file $(SAMCONFIG) --stack-name $(STACK) $(REGION_FLAG); \
	else \
		$(SAM) deploy --guided --config-file $(SAMCONFIG) --stack-name $(STACK) $(REGION_FLAG); \
		saved=$$(grep -oE 'Architecture=\\?"?(arm64|x86_64)' $(SAMCONFIG) | grep -oE 'arm64|x86_64' | tail -n 1 || true); \
		if [ -n "$$saved" ] && [ "$$saved" != "$(ARCH)" ]; then \
			echo "Architecture $$saved differs from the $(ARCH) build: building and deploying again"; \
			$(MAKE) --no-print-directory -f $(DEPLOY_MK) build ARCH=$$saved; \
			$(SAM) deploy --config-file $(SAMCONFIG) --stack-name $(STACK) $(REGION_FLAG); \
		fi; \
	fi
	@echo "If the secret still holds the placeholder, put your API key in it (docs/deploy.md), then: make invoke"

# A synchronous run can take the whole function timeout: no CLI read timeout.
invoke: $(SAM_STAMP) ## Invoke the deployed function with EVENT (default events/manual.json) and print its run summary
	@set -eu; \
	fn=$(call stack_output,FunctionName); \
	test -n "$$fn" && test "$$fn" != None || { echo "no FunctionName output: is stack $(STACK) deployed in $(or $(REGION),your default Region)?" >&2; exit 1; }; \
	mkdir -p .aws-sam; out=.aws-sam/invoke-response.json; \
	echo "invoking $$fn with $(EVENT) (up to the function timeout)..." >&2; \
	err=$$($(AWS) lambda invoke --function-name "$$fn" $(REGION_FLAG) --cli-read-timeout 0 \
		--payload fileb://$(EVENT) --query FunctionError --output text "$$out"); \
	$(SAM_VENV)/bin/python -m json.tool "$$out"; \
	if [ "$$err" != None ]; then \
		echo "the run failed: look up its errorType in docs/runbook.md (details: make logs)" >&2; exit 1; \
	fi; \
	if $(SAM_VENV)/bin/python -c 'import json,sys; d = json.load(open(sys.argv[1])); sys.exit(isinstance(d, dict) and d.get("status") == "failed")' "$$out"; then :; else \
		echo "verify found a failing check: each has its remedy above" >&2; exit 1; \
	fi

# A hunt reads a range of the archive and may take the whole timeout. An SQS event names objects
# by bucket and key: edit them to one of yours first (events/detector-sqs-s3.json).
invoke-detector: $(SAM_STAMP) ## Invoke the deployed detector with DETECTOR_EVENT (default events/detector-hunt.json)
	@set -eu; \
	fn=$(call stack_output,DetectorFunctionName); \
	test -n "$$fn" && test "$$fn" != None || { echo "no DetectorFunctionName output: is stack $(STACK) deployed in $(or $(REGION),your default Region)?" >&2; exit 1; }; \
	mkdir -p .aws-sam; out=.aws-sam/invoke-detector-response.json; \
	echo "invoking $$fn with $(DETECTOR_EVENT) (up to the function timeout)..." >&2; \
	err=$$($(AWS) lambda invoke --function-name "$$fn" $(REGION_FLAG) --cli-read-timeout 0 \
		--payload fileb://$(DETECTOR_EVENT) --query FunctionError --output text "$$out"); \
	$(SAM_VENV)/bin/python -m json.tool "$$out"; \
	if [ "$$err" != None ]; then \
		echo "the detector failed: its errorType is above (details: make detector-logs)" >&2; exit 1; \
	fi; \
	if $(SAM_VENV)/bin/python -c 'import json,sys; d = json.load(open(sys.argv[1])); sys.exit(bool(isinstance(d, dict) and d.get("batchItemFailures")))' "$$out"; then :; else \
		echo "some records failed (batchItemFailures): SQS would retry them; see make detector-logs" >&2; exit 1; \
	fi

logs: $(SAM_STAMP) ## Tail the function's logs (sam logs --tail)
	@set -eu; \
	group=$(call stack_output,LogGroupName); \
	test -n "$$group" && test "$$group" != None || { echo "no LogGroupName output: is stack $(STACK) deployed?" >&2; exit 1; }; \
	$(SAM) logs --config-file $(SAMCONFIG) --stack-name $(STACK) --cw-log-group "$$group" --tail $(REGION_FLAG)

detector-logs: $(SAM_STAMP) ## Tail the detector's logs (sam logs --tail)
	@set -eu; \
	group=$(call stack_output,DetectorLogGroupName); \
	test -n "$$group" && test "$$group" != None || { echo "no DetectorLogGroupName output: is stack $(STACK) deployed?" >&2; exit 1; }; \
	$(SAM) logs --config-file $(SAMCONFIG) --stack-name $(STACK) --cw-log-group "$$group" --tail $(REGION_FLAG)

destroy: $(SAM_STAMP) ## Delete the stack (sam delete); the bucket, state table and secret are retained
	$(SAM) delete --config-file $(SAMCONFIG) --stack-name $(STACK) $(REGION_FLAG)
	@echo "Retained on purpose (delete them by hand if you really mean to): the activity bucket,"
	@echo "the DynamoDB state table and the API key secret the stack created. docs/deploy.md#removing-the-stack"
