#!/usr/bin/env bash
# Runs every check and test of postie, installing what they need. Called by `make test` and by
# .ci/run. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
# The module version (staticcheck 2026.2.2 is v0.8.2): the module proxy serves module versions,
# and refuses the 2026.x.y release names.
STATICCHECK_VERSION=${STATICCHECK_VERSION:-v0.8.2}
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
if ! "$GOBIN_DIR/staticcheck" -version 2>/dev/null | grep -q "(${STATICCHECK_VERSION#v})"; then
  $GO install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi
"$GOBIN_DIR/staticcheck" ./...

step "PostgreSQL"
# The PostgreSQL tests (store conformance, multi-node) run against TEST_DATABASE_URL: a throwaway
# cluster started here and stopped on exit, also when a test fails. Set TEST_DATABASE_URL to use a
# server of your own instead (the tests create and drop their own databases in it).
if [ -z "${TEST_DATABASE_URL:-}" ]; then
  # shellcheck source=scripts/pg.sh
  source scripts/pg.sh
  pg_start
fi

step "MariaDB"
# The sync tests (internal/audience/dbsync) read from a real MariaDB at TEST_MARIADB_DSN: a throwaway
# server started here and stopped on exit. Set TEST_MARIADB_DSN (a go-sql-driver/mysql DSN of a
# user allowed to create databases) to use a server of your own instead.
if [ -z "${TEST_MARIADB_DSN:-}" ]; then
  # shellcheck source=scripts/mariadb.sh
  source scripts/mariadb.sh
  mariadb_start
fi

step "Postfix"
# The bounce round trip of cmd/postie (TestPostfixRoundTrip) relays through a real Postfix, which
# bounces to postie's inbound listener: a throwaway instance started here on loopback ports and
# stopped on exit. Set POSTFIX_SMTP and POSTIE_TEST_INBOUND (see scripts/postfix.sh) to use a
# Postfix of your own instead.
if [ -z "${POSTFIX_SMTP:-}" ]; then
  # shellcheck source=scripts/postfix.sh
  source scripts/postfix.sh
  postfix_start
fi

step "OpenAPI linter"
# The OpenAPI test of internal/httpapi lints the served document with Redocly CLI, installed from
# npm into a cache directory on first use. Without npm that test is skipped, saying so.
if [ -z "${POSTIE_REDOCLY:-}" ] && command -v npm >/dev/null 2>&1; then
  POSTIE_REDOCLY=$(scripts/redocly.sh)
  export POSTIE_REDOCLY
  echo "$POSTIE_REDOCLY"
fi

step "go test -race"
$GO test -race -count=1 -timeout 20m ./...

step "deploy/check"
# The deployment files (deploy/): a Go module of its own, so that Helm, kubeconform and the
# Kubernetes libraries stay out of postie's go.mod. Its tests render the Helm chart, validate the
# manifests against the Kubernetes OpenAPI schemas, load compose.yaml, check the systemd unit, and
# build the image where a container engine answers (docs/operations.md, "Deploying"). No -race:
# they start no goroutines of their own, and the race build of Helm's dependencies costs minutes.
(cd deploy/check && $GO vet ./... && $GO test -count=1 -timeout 20m ./...)
