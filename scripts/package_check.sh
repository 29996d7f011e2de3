#!/usr/bin/env bash
# Build the sdist and wheel, check their metadata, install the wheel into a fresh
# virtualenv and run the installed tap: --about, then a short sync against the
# emulator that ships inside the wheel. Then the README's "from a built wheel" path
# with the faker extra: `pip install "dist/…whl[faker]"` and a stream map using fake.name().
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
work=$(mktemp -d)
trap 'kill "${emulator_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

uv build --quiet --out-dir "$work/dist"
uv tool run --quiet twine==7.0.0 check --strict "$work"/dist/*
wheel=$(ls "$work"/dist/*.whl)
# Listed into a variable first: `grep -q` closing the pipe early would fail the listing.
contents=$(python3 -m zipfile -l "$wheel")
grep -q "tap_maesn_qonto/emulator/server.py" <<<"$contents" || { echo "emulator missing from wheel"; exit 1; }
grep -q "tap_maesn_qonto/schemas/invoices.json" <<<"$contents" || { echo "schemas missing from wheel"; exit 1; }

uv venv --quiet "$work/venv"
uv pip install --quiet --python "$work/venv/bin/python" "$wheel"
"$work/venv/bin/tap-maesn-qonto" --about > /dev/null

"$work/venv/bin/python" -m tap_maesn_qonto.emulator --port 0 --url-file "$work/url" \
  --invoices 150 --bills 40 --booking-proposals 30 > /dev/null 2>&1 &
emulator_pid=$!
for _ in $(seq 100); do [ -s "$work/url" ] && break; sleep 0.1; done
printf '{"api_key": "emulator-api-key", "account_key": "emulator-account-qonto", "api_url": "%s"}' \
  "$(cat "$work/url")" > "$work/config.json"
# Parent records only: the line-item streams add a row per line.
parents='"type":"RECORD","stream":"(invoices|bills|booking_proposals)"'
records=$("$work/venv/bin/tap-maesn-qonto" --config "$work/config.json" 2>/dev/null | grep -cE "$parents")
[ "$records" -eq 220 ] || { echo "installed wheel synced $records records, expected 220"; exit 1; }

# The faker extra, as the README installs it: a stream map using fake.name() works.
uv venv --quiet "$work/venv-faker"
uv pip install --quiet --python "$work/venv-faker/bin/python" "$wheel[faker]"
printf '{"api_key": "emulator-api-key", "account_key": "emulator-account-qonto", "api_url": "%s",
  "stream_maps": {"invoices": {"name": "fake.name()"}, "bills": {"__filter__": "False"}, "booking_proposals": {"__filter__": "False"}},
  "faker_config": {"seed": 1, "locale": "fr_FR"}}' "$(cat "$work/url")" > "$work/config-faker.json"
faked=$("$work/venv-faker/bin/tap-maesn-qonto" --config "$work/config-faker.json" 2>"$work/faker.log" | grep -cE "$parents") \
  || { tail -5 "$work/faker.log"; echo "a stream map using fake.name() failed with the faker extra"; exit 1; }
[ "$faked" -eq 150 ] || { echo "the faker stream map synced $faked invoices, expected 150"; exit 1; }
echo "Package check: sdist and wheel built, twine check passed, installed wheel synced $records records; with [faker], fake.name() mapped $faked invoices."
