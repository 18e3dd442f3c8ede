# Sourced by scripts/test.sh (and usable by hand: `source scripts/pg.sh && pg_start`): starts a
# throwaway PostgreSQL cluster from the machine's packages on a loopback port under a temporary
# directory, exports TEST_DATABASE_URL, and stops the cluster and deletes its files on exit.
#
# PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user (created by
# the Debian package). When initdb is missing, the `postgresql` package is installed with apt-get.
# The cluster trades durability for speed (fsync off): it holds nothing but test data.

pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    if [ -x "$d/initdb" ]; then echo "$d"; return 0; fi
  done
  command -v initdb >/dev/null 2>&1 && dirname "$(command -v initdb)" && return 0
  return 1
}

pg_install() {
  echo "initdb not found: installing PostgreSQL from the machine's packages"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
}

# pg_as runs a command as the cluster's owner: postgres when we are root, ourselves otherwise.
pg_as() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

pg_stop() {
  if [ -n "${PG_TMP:-}" ] && [ -d "$PG_TMP" ]; then
    pg_as "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$PG_TMP"
  fi
}

pg_start() {
  PG_BIN=$(pg_bin) || { pg_install && PG_BIN=$(pg_bin); } || {
    echo "PostgreSQL could not be installed: no initdb" >&2; return 1; }
  PG_TMP=$(mktemp -d /tmp/postie-pg.XXXXXX)
  chmod 755 "$PG_TMP"
  [ "$(id -u)" -eq 0 ] && chown postgres "$PG_TMP"
  trap pg_stop EXIT
  pg_as "$PG_BIN/initdb" -D "$PG_TMP/data" -A trust -U postgres -E UTF8 --no-sync >"$PG_TMP/initdb.log" 2>&1 || {
    cat "$PG_TMP/initdb.log" >&2; return 1; }
  local try port
  for try in 1 2 3 4 5 6 7 8; do
    port=$((20000 + RANDOM % 30000))
    if pg_as "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/server.log" -w -t 60 \
      -o "-p $port -k $PG_TMP -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=128MB" \
      start >/dev/null 2>&1; then
      export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
      echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data in $PG_TMP)"
      return 0
    fi
  done
  echo "PostgreSQL did not start:" >&2
  tail -20 "$PG_TMP/server.log" >&2
  return 1
}
