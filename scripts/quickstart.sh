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
rm -rf output/warehouse.duckdb .meltano/run
"$meltano" install
"$meltano" run tap-maesn-qonto target-duckdb

uv run --locked python scripts/check_warehouse.py \
  --emulator "$TAP_MAESN_QONTO_API_URL" \
  --duckdb-python .meltano/loaders/target-duckdb/venv/bin/python \
  --database output/warehouse.duckdb --schema qonto
echo "Quick start finished in $(( $(date +%s) - started )) s."
