"""The warehouse check (scripts/check_warehouse.py), the loopback PostgreSQL helper
(scripts/pg_server.py) and the `faker` extra.

The check is what makes the quick start's "money is exact" claim testable, so it must
fail on exactly the losses real targets cause: money through float, a dropped trailing
zero, a timestamp stored as local wall time, a lost or reordered line item, duplicates.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

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


def test_truth_is_read_from_a_running_emulator_over_http() -> None:
    with Emulator(counts={"invoices": 120, "bills": 7, "bookingProposals": 3}) as emulator:
        emulator.mutate("invoices", update=3, create=2, delete=4)
        truths = check_warehouse.fetch_truth(emulator.url)
        assert truths["invoices"].records == emulator.truth("invoices")
        assert truths["invoices"].deleted == emulator.deleted_ids("invoices")
        assert len(truths["bills"].records) == 7
