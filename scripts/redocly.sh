#!/usr/bin/env bash
# Prints the path of a Redocly CLI (the OpenAPI linter the OpenAPI test of internal/httpapi runs),
# installing it with npm into a cache directory when it is not there yet. Used by scripts/test.sh
# (which exports POSTIE_REDOCLY) and by that test when run alone. Exits 1, printing nothing on
# stdout, when npm is missing.
set -euo pipefail

VERSION=${REDOCLY_VERSION:-2.77.0}
DIR=${XDG_CACHE_HOME:-$HOME/.cache}/postie/redocly-cli-$VERSION
BIN=$DIR/node_modules/.bin/redocly

if [ ! -x "$BIN" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "npm not found: cannot install @redocly/cli" >&2
    exit 1
  fi
  echo "installing @redocly/cli@$VERSION into $DIR" >&2
  mkdir -p "$DIR"
  npm install --prefix "$DIR" --no-audit --no-fund --loglevel=error "@redocly/cli@$VERSION" >&2
fi
echo "$BIN"
