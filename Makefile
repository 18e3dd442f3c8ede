# postie — the two commands are `make run` and `make test` (see README.md).
GO ?= go
STATICCHECK_VERSION ?= v0.8.2

.PHONY: run test build bench

## run: postie on the embedded default (SQLite in ./postie-data, capture transport). It builds
## ./bin/postie and execs it rather than `go run`, which exits 1 when its program is interrupted:
## Ctrl-C then stops postie cleanly and make reports no error.
run:
	$(GO) build -buildvcs=auto -o bin/postie ./cmd/postie && exec ./bin/postie serve

## test: every check and every test, with the race detector (it starts PostgreSQL, MariaDB and
## Postfix on loopback ports: scripts/test.sh)
test:
	STATICCHECK_VERSION=$(STATICCHECK_VERSION) ./scripts/test.sh

## build: a static binary in ./bin/postie (stamped with the commit: `bin/postie version`)
build:
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=auto -o bin/postie ./cmd/postie

## bench: the accept benchmark of docs/BENCHMARKS.md
bench: build
	./bin/postie bench
