"""Soak test of the tap's two promises, "delete nothing" and "lose nothing".

One in-process :class:`Emulator` holds several accounts with a few dozen records of each
resource; the tap runs as a subprocess (``python -m tap_maesn_qonto``) once per round, each
round resuming from the previous round's last STATE, and its stdout is loaded into a
warehouse model with target-postgres semantics (tests/support/warehouse.py). Each round is
drawn from a seeded ``random.Random``: edits, creations, deletions and shrunk line items at
the source before the run, edits during it (``mutate_every_requests``), random and scripted
faults, lists that leave some records' line items out (``list_omits_line_items``), an
account failing for the whole round, an account left out of the round's ``accounts`` (it
comes back later), a reconcile (``reconcile_interval_days: 0``; otherwise the setting is
left out, and reconciles are opt-in), "a week passes" (every ``reconciled_at`` in the state
handed to the run is moved 8 days back, as if the soak's rounds were days apart), and
SIGTERM or SIGKILL at a random moment (after a delay, or after so many stdout lines). The
dataset may hold a group of records sharing one updatedDate second and records served
without updatedDate (both drawn once per seed).

Invariants checked after every round:

I1  delete nothing: no row retired by this round's ACTIVATE_VERSION exists at the source
    when the round ends (a parent row: its id is still listed for its account; a line-item
    row: its parent still exists with at least that many lines).
I2  lose nothing: exit 0 implies that every record of every account of the round that was
    not changed while the tap ran is in the warehouse, live, equal to the emulator's truth
    (every field, timestamps compared as instants, money as exact numbers; updatedDate in
    the tap's ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` form), and so is each of its line items.
I3  clean exits: exit code 0, 1, 3, 130 or 143 (-9 after our SIGKILL); no Python traceback
    and no key on stderr or stdout; every complete stdout line loads.
I4  reconciles are opt-in: a run whose config leaves ``reconcile_interval_days`` out sends
    no ACTIVATE_VERSION.

Then a quiet round (all accounts, no faults, no changes) must exit 0, and a reconcile round
must exit 0 and leave the live rows equal to the source, every stream including line items
(F). ``SOAK_ROUNDS`` and ``SOAK_SEED`` choose the length and the seed; a failure prints the
seed, and each failing round's number, plan and violations.

Run it: ``uv run --locked pytest -n 0 -q -m e2e tests/e2e/test_soak.py``
(``SOAK_ROUNDS=20 SOAK_SEED=7 ...`` for a longer soak with another seed; add
``--basetemp DIR`` to keep each round's config, state, stdout and stderr). A seed fixes the
plans, not the exact interleaving: when a signal lands and which request a mutation
follows depend on timing, so one seed's violations vary a little from run to run. The
warehouse model's unit tests at the end of this file are not marked e2e.

Knobs this test would use if the emulator had them: a way to drop the scripted faults no
request matched (it clears ``Emulator._scripted_faults`` before the quiet round), and a
fake clock for the tap (it ages the state instead).
"""

from __future__ import annotations

import doctest
import json
import typing as t
from decimal import Decimal

import pytest

from tests.support import warehouse as warehouse_module
from tests.support.warehouse import BadOutput, Warehouse

# --------------------------------------------------------------------------- the model's tests


def _schema(stream: str, *keys: str) -> dict[str, t.Any]:
    return {"type": "SCHEMA", "stream": stream, "schema": {}, "key_properties": list(keys)}


def _record(stream: str, version: int | None = None, **record: t.Any) -> dict[str, t.Any]:
    message = {"type": "RECORD", "stream": stream, "record": record}
    return message if version is None else {**message, "version": version}


def test_the_warehouse_doctest_passes() -> None:
    assert doctest.testmod(warehouse_module).failed == 0


def test_an_upsert_replaces_the_row_and_its_version() -> None:
    w = Warehouse()
    w.apply(_schema("lines", "parent", "position"))
    w.apply(_record("lines", 1, parent="p", position=1, amount=Decimal("1.10")))
    w.apply(_record("lines", 5, parent="p", position=1, amount=Decimal("2.20")))
    (row,) = w.live("lines").values()
    assert (row.key, row.version, row.record["amount"]) == (("p", 1), 5, Decimal("2.20"))
    w.apply(_record("lines", parent="p", position=1, amount=Decimal("3.30")))
    assert w.live("lines")["p", 1].version is None  # a record without version clears it


def test_activate_version_retires_older_versions_only_and_an_upsert_revives() -> None:
    w = Warehouse()
    w.apply(_schema("s", "id"))
    w.apply(_schema("other", "id"))
    for record_id, version in (("old", 1), ("same", 2), ("newer", 3), ("none", None)):
        w.apply(_record("s", version, id=record_id))
    w.apply(_record("other", 1, id="elsewhere"))
    retired = w.apply({"type": "ACTIVATE_VERSION", "stream": "s", "version": 2})
    assert [r.key for r in retired] == [("old",)]
    assert sorted(w.live("s")) == [("newer",), ("none",), ("same",)]
    assert sorted(w.live("other")) == [("elsewhere",)]  # other streams are untouched
    assert w.apply({"type": "ACTIVATE_VERSION", "stream": "s", "version": 2}) == []
    w.apply(_record("s", 1, id="old"))  # upserted again: live again, even with an old version
    assert ("old",) in w.live("s")


def test_a_torn_last_line_is_ignored_and_the_last_state_kept() -> None:
    lines = [
        json.dumps(_schema("s", "id")),
        json.dumps({"type": "STATE", "value": {"n": 1}}),
        '{"type": "RECORD", "stream": "s", "record": {"id": "a", "x": 0.1}, "version": 1}',
        json.dumps({"type": "STATE", "value": {"n": 2}}),
        '{"type": "RECORD", "stream": "s", "rec',
    ]
    w = Warehouse()
    loaded = w.load("\n".join(lines))
    assert loaded.torn_last_line
    assert loaded.messages == 4
    assert loaded.last_state == w.state == {"n": 2}
    assert w.live("s")[("a",)].record["x"] == Decimal("0.1")  # exact, never through float


def test_output_a_target_could_not_load_is_refused() -> None:
    with pytest.raises(BadOutput, match="before its SCHEMA"):
        Warehouse().load(json.dumps(_record("s", id="a")) + "\n")
    with pytest.raises(BadOutput, match="not JSON"):
        Warehouse().load('{"type": "STATE", "val\n{"type": "STATE", "value": {}}\n')
