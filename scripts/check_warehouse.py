"""Compare each loaded table with the emulator's truth and print one row per table.

Usage: check_warehouse.py --emulator URL --duckdb-python PY --database FILE --schema NAME

DuckDB is queried through the loader's own interpreter (the one that wrote the
file), so this script needs nothing beyond the standard library. Exits 1 if any
table's row count or distinct-id count differs from the emulator's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import urllib.request

TABLES = {"invoices": "invoices", "bills": "bills", "booking_proposals": "bookingProposals"}

QUERY = """
import duckdb, json, sys
con = duckdb.connect(sys.argv[1], read_only=True)
out = {}
for table in sys.argv[3:]:
    rows, ids = con.execute(
        f'select count(*), count(distinct id) from "{sys.argv[2]}"."{table}"'
    ).fetchone()
    out[table] = [rows, ids]
print(json.dumps(out))
"""


def emulator_count(url: str, resource: str) -> int:
    with urllib.request.urlopen(f"{url}/_emulator/truth/{resource}", timeout=10) as response:  # noqa: S310 - loopback emulator
        return int(json.load(response)["count"])


def warehouse_counts(python: str, database: str, schema: str) -> dict[str, list[int]]:
    result = subprocess.run(
        [python, "-c", QUERY, database, schema, *TABLES],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--emulator", required=True)
    parser.add_argument("--duckdb-python", required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--schema", required=True)
    args = parser.parse_args()

    loaded = warehouse_counts(args.duckdb_python, args.database, args.schema)
    print(f"{'table':<24} {'rows':>8} {'distinct ids':>13} {'emulator':>9}  result")
    ok = True
    for table, resource in TABLES.items():
        rows, ids = loaded[table]
        expected = emulator_count(args.emulator, resource)
        good = rows == ids == expected
        ok &= good
        print(
            f"{args.schema + '.' + table:<20} {rows:>8} {ids:>13} {expected:>9}  {'OK' if good else 'MISMATCH'}"
        )
    print("All tables match the emulator." if ok else "Row counts differ from the emulator!")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
