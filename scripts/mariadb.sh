# Sourced by scripts/test.sh (and usable by hand: `source scripts/mariadb.sh && mariadb_start`):
# starts a throwaway MariaDB server from the machine's packages on a loopback port under a temporary
# directory, exports TEST_MARIADB_DSN (a go-sql-driver/mysql DSN naming no database: the sync tests
# create their own), and stops the server and deletes its files on exit.
#
# mariadbd refuses to run as root unless told to, so as root the server runs as the `mysql` user
# (created by the Debian package). When mariadbd is missing, the `mariadb-server` package is
# installed with apt-get. The server trades durability for speed (no flush at commit, no binary
# log): it holds nothing but test data. Its default time zone is not UTC (+03:00), so that the tests
# show sync reads times in UTC whatever the server's zone.

mariadb_bin() {
  local d
  for d in /usr/sbin /usr/bin /usr/local/sbin /usr/local/bin; do
    if [ -x "$d/mariadbd" ]; then echo "$d/mariadbd"; return 0; fi
  done
  command -v mariadbd 2>/dev/null && return 0
  return 1
}

mariadb_install() {
  echo "mariadbd not found: installing MariaDB from the machine's packages"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  # The package's own service is not wanted (and cannot start in a container): only the binaries.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq mariadb-server >/dev/null
}

mariadb_stop() {
  if [ -n "${MARIADB_TMP:-}" ] && [ -d "$MARIADB_TMP" ]; then
    if [ -f "$MARIADB_TMP/mariadb.pid" ]; then
      local pid
      pid=$(cat "$MARIADB_TMP/mariadb.pid")
      kill "$pid" 2>/dev/null || true
      local i
      for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -rf "$MARIADB_TMP"
  fi
}

# mariadb_trap adds mariadb_stop to the EXIT trap, keeping what is already there (pg_stop).
mariadb_trap() {
  local prev
  prev=$(trap -p EXIT)
  if [ -n "$prev" ]; then
    eval "set -- $prev"
    trap "mariadb_stop; $3" EXIT
  else
    trap mariadb_stop EXIT
  fi
}

mariadb_start() {
  MARIADB_BIN=$(mariadb_bin) || { mariadb_install && MARIADB_BIN=$(mariadb_bin); } || {
    echo "MariaDB could not be installed: no mariadbd" >&2; return 1; }
  local bindir
  bindir=$(dirname "$(command -v mariadb-install-db || echo /usr/bin/mariadb-install-db)")
  MARIADB_TMP=$(mktemp -d /tmp/postie-mariadb.XXXXXX)
  chmod 755 "$MARIADB_TMP"
  local user=()
  if [ "$(id -u)" -eq 0 ]; then
    chown mysql "$MARIADB_TMP"
    user=(--user=mysql)
  fi
  mariadb_trap
  "$bindir/mariadb-install-db" --no-defaults "${user[@]}" --datadir="$MARIADB_TMP/data" \
    --auth-root-authentication-method=normal --skip-test-db >"$MARIADB_TMP/install.log" 2>&1 || {
    cat "$MARIADB_TMP/install.log" >&2; return 1; }
  local try port i
  for try in 1 2 3 4 5 6 7 8; do
    port=$((20000 + RANDOM % 30000))
    "$MARIADB_BIN" --no-defaults "${user[@]}" --datadir="$MARIADB_TMP/data" \
      --socket="$MARIADB_TMP/mariadb.sock" --pid-file="$MARIADB_TMP/mariadb.pid" \
      --log-error="$MARIADB_TMP/server.log" --bind-address=127.0.0.1 --port="$port" \
      --skip-name-resolve --skip-log-bin --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 \
      --innodb-buffer-pool-size=256M --max-connections=400 --character-set-server=utf8mb4 \
      --collation-server=utf8mb4_bin --default-time-zone=+03:00 >/dev/null 2>&1 &
    local server=$!
    for i in $(seq 1 300); do
      if "$bindir/mariadb-admin" --no-defaults --socket="$MARIADB_TMP/mariadb.sock" -uroot ping >/dev/null 2>&1; then
        break
      fi
      kill -0 "$server" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$server" 2>/dev/null; then
      # A TCP user for the tests: root is only reachable over the socket (localhost).
      "$bindir/mariadb" --no-defaults --socket="$MARIADB_TMP/mariadb.sock" -uroot -e \
        "CREATE USER 'postie'@'127.0.0.1' IDENTIFIED BY 'postie'; GRANT ALL ON *.* TO 'postie'@'127.0.0.1' WITH GRANT OPTION;" || return 1
      export TEST_MARIADB_DSN="postie:postie@tcp(127.0.0.1:$port)/"
      echo "MariaDB $("$MARIADB_BIN" --version | awk '{print $3}') on 127.0.0.1:$port (data in $MARIADB_TMP)"
      return 0
    fi
  done
  echo "MariaDB did not start:" >&2
  tail -20 "$MARIADB_TMP/server.log" >&2
  return 1
}
