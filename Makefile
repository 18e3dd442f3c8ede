# postie — the two commands are `make run` and `make test` (see README.md).
GO ?= go
STATICCHECK_VERSION ?= v0.8.2

.PHONY: run test build bench

## run: postie on the embedded default (SQLite in ./postie-data, capture transport)
run:
	$(GO) run ./cmd/postie serve

## test: every check and every test, with the race detector
test:
	STATICCHECK_VERSION=$(STATICCHECK_VERSION) ./scripts/test.sh

## build: a static binary in ./bin/postie
build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/postie ./cmd/postie

## bench: the accept benchmark of docs/BENCHMARKS.md
bench: build
	./bin/postie bench
