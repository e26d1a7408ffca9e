#!/usr/bin/env bash
# Reproduces the shootout and memory rows of cable-fixtures/BENCHMARKS.md in one run on this
# machine: cable-server, the floor and Rails 6.1 on puma (../shared/refserver), each started
# fresh for every measurement and stopped after it, all on 127.0.0.1.
#
#   cable-fixtures/scripts/shootout.sh [OUT_DIR]
#
# Writes OUT_DIR/<run>.txt (each shootout's output), OUT_DIR/results.jsonl (one JSON line per
# run, with "label") and OUT_DIR/table.md (the tables), and prints the tables.
#
# Environment (defaults in brackets):
#   CLIENTS ["1000 5000"]   client counts of the broadcast runs (empty: none)
#   SAMPLES [100]           measured broadcasts per run
#   WARMUP [10]             warm-up broadcasts before them (not measured)
#   CONCURRENT [4]          broadcasts in flight
#   PADDING [200]           payload padding, bytes
#   IDLE_CLIENTS [10000]    connections of the memory-per-idle-connection runs (0: skip)
#   SERVERS ["cable-server floor rails rails-info"]   which servers to measure; `rails-info` is the
#                           reference server with its log at INFO rather than DEBUG
#   MAX_LOAD [1.5]          wait (up to LOAD_TRIES x 30 s) for the 1-minute load to drop below
#   LOAD_TRIES [10]
#   SKIP_BUILD              set to use the existing release binaries
#   REFSERVER [<repo>/../shared/refserver]
#   RAILS_TIMEOUT_S [600]   the bound on each Rails run, seconds
#   RAILS_IDLE_ARGS         extra shootout options for Rails' idle run, e.g.
#                           "--connect-timeout-ms 300000" (in the recorded run Rails slowed
#                           to a few connections a second past ~7,000 and the idle run timed
#                           out; try RAILS_TIMEOUT_S=1500 with it)
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
out=${1:-${TMPDIR:-/tmp}/cable-shootout-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
: >"$out/results.jsonl"

CLIENTS=${CLIENTS-"1000 5000"}
SAMPLES=${SAMPLES:-100}
WARMUP=${WARMUP:-10}
CONCURRENT=${CONCURRENT:-4}
PADDING=${PADDING:-200}
IDLE_CLIENTS=${IDLE_CLIENTS:-10000}
SERVERS=${SERVERS:-"cable-server floor rails rails-info"}
MAX_LOAD=${MAX_LOAD:-1.5}
LOAD_TRIES=${LOAD_TRIES:-10}
REFSERVER=${REFSERVER:-$root/../shared/refserver}
bin=$root/target/release

# File descriptors: every client is one here and one in the server (which inherits this).
hard=$(ulimit -Hn)
want=65536
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then want=$hard; fi
ulimit -n "$want"
echo "fd limit: $(ulimit -n) (hard: $hard)"

if [ -z "${SKIP_BUILD:-}" ]; then
  cargo build --release -p cable-server -p cable-fixtures
fi

for _ in $(seq 1 "$LOAD_TRIES"); do
  load=$(cut -d' ' -f1 /proc/loadavg)
  if awk -v l="$load" -v m="$MAX_LOAD" 'BEGIN { exit !(l < m) }'; then break; fi
  echo "load $load >= $MAX_LOAD: waiting 30 s"
  sleep 30
done
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- cable-server cable-proto cable-fixtures || echo ' (+ uncommitted changes)')"
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -m | awk '/Mem:/ {print $2}') MiB, $(uname -sr)"
  echo "load before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "rustc: $(rustc --version); ruby: $(ruby --version 2>/dev/null | cut -d' ' -f1-2); puma: $(puma --version 2>/dev/null | head -1)"
  echo "settings: CLIENTS=\"$CLIENTS\" SAMPLES=$SAMPLES WARMUP=$WARMUP CONCURRENT=$CONCURRENT PADDING=$PADDING IDLE_CLIENTS=$IDLE_CLIENTS SERVERS=\"$SERVERS\""
} | tee "$out/machine.txt"

server_pid=""
stop_server() {
  [ -n "$server_pid" ] || return 0
  kill "$server_pid" 2>/dev/null || true
  for _ in $(seq 1 150); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}
trap stop_server EXIT

wait_port() {
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:$1" >&2
  return 1
}

port=28300
# start_server KIND LOGNAME: starts a fresh server on the next port; sets server_pid, port.
start_server() {
  port=$((port + 1))
  case "$1" in
    cable-server)
      "$bin/cable-server" --app reference --listen "127.0.0.1:$port" --log warn \
        >"$out/$2.server.log" 2>&1 &
      server_pid=$!
      wait_port "$port"
      ;;
    floor)
      "$bin/cable-fixtures" floor --listen "127.0.0.1:$port" >"$out/$2.server.log" 2>&1 &
      server_pid=$!
      wait_port "$port"
      ;;
    rails)
      server_pid=$("$REFSERVER/start.sh" "$port" "$out/$2.rails")
      ;;
    rails-info)
      # The reference server with its logger at INFO instead of DEBUG (a copy of config.ru;
      # ../shared is left alone): how much of Rails' time is its per-frame debug logging.
      mkdir -p "$out/refserver-info"
      sed 's/Logger::DEBUG/Logger::INFO/' "$REFSERVER/config.ru" >"$out/refserver-info/config.ru"
      cp "$REFSERVER/start.sh" "$out/refserver-info/start.sh"
      server_pid=$("$out/refserver-info/start.sh" "$port" "$out/$2.rails")
      ;;
  esac
}

# shoot LABEL ARGS...: one shootout against the current server, recorded.
shoot() {
  local label=$1
  shift
  echo "== $label"
  local rc=0
  "$bin/cable-fixtures" shootout --url "ws://127.0.0.1:$port/cable" --pid "$server_pid" "$@" \
    >"$out/$label.txt" 2>&1 || rc=$?
  cat "$out/$label.txt"
  local json
  json=$(grep '^{' "$out/$label.txt" | tail -n 1 || true)
  if [ -n "$json" ]; then
    printf '{"label":"%s","exit":%d,%s\n' "$label" "$rc" "${json#\{}" >>"$out/results.jsonl"
  else
    echo "{\"label\":\"$label\",\"exit\":$rc,\"error\":true}" >>"$out/results.jsonl"
  fi
}

timeout_for() { # generous bounds for Rails, tight ones for the Rust servers
  case "$1" in rails*) echo "${RAILS_TIMEOUT_S:-600}" ;; *) echo 120 ;; esac
}

for n in $CLIENTS; do
  for kind in $SERVERS; do
    start_server "$kind" "$kind-$n"
    shoot "$kind-$n" --clients "$n" --samples "$SAMPLES" --warmup "$WARMUP" \
      --concurrent "$CONCURRENT" --payload-padding "$PADDING" --timeout-s "$(timeout_for "$kind")" \
      --sample-timeout-ms 60000 --drain-ms 10000
    stop_server
    sleep 2
  done
done

if [ "$IDLE_CLIENTS" -gt 0 ]; then
  for kind in $SERVERS; do
    [ "$kind" = floor ] || [ "$kind" = rails-info ] && continue
    start_server "$kind" "$kind-idle"
    # Warm the server up (code paths, first allocations) with a few clients that leave.
    "$bin/cable-fixtures" shootout --url "ws://127.0.0.1:$port/cable" --clients 10 --samples 10 \
      >"$out/$kind-idle-warmup.txt" 2>&1 || true
    sleep 2
    extra=()
    if [ "$kind" = rails ]; then read -r -a extra <<<"${RAILS_IDLE_ARGS:-}"; fi
    shoot "$kind-idle-$IDLE_CLIENTS" --idle-only --clients "$IDLE_CLIENTS" --settle-ms 5000 \
      --timeout-s "$(timeout_for "$kind")" ${extra[@]+"${extra[@]}"}
    stop_server
    sleep 2
  done
fi

if command -v python3 >/dev/null 2>&1; then
  python3 - "$out/results.jsonl" "$CLIENTS" >"$out/table.md" <<'EOF'
import json, sys
runs = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    runs[r["label"]] = r
clients = sys.argv[2].split()

def f(v, d=2):
    return "-" if v is None else f"{v:.{d}f}"

def ratio(a, b):
    return "-" if a is None or b in (None, 0) else f"{a / b:.3f}"

def rtt(r, k):
    return r.get("rtt_ms", {}).get(k) if r else None

print("| server | clients | p50 ms | p95 ms | p99 ms | deliveries/s | missing | lost results "
      "| connect failures | connect ms | server RSS end MiB |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for n in clients:
    for kind in ("cable-server", "floor", "rails", "rails-info"):
        r = runs.get(f"{kind}-{n}")
        if not r:
            continue
        if r.get("error"):
            print(f"| {kind} | {n} | failed (exit {r['exit']}) |||||||||")
            continue
        rss = r["memory"].get("end_kib")
        print(f"| {kind} | {r['connected']}/{r['clients']} | {f(rtt(r,'p50'))} | {f(rtt(r,'p95'))} "
              f"| {f(rtt(r,'p99'))} | {f(r.get('deliveries_per_s'), 0)} | {r['missing']} "
              f"| {r['lost_results']} | {r['connect_failures']} | {f(r['connect_ms'], 0)} "
              f"| {f(rss / 1024 if rss else None, 1)} |")
print()
print("| clients | p95 cable-server / Rails (goal <= 0.05) | p95 cable-server / floor (goal <= 1.25) "
      "| deliveries/s cable-server / floor |")
print("|---:|---:|---:|---:|")
for n in clients:
    c, fl, ra = (runs.get(f"{k}-{n}") for k in ("cable-server", "floor", "rails"))
    print(f"| {n} | {ratio(rtt(c,'p95'), rtt(ra,'p95'))} | {ratio(rtt(c,'p95'), rtt(fl,'p95'))} "
          f"| {ratio(c and c.get('deliveries_per_s'), fl and fl.get('deliveries_per_s'))} |")
print()
print("| server | idle connections | RSS before MiB | RSS connected MiB | bytes per idle connection "
      "(goal <= 8192) |")
print("|---|---:|---:|---:|---:|")
for label, r in runs.items():
    if "-idle-" not in label or r.get("error"):
        continue
    m = r["memory"]
    kib = lambda v: f(v / 1024 if v is not None else None, 1)
    print(f"| {label.split('-idle-')[0]} | {r['connected']}/{r['clients']} | {kib(m.get('before_kib'))} "
          f"| {kib(m.get('connected_kib'))} | {m.get('per_connection_bytes')} |")
EOF
  echo
  cat "$out/table.md"
fi
echo "results in $out"
