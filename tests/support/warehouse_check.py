"""Compare what a target loaded with the emulator's truth, value by value.

    python3 scripts/check_warehouse.py --emulator URL --postgres .quickstart/pg.json --schema qonto

For every table: rows, distinct ids and the emulator's count must agree (no row lost,
none duplicated), and every record is compared field by field with the record the
emulator serves:

* money (every JSON number) digit for digit: the stored text must equal the served
  text, trailing zeros included, so a pass through float (47947.724043644385255950
  becoming 47947.72404364438) or a rounding cannot pass;
* timestamps as instants: the served "2026-03-04T10:00:00+02:00" must be the same
  instant as the stored value (a naive stored timestamp is read as UTC, which the
  project's loaders are configured to write);
* nested line items, their dimensions and addresses recursively, with the same rules;
* every other field for equality.

The truth comes from the emulator over HTTP: its API pages (the records exactly as
served, read with a plain client, numbers parsed as Decimal) and
``GET /_emulator/truth/<resource>`` (which ids exist and which were deleted), so the
check shares no code with the tap. Standard library only; PostgreSQL is read with
psql as ``row_to_json`` text, which keeps numeric digits exact (a driver would hand
JSON numbers back as floats). Exits 1 on any difference.

The readers for other targets (DuckDB, JSONL, CSV) are used by tests/e2e/test_meltano.py
to record what each target does with this tap's types (README, "Tested targets").
scripts/check_warehouse.py (the quick start's last step) runs :func:`main`.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import urllib.request
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from tests.support import pg  # the server's own psql call

# Loaded table/stream name -> emulator resource.
TABLES = {"invoices": "invoices", "bills": "bills", "booking_proposals": "bookingProposals"}
API_KEY = "emulator-api-key"
ACCOUNT_KEY = "emulator-account-qonto"
TARGET_SYSTEM = "qonto"

_INSTANT = re.compile(
    r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?"
)
EXAMPLES = 3  # differences shown per table


# --------------------------------------------------------------------------- truth


def _get(url: str, headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - the emulator's http URL
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.loads(response.read(), parse_float=Decimal)


def fetch_truth(emulator: str) -> dict[str, Truth]:
    """Every record as the emulator serves it now, and the ids it deleted."""
    headers = {"X-API-KEY": API_KEY, "X-ACCOUNT-KEY": ACCOUNT_KEY}
    truths = {}
    for table, resource in TABLES.items():
        summary = _get(f"{emulator}/_emulator/truth/{resource}")
        records: dict[str, dict[str, Any]] = {}
        page = 1
        while True:
            body = _get(
                f"{emulator}/accounting/{resource}?page={page}&limit=100"
                "&orderField=createdDate&orderDir=ASC",
                headers,
            )
            records.update((record["id"], record) for record in body["data"])
            if page >= body["meta"]["pagination"]["totalPages"]:
                break
            page += 1
        if sorted(records) != summary["ids"]:
            raise RuntimeError(f"{resource}: the API pages and the truth ids disagree")
        truths[table] = Truth(records, set(summary["deleted_ids"]))
    return truths


@dataclass
class Truth:
    records: dict[str, dict[str, Any]]
    deleted: set[str]


# --------------------------------------------------------------------------- comparison


def as_instant(value: Any) -> datetime | None:
    """An ISO 8601 date or date-time (any offset; naive means UTC) as an aware datetime."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if not isinstance(value, str) or not _INSTANT.fullmatch(value):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def number_text(value: Any) -> str | None:
    """The digits of a number exactly as written (Decimal keeps them; a float shows its repr)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        value = Decimal(repr(value))
    if isinstance(value, int):
        value = Decimal(value)
    if isinstance(value, str):
        try:
            value = Decimal(value)
        except InvalidOperation:
            return None
    return format(value, "f") if isinstance(value, Decimal) and value.is_finite() else None


@dataclass
class Tally:
    """What was compared in one table, and the differences found."""

    money: int = 0
    money_wrong: int = 0
    instants: int = 0
    instants_wrong: int = 0
    line_items: int = 0
    line_items_wrong: int = 0
    other_wrong: int = 0
    examples: list[str] = field(default_factory=list)

    def wrong(self, kind: str, path: str, truth: Any, stored: Any) -> None:
        if len(self.examples) < EXAMPLES:
            self.examples.append(f"{kind} {path}: served {truth!r}, stored {stored!r}")


def compare_value(  # noqa: PLR0911, PLR0912 - one branch per JSON type reads best here
    truth: Any, stored: Any, path: str, tally: Tally
) -> bool:
    """True if ``stored`` holds ``truth`` exactly (see the module docstring); tallies it."""
    if isinstance(stored, str) and isinstance(truth, dict | list):
        stored = _maybe_json(stored)  # a target that keeps nested values as JSON text
    if truth is None:
        ok = stored is None
        if not ok:
            tally.other_wrong += 1
            tally.wrong("value", path, truth, stored)
        return ok
    if isinstance(truth, bool) or (isinstance(truth, str) and as_instant(truth) is None):
        ok = truth == stored
        if not ok:
            tally.other_wrong += 1
            tally.wrong("value", path, truth, stored)
        return ok
    if isinstance(truth, int | Decimal):
        tally.money += 1
        ok = number_text(truth) == number_text(stored)
        if not ok:
            tally.money_wrong += 1
            tally.wrong("money", path, number_text(truth), stored)
        return ok
    if isinstance(truth, str):
        tally.instants += 1
        ok = as_instant(truth) == as_instant(stored)
        if not ok:
            tally.instants_wrong += 1
            tally.wrong("timestamp", path, truth, stored)
        return ok
    if isinstance(truth, list):
        if not isinstance(stored, list) or len(stored) != len(truth):
            tally.other_wrong += 1
            tally.wrong("list", path, truth, stored)
            return False
        # A list, not a generator: every item is compared (and tallied), not just up to the first miss.
        return all(
            [  # noqa: C419
                compare_value(t, s, f"{path}[{i}]", tally)
                for i, (t, s) in enumerate(zip(truth, stored, strict=True))
            ]
        )
    if isinstance(truth, dict):
        if not isinstance(stored, dict):
            tally.other_wrong += 1
            tally.wrong("object", path, truth, stored)
            return False
        results = []
        for key, value in truth.items():
            if key not in stored:
                tally.other_wrong += 1
                tally.wrong("missing", f"{path}.{key}", value, None)
                results.append(False)
            else:
                results.append(compare_value(value, stored[key], f"{path}.{key}", tally))
        return all(results)
    raise TypeError(f"{path}: unexpected served type {type(truth).__name__}")


def _maybe_json(text: str) -> Any:
    try:
        return json.loads(text, parse_float=Decimal)
    except ValueError:
        return text


def compare_record(truth: dict[str, Any], stored: dict[str, Any], tally: Tally) -> None:
    record_id = truth["id"]
    if not all(key in stored for key in truth):  # target-duckdb lower-cases column names
        stored = {**{key.lower(): value for key, value in stored.items()}, **stored}
        stored.update({key: stored[key.lower()] for key in truth if key.lower() in stored})
    for key, value in truth.items():
        path = f"{record_id}.{key}"
        if key not in stored:
            tally.other_wrong += 1
            tally.wrong("missing column", path, value, None)
            continue
        if key == "lineItems" and isinstance(value, list):
            tally.line_items += len(value)
            before = tally.money_wrong + tally.instants_wrong + tally.other_wrong
            compare_value(value, stored[key], path, tally)
            if tally.money_wrong + tally.instants_wrong + tally.other_wrong != before:
                tally.line_items_wrong += 1
            continue
        compare_value(value, stored[key], path, tally)
    if stored.get("target_system") != TARGET_SYSTEM:
        tally.other_wrong += 1
        tally.wrong(
            "value", f"{record_id}.target_system", TARGET_SYSTEM, stored.get("target_system")
        )


@dataclass
class TableReport:
    table: str
    rows: int
    ids: int
    expected: int
    missing: int
    unexpected: int
    deleted_kept: int
    tally: Tally

    @property
    def duplicates(self) -> int:
        return self.rows - self.ids

    def ok(self, *, deleted: str = "absent", duplicates_allowed: bool = False) -> bool:
        tally = self.tally
        return (
            self.missing == 0
            and self.unexpected == 0
            and (duplicates_allowed or self.duplicates == 0)
            and (deleted == "kept" or self.deleted_kept == 0)
            and tally.money_wrong == tally.instants_wrong == tally.other_wrong == 0
        )


def compare_table(table: str, truth: Truth, rows: Iterable[dict[str, Any]]) -> TableReport:
    """Compare one table; with several rows per id (an append-only target) the last counts."""
    rows = list(rows)
    latest = {row.get("id"): row for row in rows}
    tally = Tally()
    for record_id, record in truth.records.items():
        if record_id in latest:
            compare_record(record, latest[record_id], tally)
    missing = sum(1 for record_id in truth.records if record_id not in latest)
    deleted_kept = sum(1 for record_id in latest if record_id in truth.deleted)
    unexpected = sum(
        1
        for record_id in latest
        if record_id not in truth.records and record_id not in truth.deleted
    )
    for record_id in truth.records:
        if record_id not in latest and len(tally.examples) < EXAMPLES:
            tally.examples.append(f"row {record_id}: served, not loaded")
            break
    return TableReport(
        table, len(rows), len(latest), len(truth.records), missing, unexpected, deleted_kept, tally
    )


def render(
    reports: list[TableReport],
    schema: str,
    *,
    deleted: str = "absent",
    duplicates_allowed: bool = False,
) -> str:
    """One aligned line per table, then the first differences."""
    header = [
        "table",
        "rows",
        "ids",
        "emulator",
        "money exact",
        "same instant",
        "line items",
        "result",
    ]
    lines = [header]
    for report in reports:
        tally = report.tally
        lines.append(
            [
                f"{schema}.{report.table}" if schema else report.table,
                str(report.rows),
                str(report.ids),
                str(report.expected),
                f"{tally.money - tally.money_wrong}/{tally.money}",
                f"{tally.instants - tally.instants_wrong}/{tally.instants}",
                f"{tally.line_items}"
                + (f" ({tally.line_items_wrong} differ)" if tally.line_items_wrong else " intact"),
                "OK"
                if report.ok(deleted=deleted, duplicates_allowed=duplicates_allowed)
                else "MISMATCH",
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    numeric = {1, 2, 3, 4, 5}
    out = [
        "  ".join(
            cell.rjust(w) if i in numeric else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in lines
    ]
    for report in reports:
        extra = []
        if report.missing or report.unexpected or report.duplicates or report.deleted_kept:
            extra.append(
                f"{report.missing} missing, {report.unexpected} unexpected, "
                f"{report.duplicates} duplicate rows, {report.deleted_kept} deleted upstream but kept"
            )
        extra.extend(report.tally.examples)
        out.extend(f"  {report.table}: {line}" for line in extra)
    return "\n".join(out)


# --------------------------------------------------------------------------- readers


def read_postgres(state_file: Path, schema: str) -> dict[str, list[dict[str, Any]]]:
    """Rows as row_to_json text via psql: numeric digits and jsonb arrays come back exact."""
    server = pg.Server.from_description(json.loads(state_file.read_text()))
    tables: dict[str, list[dict[str, Any]]] = {}
    for table in TABLES:
        sql = f'select row_to_json(t)::text from "{schema}"."{table}" t'  # noqa: S608 - our names
        output = server.psql(sql)
        tables[table] = [
            json.loads(line, parse_float=Decimal) for line in output.splitlines() if line
        ]
    return tables


_DUCKDB_DUMP = """
import datetime, decimal, duckdb, json, sys
con = duckdb.connect(sys.argv[1], read_only=True)
out = {}
for table in sys.argv[3:]:
    cursor = con.execute(f'select * from "{sys.argv[2]}"."{table}"')
    names = [d[0] for d in cursor.description]
    out[table] = [dict(zip(names, row)) for row in cursor.fetchall()]
def default(value):
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    raise TypeError(type(value))
print(json.dumps(out, default=default))
"""


def read_duckdb(python: str, database: Path, schema: str) -> dict[str, list[dict[str, Any]]]:
    """Rows through the loader's own duckdb (floats are dumped as their repr: shortest exact)."""
    output = subprocess.run(
        [python, "-c", _DUCKDB_DUMP, str(database), schema, *TABLES],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(output, parse_float=Decimal)


def read_jsonl(directory: Path, prefix: str = "") -> dict[str, list[dict[str, Any]]]:
    """Every line of every file of a stream, oldest file first (file names carry a timestamp)."""
    return {
        table: [
            json.loads(line, parse_float=Decimal)
            for path in sorted(directory.glob(f"{prefix}{table}*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines()
            if line
        ]
        for table in TABLES
    }


def read_csv(directory: Path) -> dict[str, list[dict[str, Any]]]:
    """CSV cells are text: empty means null, JSON-looking text is parsed (numbers as Decimal)."""

    def cell(text: str) -> Any:
        if text == "":
            return None
        if text[:1] in "[{":
            return _maybe_json(text)
        return text

    tables = {}
    for table in TABLES:
        rows: list[dict[str, Any]] = []
        for path in sorted(directory.glob(f"{table}*.csv")):
            with path.open(newline="", encoding="utf-8") as handle:
                rows.extend({k: cell(v) for k, v in row.items()} for row in csv.DictReader(handle))
        tables[table] = rows
    return tables


# --------------------------------------------------------------------------- CLI


def check(truths: dict[str, Truth], loaded: dict[str, list[dict[str, Any]]]) -> list[TableReport]:
    return [compare_table(table, truths[table], loaded.get(table, [])) for table in TABLES]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--emulator", required=True, help="the emulator's URL")
    parser.add_argument(
        "--postgres", type=Path, required=True, help="state file of scripts/pg_server.py"
    )
    parser.add_argument("--schema", default="qonto")
    parser.add_argument(
        "--deleted",
        choices=["absent", "kept"],
        default="absent",
        help="what rows of records deleted upstream must be (the tap cannot see deletions)",
    )
    args = parser.parse_args(argv)
    truths = fetch_truth(args.emulator)
    reports = check(truths, read_postgres(args.postgres, args.schema))
    print(render(reports, args.schema, deleted=args.deleted))
    ok = all(report.ok(deleted=args.deleted) for report in reports)
    counted = Counter[str]()
    for report in reports:
        counted.update(
            money=report.tally.money, instants=report.tally.instants, items=report.tally.line_items
        )
    print(
        f"All tables match the emulator: {sum(r.rows for r in reports)} rows, "
        f"{counted['money']} money values digit for digit, {counted['instants']} timestamps "
        f"as instants, {counted['items']} line items."
        if ok
        else "The warehouse differs from the emulator!"
    )
    return 0 if ok else 1
