# reliamq developer commands. `make test` is what CI runs (see .ci/run).
GO            ?= go
TEST_TIMEOUT  ?= 20m
BENCH         ?= .
BENCHTIME     ?= 1s
STATICCHECK   ?= $(shell $(GO) env GOPATH)/bin/staticcheck

.PHONY: test test-unit test-race bench bench-brokers lint cover demo

## test: everything a user means by "the tests": unit tests, tests against the
## embedded RocketMQ broker with the real client, and tests against the local
## services (PostgreSQL, MariaDB, Redis, RabbitMQ, NATS). Then the race detector
## over every package; tests that run the RocketMQ client are built with
## `//go:build !race` because the client itself has data races.
test: test-unit test-race

# The RocketMQ client keeps broadcasting consumers' offsets in files under
# $HOME/.rocketmq_client_go unless this variable names another directory: the
# tests' go in a temporary one, removed afterwards.
test-unit:
	@dir=$$(mktemp -d); echo "$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./..."; \
	env "rocketmq.client.localOffsetStoreDir=$$dir" $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...; \
	rc=$$?; rm -rf "$$dir"; exit $$rc

test-race:
	$(GO) test -count=1 -race -short -timeout $(TEST_TIMEOUT) ./...

## demo: the seed scenario on embedded defaults (embedded RocketMQ broker + SQLite):
## publishes through a broker outage and failing consumers, prints a summary by UUID.
## The first build compiles the SQLite driver and the RocketMQ client (a few
## minutes on a cold cache); it is announced, then the binary runs.
DEMO_BIN ?= $(or $(TMPDIR),/tmp)/reliamq-comment-service
demo:
	@echo "Building the demo (examples/comment-service); the first build takes a few minutes..."
	$(GO) build -o $(DEMO_BIN) ./examples/comment-service
	@echo "Running the demo."
	$(DEMO_BIN)

## bench: every Go benchmark once, in one run: a check that each runs (about
## 5 minutes on 2 cores at BENCHTIME=1s). Comparisons are made over interleaved
## rounds with scripts/bench-rounds and scripts/bench-ab (docs/benchmarks.md).
bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -benchtime $(BENCHTIME) -timeout 60m ./...

## bench-brokers: the standalone embedded RocketMQ broker against real 4.9.4
## and 5.2.0 brokers (RELIAMQ_ROCKETMQ494_NAMESRV, RELIAMQ_ROCKETMQ520_NAMESRV),
## same client load, and the adapter against the raw client on the real
## brokers, interleaved over ROUNDS rounds (docs/benchmarks.md).
ROUNDS ?= 5
bench-brokers:
	scripts/bench-brokers $(ROUNDS) $(BENCHTIME)

## lint: gofmt, go vet and staticcheck.
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@test -x $(STATICCHECK) || $(GO) install honnef.co/go/tools/cmd/staticcheck@latest
	$(STATICCHECK) ./...

## cover: unit and service tests with a coverage profile (coverage.out, coverage.html).
cover:
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) -coverprofile=coverage.out -coverpkg=./... ./...
	$(GO) tool cover -func=coverage.out | tail -1
	$(GO) tool cover -html=coverage.out -o coverage.html
