"""The warehouse check (scripts/check_warehouse.py), the loopback PostgreSQL helper
(scripts/pg_server.py) and the `faker` extra.

The check is what makes the quick start's "money is exact" claim testable, so it must
fail on exactly the losses real targets cause: money through float, a dropped trailing
zero, a timestamp stored as local wall time, a lost or reordered line item, duplicates.
"""

from __future__ import annotations

import importlib.util
import json
import re
import socket
import subprocess
import sys
import tomllib
import typing as t
from copy import deepcopy
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import pytest

from tap_maesn_qonto.emulator import Emulator

ROOT = Path(__file__).resolve().parents[2]


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


check_warehouse = _script("check_warehouse")
pg_server = _script("pg_server")

SERVED: dict[str, t.Any] = {
    "id": "inv-1",
    "totalAmount": Decimal("47947.724043644385255950"),
    "sumNetAmount": Decimal("22.10"),
    "paymentTermDuration": 30,
    "status": "PAID",
    "updatedDate": "2026-03-04T10:00:00.123+02:00",
    "invoiceDate": "2026-03-04",
    "lineItems": [
        {
            "name": "Conseil",
            "quantity": 2,
            "unitAmount": Decimal("0.123456789012345678"),
            "createdDate": "2026-03-04T08:00:00Z",
            "dimensions": [{"id": "d1", "name": "Été 2026"}],
        },
        {"name": "Hébergement", "quantity": 1, "unitAmount": Decimal("10.00"), "dimensions": None},
    ],
    "addresses": None,
}
# What a correct load looks like: UTC timestamps (naive at top level, as in a
# `timestamp without time zone` column), line items back from JSON.
LOADED: dict[str, t.Any] = {
    **deepcopy(SERVED),
    "updatedDate": "2026-03-04T08:00:00.123",
    "invoiceDate": "2026-03-04T00:00:00",
    "target_system": "qonto",
    "account_label": "default",
}


def report_for(rows: list[dict], deleted: set[str] | None = None) -> t.Any:
    """check_warehouse's TableReport (the script is loaded from its file, so untyped here)."""
    truth = check_warehouse.Truth({"inv-1": deepcopy(SERVED)}, deleted or set())
    return check_warehouse.compare_table("invoices", truth, rows)


def test_a_faithful_load_passes_and_counts_what_it_compared() -> None:
    report = report_for([deepcopy(LOADED)])
    assert report.ok(), report.tally.examples
    assert report.tally.money == 7  # 4 top-level numbers + 3 in line items
    assert report.tally.instants == 3
    assert report.tally.line_items == 2


@pytest.mark.parametrize(
    ("field", "stored", "kind"),
    [
        ("totalAmount", 47947.72404364438, "money"),  # through float
        ("totalAmount", Decimal("47947.724043644385255950000"), "money"),  # scale changed
        ("sumNetAmount", Decimal("22.1"), "money"),  # trailing zero dropped
        ("paymentTermDuration", Decimal("30.0"), "money"),  # 30 became 30.0
        ("updatedDate", "2026-03-04T10:00:00.123", "timestamp"),  # Paris wall time as UTC
        ("invoiceDate", "2026-03-03T23:00:00", "timestamp"),
        ("status", "paid", "value"),
    ],
)
def test_each_kind_of_loss_is_caught(field: str, stored: object, kind: str) -> None:
    row = {**deepcopy(LOADED), field: stored}
    report = report_for([row])
    assert not report.ok()
    assert report.tally.examples[0].startswith(kind), report.tally.examples


def test_the_same_instant_in_another_offset_passes() -> None:
    row = {**deepcopy(LOADED), "updatedDate": "2026-03-04T09:00:00.123+01:00"}
    assert report_for([row]).ok()


def test_line_items_must_be_intact_and_in_order() -> None:
    for change in (
        lambda items: items.pop(),
        lambda items: items.reverse(),
        lambda items: items[0].update(unitAmount=0.12345678901234568),
        lambda items: items[0]["dimensions"].clear(),
        lambda items: items[1].pop("name"),
    ):
        row = deepcopy(LOADED)
        change(row["lineItems"])
        report = report_for([row])
        assert not report.ok()
        assert report.tally.line_items_wrong == 1


def test_line_items_kept_as_json_text_are_compared_too() -> None:
    """As JSON-typed columns (DuckDB) and text files (CSV) keep them; numbers as written."""
    row = deepcopy(LOADED)
    text = json.dumps(row["lineItems"], default=lambda d: f"@{d}@")
    row["lineItems"] = re.sub(r'"@([0-9.]+)@"', r"\1", text)
    assert "0.123456789012345678," in row["lineItems"]
    assert report_for([row]).ok(), report_for([row]).tally.examples
    row["lineItems"] = text.replace('"@0.123456789012345678@"', "0.12345678901234568")
    assert not report_for([row]).ok()


def test_duplicates_missing_and_deleted_rows_are_counted() -> None:
    assert report_for([deepcopy(LOADED), deepcopy(LOADED)]).duplicates == 1
    assert not report_for([deepcopy(LOADED), deepcopy(LOADED)]).ok()
    assert report_for([]).missing == 1
    gone = {**deepcopy(LOADED), "id": "inv-0"}
    kept = report_for([deepcopy(LOADED), gone], deleted={"inv-0"})
    assert kept.deleted_kept == 1
    assert not kept.ok()
    assert kept.ok(deleted="kept")
    assert not report_for([deepcopy(LOADED), {**gone, "id": "stranger"}]).ok()


def test_the_printed_table_is_aligned() -> None:
    good = report_for([deepcopy(LOADED)])
    bad = report_for([{**deepcopy(LOADED), "totalAmount": 1.5}])
    bad.table = "booking_proposals"  # a longer name than the header's column
    header, first, second = check_warehouse.render([good, bad], "qonto").splitlines()[:3]
    # Numbers are right-aligned under their header, text left-aligned.
    for column, cell in (("rows", "1"), ("emulator", "1")):
        end = header.index(column) + len(column)
        assert first[end - len(cell) : end] == cell
        assert second[end - len(cell) : end] == cell
    assert header.index("result") == first.index("OK") == second.index("MISMATCH")


def test_truth_is_read_from_a_running_emulator_over_http() -> None:
    with Emulator(counts={"invoices": 120, "bills": 7, "bookingProposals": 3}) as emulator:
        emulator.mutate("invoices", update=3, create=2, delete=4)
        truths = check_warehouse.fetch_truth(emulator.url)
        assert truths["invoices"].records == emulator.truth("invoices")
        assert truths["invoices"].deleted == emulator.deleted_ids("invoices")
        assert len(truths["bills"].records) == 7


# --------------------------------------------------------------------------- pg_server


def _postgres_bin_dirs() -> list[Path]:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    return [path.parent for path in found]


@pytest.mark.skipif(not _postgres_bin_dirs(), reason="no PostgreSQL server binaries here")
def test_pg_server_listens_on_loopback_only_and_leaves_nothing_behind(tmp_path: Path) -> None:
    state = tmp_path / "pg.json"
    started = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "pg_server.py"),
            "start",
            "--state",
            str(state),
            "--bin-dir",
            str(_postgres_bin_dirs()[-1]),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert started.returncode == 0, started.stderr
    description = json.loads(state.read_text())
    try:
        server = pg_server.Server.from_description(description)
        assert server.psql("show listen_addresses").strip() == "127.0.0.1"
        assert server.psql("show unix_socket_directories").strip() == ""
        with socket.create_connection(("127.0.0.1", description["port"]), timeout=5):
            pass
    finally:
        stopped = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "pg_server.py"), "stop", "--state", str(state)],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    assert stopped.returncode == 0, stopped.stderr
    assert not state.exists()
    assert not Path(description["root"]).exists()


# --------------------------------------------------------------------------- faker extra


@pytest.mark.skipif(importlib.util.find_spec("faker") is None, reason="faker extra not installed")
def test_a_stream_map_using_faker_works_with_the_faker_extra(tmp_path: Path) -> None:
    """`fake.name()` in a stream map: what `faker_config` is advertised for."""
    with Emulator(counts={"invoices": 12, "bills": 0, "bookingProposals": 0}) as emulator:
        config = {
            "api_key": "emulator-api-key",
            "account_key": "emulator-account-qonto",
            "api_url": emulator.url,
            "start_date": "2020-01-01T00:00:00Z",
            "stream_maps": {"invoices": {"name": "fake.name()"}},
            "faker_config": {"seed": 7, "locale": "fr_FR"},
        }
        (tmp_path / "config.json").write_text(json.dumps(config))
        runs = [
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "tap_maesn_qonto",
                    "--config",
                    str(tmp_path / "config.json"),
                ],
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
            )
            for _ in range(2)
        ]
        served = {record["name"] for record in emulator.truth("invoices").values()}
    for run in runs:
        assert run.returncode == 0, run.stderr[-2000:]
    names = [
        [
            m["record"]["name"]
            for m in map(json.loads, run.stdout.splitlines())
            if m["type"] == "RECORD" and m["stream"] == "invoices"
        ]
        for run in runs
    ]
    assert len(names[0]) == 12
    assert names[0] == names[1], "faker_config.seed must make the fake names reproducible"
    assert not set(names[0]) & served, "the names were not replaced"
    assert all(isinstance(name, str) and " " in name for name in names[0])


def test_the_faker_extra_is_declared() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["optional-dependencies"]["faker"] == ["singer-sdk[faker]~=0.54.9"]
