#!/usr/bin/env bash
# Runs every check and test of postie, installing what they need. Called by `make test` and by
# .ci/run. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
STATICCHECK_VERSION=${STATICCHECK_VERSION:-2026.2.2}
GOBIN_DIR=$($GO env GOPATH)/bin

step() { printf '\n== %s\n' "$*"; }

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

step "go vet"
$GO vet ./...

step "staticcheck"
if ! "$GOBIN_DIR/staticcheck" -version 2>/dev/null | grep -q "$STATICCHECK_VERSION"; then
  $GO install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi
"$GOBIN_DIR/staticcheck" ./...

step "go test -race"
$GO test -race -count=1 -timeout 20m ./...
