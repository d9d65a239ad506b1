# Two commands matter: `make run` (the whole system locally) and `make test`.
SHELL := /bin/bash
GO ?= go
PKGS := ./...
# Each fuzz target runs briefly on every `make test`, from its checked-in seed corpus.
FUZZ_TARGETS := ./internal/catalog:FuzzParse ./internal/token:FuzzVerify ./internal/api:FuzzDecodeCreate ./internal/api:FuzzApprovals ./internal/schedule:FuzzParsePayload
FUZZTIME ?= 5s
LAMBDA_FLAGS := -tags lambda.norpc -trimpath -ldflags "-s -w"
FUNCTIONS := intake approve grant revoke sweep
# The policy catalog bundled next to each function's bootstrap (CATALOG_FILE=catalog.yaml).
CATALOG ?= infra/catalog.example.yaml

.PHONY: run test unit fuzz lint tools build deploy bench soak clean

# Built first and exec'd, so Ctrl-C reaches the stack and ends it cleanly.
run:
	@command -v moto_server >/dev/null || { echo "error: moto_server is missing: pip install 'moto[server]'"; exit 1; }
	@mkdir -p .build && $(GO) build -o .build/jit-local ./infra/local
	@exec .build/jit-local $(ARGS)

test: tools lint unit fuzz

tools:
	@./.ci/check-tools.sh

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	@if [ -f template.yaml ]; then echo "cfn-lint template.yaml"; cfn-lint template.yaml; fi

# The summary says how many tests ran against moto and fails CI on any skip
# caused by a missing tool.
unit:
	@mkdir -p .build && $(GO) build -o .build/testsummary ./infra/testsummary
	@set -o pipefail; $(GO) test -json -count=1 -timeout 30m $(PKGS) | .build/testsummary

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		if ls $$pkg/*_test.go >/dev/null 2>&1 && grep -q "func $$name(" $$pkg/*_test.go; then \
			echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
			$(GO) test -run='^$$' -fuzz="^$$name$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=3s $$pkg; \
		else echo "fuzz target $$name missing in $$pkg"; exit 1; fi; \
	done

# sam build calls build-<LogicalId> with ARTIFACTS_DIR set.
build-%Function:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/$(shell echo $* | tr 'A-Z' 'a-z')
	cp $(CATALOG) $(ARTIFACTS_DIR)/catalog.yaml

build:
	@set -e; for f in $(FUNCTIONS); do \
		CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(LAMBDA_FLAGS) -o .build/$$f/bootstrap ./functions/$$f; \
		printf "%-8s %s bytes\n" $$f $$(stat -c %s .build/$$f/bootstrap); \
	done

deploy:
	@command -v sam >/dev/null || { echo "make deploy needs the AWS SAM CLI, which is not installed: https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/install-sam-cli.html"; exit 1; }
	@if command -v aws >/dev/null; then \
		aws sts get-caller-identity >/dev/null 2>&1 || { echo "make deploy needs AWS credentials: aws sts get-caller-identity found none that work (aws configure, aws sso login, or AWS_PROFILE)"; exit 1; }; \
	else \
		echo "note: the AWS CLI is not installed, so credentials are not checked first; sam deploy needs AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or ~/.aws)"; \
	fi
	sam build && sam deploy $(if $(ENV),--config-env $(ENV),)

# 1,000 request lifecycles through the local stack while SDK middleware
# injects faults (5% of IAM, Scheduler and DynamoDB attempts) and some
# schedule deliveries are duplicated; then the invariants, printed and
# written to docs/reliability.md. Exits non-zero if one breaks. SOAK_ARGS
# passes flags, e.g. SOAK_ARGS="-seed 7 -fault-rate 0.1". The 100-lifecycle
# version runs in `make test` (infra/soak).
SOAK_ARGS ?=
soak:
	@command -v moto_server >/dev/null || { echo "error: moto_server is missing: pip install 'moto[server]'"; exit 1; }
	@mkdir -p .build && $(GO) build -o .build/soak ./infra/soak
	@.build/soak -out docs/reliability.md $(SOAK_ARGS)

# Performance (issue 7): cold starts against a local Lambda Runtime API,
# AWS calls and request units per lifecycle priced per 1,000, sweeper
# scaling, handler benchmarks and gateway load, revoke lag on the local
# stack; all in one run, written to docs/performance.md (a few minutes).
# BENCH_ARGS passes flags, e.g. BENCH_ARGS="-parts cold,cost -runs 5".
BENCH_ARGS ?=
bench:
	@command -v moto_server >/dev/null || { echo "error: moto_server is missing: pip install 'moto[server]'"; exit 1; }
	@mkdir -p .build && $(GO) build -o .build/jitbench ./infra/bench/cmd/jitbench
	@.build/jitbench -out docs/performance.md $(BENCH_ARGS)

clean:
	rm -rf .build .aws-sam
