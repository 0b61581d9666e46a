# A private Postfix instance for bench/run (sourced, not run): what a user would pick instead of ion on one
# machine, a local relay with a durable queue (cleanup fsyncs each queue file before smtpd answers 250), relaying
# everything to smtp-sink. The system's /etc/postfix instance is neither used nor changed: configuration, queue,
# data folder and log all live in the folder given to postfix_create.

POSTFIX_DIR=
POSTFIX_MASTER_PID=

# $1 instance folder (its parents must be reachable by the postfix user), $2 smtpd port, $3 relay (sink) port.
# Postfix defaults throughout, except what a loopback-only relay to a fixed host needs.
postfix_create() {
  local dir=$1
  rm -rf "$dir"
  mkdir -p "$dir/etc" "$dir/spool" "$dir/data"
  chown postfix "$dir/data"
  cat >"$dir/etc/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $dir/spool
data_directory = $dir/data
mail_owner = postfix
setgid_group = postdrop
# No syslog here: postlogd writes this file (Postfix only writes under an allowed prefix).
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
myhostname = relay.bench.invalid
mydomain = bench.invalid
myorigin = \$myhostname
# Relay only: nothing is delivered locally.
mydestination =
local_recipient_maps =
local_transport = error:local delivery is off
alias_maps =
alias_database =
# Loopback only, for clients and for the relay.
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_peername_lookup = no
relayhost = [127.0.0.1]:$3
smtp_host_lookup = native
smtp_dns_support_level = disabled
smtp_tls_security_level = none
smtpd_tls_security_level = none
biff = no
append_dot_mydomain = no
CF
  # Only the services a relay uses; smtpd listens on the benchmark's port instead of 25.
  cat >"$dir/etc/master.cf" <<CF
# service   type  private unpriv chroot wakeup maxproc command
127.0.0.1:$2 inet n       -      n      -      -       smtpd
pickup      unix  n       -      n      60     1       pickup
cleanup     unix  n       -      n      -      0       cleanup
qmgr        unix  n       -      n      300    1       qmgr
rewrite     unix  -       -      n      -      -       trivial-rewrite
bounce      unix  -       -      n      -      0       bounce
defer       unix  -       -      n      -      0       bounce
trace       unix  -       -      n      -      0       bounce
verify      unix  -       -      n      -      1       verify
flush       unix  n       -      n      1000?  0       flush
proxymap    unix  -       -      n      -      -       proxymap
smtp        unix  -       -      n      -      -       smtp
relay       unix  -       -      n      -      -       smtp
showq       unix  n       -      n      -      -       showq
error       unix  -       -      n      -      -       error
retry       unix  -       -      n      -      -       error
discard     unix  -       -      n      -      -       discard
anvil       unix  -       -      n      -      1       anvil
scache      unix  -       -      n      -      1       scache
postlog     unix-dgram n  -      n      -      1       postlogd
CF
}

# $1 instance folder: starts its master (in the benchmark's CPU group) and remembers its PID for postfix_stop.
postfix_start() {
  POSTFIX_DIR=$1
  # postfix reports start-up errors only to its log file.
  if ! (cg_exec /usr/sbin/postfix -c "$1/etc" start) >"$1/start.log" 2>&1; then
    cat "$1/start.log" >&2
    tail -20 "$1/maillog" >&2 2>/dev/null || true
    fail "postfix -c $1/etc start failed"
  fi
  POSTFIX_MASTER_PID=$(awk 'NR == 1 { print $1 }' "$1/spool/pid/master.pid")
}

postfix_stop() {
  local _
  [ -n "$POSTFIX_DIR" ] || return 0
  /usr/sbin/postfix -c "$POSTFIX_DIR/etc" stop >/dev/null 2>&1 || true
  # The master takes its children with it; make sure it is gone before the next instance starts.
  if [ -n "$POSTFIX_MASTER_PID" ]; then
    for _ in $(seq 1 100); do kill -0 "$POSTFIX_MASTER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$POSTFIX_MASTER_PID" 2>/dev/null || true
  fi
  POSTFIX_DIR=
  POSTFIX_MASTER_PID=
}

# Messages still in this instance's queue.
postfix_queued() {
  find "$1/spool/incoming" "$1/spool/active" "$1/spool/deferred" "$1/spool/maildrop" "$1/spool/hold" -type f 2>/dev/null | wc -l
}
