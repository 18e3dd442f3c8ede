# Sourced by scripts/test.sh (and usable by hand: `source scripts/postfix.sh && postfix_start`):
# starts a throwaway Postfix from the machine's packages on a loopback port, with its own
# configuration and queue under a temporary directory, for the bounce round trip of cmd/postie
# (TestPostfixRoundTrip): postie relays through it, it bounces mail to unknown local users, and its
# bounces to the bounce domain go to postie's inbound listener. It exports
#
#   POSTFIX_SMTP=127.0.0.1:P1          Postfix's SMTP listener (postie's relay)
#   POSTIE_TEST_INBOUND=127.0.0.1:P2   where Postfix sends mail for bounce.test: the test starts
#                                      postie's inbound listener (POSTIE_INBOUND_LISTEN) there
#
# and stops Postfix and deletes its files on exit. Postfix accepts any local part of postfix.test
# (local_recipient_maps is empty) and its local delivery then bounces an unknown user, as a
# mailbox provider's MX accepts and bounces later. It looks up no DNS name and retries every few
# seconds, so a bounce sent before postie listens arrives soon after it does.
#
# Postfix's master runs as root (it drops to the `postfix` user for its daemons); when postfix is
# missing, the `postfix` package is installed with apt-get (its own service is not started).

postfix_bin() {
  local d
  for d in /usr/sbin /usr/local/sbin /usr/bin; do
    if [ -x "$d/postfix" ]; then echo "$d/postfix"; return 0; fi
  done
  command -v postfix 2>/dev/null && return 0
  return 1
}

postfix_install() {
  echo "postfix not found: installing Postfix from the machine's packages"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  # debconf's "No configuration": the package's own instance is never used here.
  echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections 2>/dev/null || true
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postfix >/dev/null
}

# postfix_as runs a command as root, with sudo when we are not root.
postfix_as() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  else
    sudo "$@"
  fi
}

postfix_stop() {
  if [ -n "${POSTFIX_TMP:-}" ] && [ -d "$POSTFIX_TMP" ]; then
    postfix_as "$POSTFIX_BIN" -c "$POSTFIX_TMP/etc" stop >/dev/null 2>&1 || true
    local pid i
    pid=$(cat "$POSTFIX_TMP/queue/pid/master.pid" 2>/dev/null | tr -d ' ') || true
    if [ -n "$pid" ]; then
      for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      postfix_as kill -9 "$pid" 2>/dev/null || true
    fi
    postfix_as rm -rf "$POSTFIX_TMP"
  fi
}

# postfix_trap adds postfix_stop to the EXIT trap, keeping what is already there (pg_stop,
# mariadb_stop).
postfix_trap() {
  local prev
  prev=$(trap -p EXIT)
  if [ -n "$prev" ]; then
    eval "set -- $prev"
    trap "postfix_stop; $3" EXIT
  else
    trap postfix_stop EXIT
  fi
}

# postfix_free_port prints a random loopback port nothing listens on, below the kernel's range of
# ephemeral ports: postie binds the inbound port only when the test starts, and a port of that
# range could meanwhile be handed to another test's listener or outgoing connection.
postfix_free_port() {
  local port try low=32768
  read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  [ "$low" -gt 11000 ] 2>/dev/null || low=32768
  for try in $(seq 1 50); do
    port=$((10000 + RANDOM % (low - 10000)))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"; return 0
    fi
  done
  return 1
}

postfix_config() {
  local smtp_port=$1 inbound_port=$2 etc=$POSTFIX_TMP/etc
  cat >"$etc/main.cf" <<EOF
compatibility_level = 3.6
config_directory = $etc
queue_directory = $POSTFIX_TMP/queue
data_directory = $POSTFIX_TMP/data
maillog_file = $POSTFIX_TMP/postfix.log
maillog_file_prefixes = $POSTFIX_TMP
mail_owner = postfix
setgid_group = postdrop

myhostname = postfix.test
mydomain = postfix.test
myorigin = postfix.test
mydestination = postfix.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_banner = postfix.test ESMTP

# Any local part is accepted at SMTP time; local delivery then bounces unknown users.
local_recipient_maps =
alias_maps =
alias_database =
biff = no

# Mail for the bounce domain (Postfix's own bounces, sent to postie's VERP addresses) goes to
# postie's inbound listener; nothing else leaves.
transport_maps = texthash:$etc/transport
relayhost =
default_transport = error:no outbound mail from the test Postfix
smtp_dns_support_level = disabled
smtp_host_lookup = native
smtp_tls_security_level = none
smtputf8_enable = no

# Retry soon: postie's inbound listener may start after the bounce is made.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
maximal_queue_lifetime = 10m
bounce_queue_lifetime = 10m
smtp_connect_timeout = 5s
EOF
  echo "bounce.test smtp:[127.0.0.1]:$inbound_port" >"$etc/transport"
  cat >"$etc/master.cf" <<EOF
127.0.0.1:$smtp_port inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
}

postfix_start() {
  POSTFIX_BIN=$(postfix_bin) || { postfix_install && POSTFIX_BIN=$(postfix_bin); } || {
    echo "Postfix could not be installed: no postfix" >&2; return 1; }
  POSTFIX_TMP=$(mktemp -d /tmp/postie-postfix.XXXXXX)
  chmod 755 "$POSTFIX_TMP"
  mkdir -p "$POSTFIX_TMP/etc" "$POSTFIX_TMP/queue" "$POSTFIX_TMP/data"
  [ "$(id -u)" -eq 0 ] && chown postfix "$POSTFIX_TMP/data"
  [ "$(id -u)" -ne 0 ] && sudo chown postfix "$POSTFIX_TMP/data"
  postfix_trap
  local try smtp_port inbound_port i
  for try in 1 2 3 4 5 6 7 8; do
    smtp_port=$(postfix_free_port) && inbound_port=$(postfix_free_port) || continue
    [ "$smtp_port" = "$inbound_port" ] && continue
    postfix_config "$smtp_port" "$inbound_port"
    postfix_as "$POSTFIX_BIN" -c "$POSTFIX_TMP/etc" start >"$POSTFIX_TMP/start.log" 2>&1 || continue
    for i in $(seq 1 100); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$smtp_port") 2>/dev/null; then
        export POSTFIX_SMTP="127.0.0.1:$smtp_port"
        export POSTIE_TEST_INBOUND="127.0.0.1:$inbound_port"
        echo "Postfix $(postconf -c "$POSTFIX_TMP/etc" -h mail_version 2>/dev/null) on $POSTFIX_SMTP, bounces for bounce.test to $POSTIE_TEST_INBOUND (files in $POSTFIX_TMP)"
        return 0
      fi
      sleep 0.1
    done
    postfix_as "$POSTFIX_BIN" -c "$POSTFIX_TMP/etc" stop >/dev/null 2>&1 || true
  done
  echo "Postfix did not start:" >&2
  cat "$POSTFIX_TMP/start.log" >&2
  tail -20 "$POSTFIX_TMP/postfix.log" >&2 2>/dev/null
  return 1
}
