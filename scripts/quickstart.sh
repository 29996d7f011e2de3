#!/usr/bin/env bash
# One command, fresh clone, fresh machine: start the Maesn emulator, run
# `meltano run tap-maesn-qonto target-duckdb`, and check every loaded table's row
# count against the emulator's truth (a loader that loses rows cannot pass unnoticed).
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
started=$(date +%s)
work=.quickstart
mkdir -p "$work"

# Meltano gets its own virtualenv: it is a tool, not a dependency of the tap.
if [ ! -x "$work/meltano/bin/meltano" ]; then
  uv venv --quiet "$work/meltano"
  uv pip install --quiet --python "$work/meltano/bin/python" "meltano==4.4.1"
fi
meltano="$PWD/$work/meltano/bin/meltano"

rm -f "$work/emulator.url"
uv run --locked python -m tap_maesn_qonto.emulator --port 0 --url-file "$work/emulator.url" \
  --invoices 2500 --bills 1800 --booking-proposals 1200 > "$work/emulator.log" 2>&1 &
emulator_pid=$!
trap 'kill $emulator_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$work/emulator.url" ] && break; sleep 0.1; done
export TAP_MAESN_QONTO_API_URL="$(cat "$work/emulator.url")"
echo "Maesn emulator: $TAP_MAESN_QONTO_API_URL"

export MELTANO_SEND_ANONYMOUS_USAGE_STATS=false
"$meltano" install
# Start from an empty warehouse and no state, so the counts below mean something.
rm -rf output/warehouse.duckdb && mkdir -p output
"$meltano" state clear --force emulator:tap-maesn-qonto-to-target-duckdb >/dev/null 2>&1 || true

echo "== Run 1: full extraction"
"$meltano" run tap-maesn-qonto target-duckdb

echo "== Changing data in the emulator (updates and new records), then run 2: incremental"
uv run --locked python - "$TAP_MAESN_QONTO_API_URL" <<'PY'
import json, sys, urllib.request
for resource in ("invoices", "bills", "bookingProposals"):
    body = json.dumps({"resource": resource, "update": 25, "create": 10}).encode()
    request = urllib.request.Request(f"{sys.argv[1]}/_emulator/mutate", data=body, method="POST")
    urllib.request.urlopen(request, timeout=10).close()
PY
"$meltano" run tap-maesn-qonto target-duckdb

uv run --locked python scripts/check_warehouse.py \
  --emulator "$TAP_MAESN_QONTO_API_URL" \
  --duckdb-python .meltano/loaders/target-duckdb/venv/bin/python \
  --database output/warehouse.duckdb --schema qonto
echo "Quick start finished in $(( $(date +%s) - started )) s."
