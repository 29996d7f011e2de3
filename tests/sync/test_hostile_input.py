"""Whatever Maesn sends, the tap emits schema-valid records or stops with one clear line.

Property-based: hypothesis generates records from the tap's own schemas (with a
small strategy builder below: hypothesis-jsonschema 0.23 no longer works with
current hypothesis) and then breaks them (wrong types, nulls where objects
belong, huge and non-ASCII strings, many decimals, dates at the edges of time).
A small stub server (tests/support/servers.py) serves them over loopback HTTP to a real
tap, in this process. A record without an id, on the command line:
tests/cli/test_hostile_input.py.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import typing as t
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tap_maesn_qonto.timestamps import normalize_timestamp
from tests.support.configs import stub_config
from tests.support.servers import BillsStub, bills_stub
from tests.support.tap import sync

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "tap_maesn_qonto" / "schemas"
BILLS_SCHEMA = json.loads((SCHEMA_DIR / "bills.json").read_text())
TAP_FIELDS = {"target_system", "account_label"}
HYPOTHESIS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def stub() -> t.Iterator[BillsStub]:
    with bills_stub() as server:
        yield server


def _config(stub: BillsStub) -> dict[str, t.Any]:
    # Its detail endpoint is not a Maesn one: records are taken as listed.
    return stub_config(stub.url, fetch_details="never")


def _emitted_bills(stub: BillsStub, records: list[t.Any]) -> list[dict[str, t.Any]]:
    stub.bills = records
    return sync(_config(stub)).records("bills")


def _assert_schema_valid(records: list[dict[str, t.Any]]) -> None:
    validator = jsonschema.Draft7Validator(
        BILLS_SCHEMA, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )
    for record in records:
        validator.validate(record)  # numbers arrive as Decimal, which JSON Schema counts as number
        assert record.keys() == BILLS_SCHEMA["properties"].keys()


TIMESTAMPS = st.datetimes(
    min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=st.just(dt.UTC)
).map(lambda moment: moment.isoformat())
PLAIN = {
    "string": st.text(max_size=30),
    "number": st.decimals(allow_nan=False, allow_infinity=False, places=6).map(float),
    "integer": st.integers(min_value=-(10**12), max_value=10**12),
    "boolean": st.booleans(),
}


def strategy_for(schema: dict[str, t.Any]) -> st.SearchStrategy[t.Any]:
    """Values valid for one node of the tap's schemas (types, nesting, date-times)."""
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    options: list[st.SearchStrategy[t.Any]] = [st.none()] if "null" in types else []
    kind = next(k for k in types if k != "null")
    if schema.get("format") == "date-time":
        options.append(TIMESTAMPS)
    elif kind == "object":
        properties = schema.get("properties", {})
        options.append(st.fixed_dictionaries({k: strategy_for(v) for k, v in properties.items()}))
    elif kind == "array":
        options.append(st.lists(strategy_for(schema["items"]), max_size=2))
    else:
        options.append(PLAIN[kind])
    return st.one_of(options)


def _record_strategy() -> st.SearchStrategy[dict[str, t.Any]]:
    fields = {k: v for k, v in BILLS_SCHEMA["properties"].items() if k not in TAP_FIELDS | {"id"}}
    return st.fixed_dictionaries(
        {"id": st.uuids().map(str), **{k: strategy_for(v) for k, v in fields.items()}}
    )


@HYPOTHESIS
@given(records=st.lists(_record_strategy(), min_size=1, max_size=3, unique_by=lambda r: r["id"]))
def test_any_schema_shaped_record_comes_out_valid_and_exact(
    stub: BillsStub, records: list[dict]
) -> None:
    emitted = _emitted_bills(stub, records)
    assert [r["id"] for r in emitted] == [r["id"] for r in records]
    _assert_schema_valid(emitted)
    for source, record in zip(records, emitted, strict=True):
        for name, value in source.items():
            if isinstance(value, float):  # sent as JSON text, read back exactly as Decimal
                assert record[name] == decimal.Decimal(json.dumps(value)), name
            elif name.endswith("Date") and isinstance(value, str):
                assert record[name] == normalize_timestamp(value), name


HOSTILE_VALUES = st.one_of(
    st.none(),
    st.text(min_size=5000, max_size=20000),
    st.text(
        alphabet=st.characters(
            min_codepoint=0x80, max_codepoint=0x10FFFF, exclude_categories=["Cs"]
        )
    ),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.decimals(allow_nan=False, allow_infinity=False, places=18).map(str),
    st.booleans(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.sampled_from(
        ["0001-01-01", "9999-12-31T23:59:59Z", "1970-01-01T00:00:00+14:00", "not a date", ""]
    ),
)


@HYPOTHESIS
@given(
    base=_record_strategy(),
    breakage=st.dictionaries(
        st.sampled_from(sorted(set(BILLS_SCHEMA["properties"]) - TAP_FIELDS - {"id"})),
        HOSTILE_VALUES,
        min_size=1,
        max_size=8,
    ),
)
def test_broken_values_never_break_the_run_or_the_schema(
    stub: BillsStub, base: dict, breakage: dict
) -> None:
    record = {**base, **breakage}
    emitted = _emitted_bills(stub, [record])
    assert [r["id"] for r in emitted] == [record["id"]]
    _assert_schema_valid(emitted)


def test_null_where_an_object_belongs_and_missing_keys_are_tolerated(stub: BillsStub) -> None:
    emitted = _emitted_bills(
        stub,
        [
            {"id": "b-1", "lineItems": None},
            {"id": "b-2", "lineItems": [None, {"dimensions": None}]},
        ],
    )
    _assert_schema_valid(emitted)
    assert emitted[1]["lineItems"][0] is None
