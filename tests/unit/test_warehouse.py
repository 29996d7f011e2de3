"""The warehouse model the soak judges with (tests/support/warehouse.py): target-postgres's
upsert, ACTIVATE_VERSION and state semantics, and what a target could not load.

It is the judge of tests/e2e/test_soak.py, so it must be obviously right.
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
