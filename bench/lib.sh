# Helpers for bench/run (sourced, not run): ports, processes, counters, CPU accounting, statistics.

log() { echo "bench: $*" >&2; }
fail() { echo "bench: FAILED: $*" >&2; exit 1; }

now_ns() { date +%s%N; }
seconds() { awk -v ns="$1" 'BEGIN { printf "%.2f", ns / 1e9 }'; }
per_second() { awk -v n="$1" -v ns="$2" 'BEGIN { printf "%.0f", n / (ns / 1e9) }'; }

# The value of KEY in a line of KEY=VALUE words (what ionbench prints).
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

# --- ports -------------------------------------------------------------------------------------------------------
port_in_use() { ss -Hltn "sport = :$1" | grep -q .; }
# A port nobody listens on, below the kernel's ephemeral range (32768+) so no outgoing connection holds it either.
# smtp-sink does not fail when its port is taken (the kernel then splits connections between two sinks), so every
# server gets a port checked here just before it starts.
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 12000))
    port_in_use "$port" || { echo "$port"; return; }
  done
}
# $1 port, $2 pid, $3 name, $4 its log: waits up to 30 s for the listener, fails if the process died first.
wait_listening() {
  local _
  for _ in $(seq 1 600); do
    port_in_use "$1" && return 0
    kill -0 "$2" 2>/dev/null || { cat "$4" >&2 || true; fail "$3 exited before listening on port $1"; }
    sleep 0.05
  done
  cat "$4" >&2 || true
  fail "$3 is not listening on port $1 after 30 s"
}

# --- processes -----------------------------------------------------------------------------------------------------
# Stops one process this script started: TERM, then KILL after $2 seconds (default 20).
stop_pid() {
  local pid=$1 grace=${2:-20} _
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 $((grace * 20))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
# Peak and current resident memory of a process, in kB ("VmHWM" or "VmRSS").
memory_kb() { awk -v key="$2:" '$1 == key { print $2 }' "/proc/$1/status"; }
# CPU time a process used so far (user + system), in ns.
process_cpu_ns() {
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.0f\n", ($12 + $13) * 1e9 / hz }' "/proc/$1/stat"
}

# --- smtp-sink ----------------------------------------------------------------------------------------------------
# The last "mesg=" counter smtp-sink -c wrote ("sess=1 quit=0 mesg=42\r" per event). For a sink that is idle or
# stopped; while messages arrive, ionbench polls (it skips a half-written record).
sink_count() {
  local n
  n=$(tail -c 128 "$1" 2>/dev/null | tr '\r' '\n' | sed -n 's/.*mesg=\([0-9][0-9]*\)$/\1/p' | tail -1)
  echo "${n:-0}"
}

# --- CPU accounting ----------------------------------------------------------------------------------------------
# Everything a measurement starts runs through cg_exec; where the cgroup-v1 cpuacct hierarchy is writable it then
# runs in a private group, so the CPU time of all of it (daemonised Postfix children included) can be read back.
# CPU per message is far less sensitive to other load on the machine than a rate. Without cpuacct: "n/a".
CG=
cg_init() {
  local root=/sys/fs/cgroup/cpuacct
  if [ -w "$root/cgroup.procs" ]; then
    CG=$(mktemp -d "$root/ion-bench.XXXXXX" 2>/dev/null) || CG=
    [ -n "$CG" ] && [ -f "$CG/cpuacct.usage" ] || CG=
  fi
}
cg_exec() { [ -z "$CG" ] || echo "$BASHPID" >"$CG/cgroup.procs"; exec "$@"; }
cg_usage_ns() { if [ -n "$CG" ]; then cat "$CG/cpuacct.usage"; else echo 0; fi; }
cg_cleanup() {
  local _
  [ -n "$CG" ] || return 0
  for _ in $(seq 1 20); do rmdir "$CG" 2>/dev/null && break; sleep 0.25; done
  CG=
}
# Busy CPU time of the whole machine in ns (user + nice + system + irq + softirq + steal).
machine_busy_ns() {
  awk -v hz="$(getconf CLK_TCK)" '$1 == "cpu" { printf "%.0f\n", ($2 + $3 + $4 + $7 + $8 + $9) * 1e9 / hz }' /proc/stat
}
# "CPU x ms/msg; other load y cores" for a measurement: $1 our CPU ns, $2 machine busy ns, $3 wall ns, $4 messages.
cpu_note() {
  if [ -n "$CG" ]; then
    awk -v ours="$1" -v all="$2" -v ns="$3" -v n="$4" 'BEGIN {
      other = (all - ours) / ns; if (other < 0) other = 0
      printf "CPU (all processes) %.2f ms/msg; other load %.2f cores", ours / 1e6 / n, other }'
  else
    echo "CPU n/a (no writable cpuacct cgroup)"
  fi
}

# --- statistics --------------------------------------------------------------------------------------------------
# "median min max" of the arguments.
stats() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    print m, v[1], v[NR] }'
}
