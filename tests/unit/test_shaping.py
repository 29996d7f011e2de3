"""The compiled shaper does exactly what the plain rules say, for any JSON value.

``shaping.Shaper`` compiles each object of a schema into generated code for speed.
These tests hold it to a slow reference written straight from the rules (keep schema
properties only, null for absent ones, one UTC form for date-times, a few coercions,
null and a count for what cannot be read), on values built to break it: every
property of every stream's schema given any JSON value, at every depth.
"""

from __future__ import annotations

import collections
import decimal
import json
import typing as t
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tap_maesn_qonto.envelope import _DECODER
from tap_maesn_qonto.shaping import ShapeIssues, Shaper
from tap_maesn_qonto.timestamps import normalize_timestamp

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "tap_maesn_qonto" / "schemas"
SCHEMAS = {path.stem: json.loads(path.read_text()) for path in sorted(SCHEMA_DIR.glob("*.json"))}
ENCODER = msgspec.json.Encoder(decimal_format="number")
DECIMALS = msgspec.json.Decoder(float_hook=decimal.Decimal)
#: Examples per stream: a quick run in the default tier, the full one in the e2e tier.
EXAMPLES = [
    pytest.param(30, id="quick"),
    pytest.param(150, id="full", marks=pytest.mark.e2e),
]


class Reference:
    """The shaping rules as plainly as they can be written: one recursive function."""

    def __init__(self) -> None:
        self.unknown: set[str] = set()
        self.unreadable: collections.Counter[str] = collections.Counter()

    def shape(self, schema: dict, value: t.Any, path: str = "") -> t.Any:  # noqa: PLR0911  # one rule a line
        declared = schema.get("type", [])
        kinds = ({declared} if isinstance(declared, str) else set(declared)) - {"null"}
        kind = next(iter(kinds)) if len(kinds) == 1 else "any"
        if value is None or kind == "any":
            return value
        if kind == "string" and schema.get("format") == "date-time":
            return self._or_unreadable(path, value, normalize_timestamp)
        if kind == "object":
            if not isinstance(value, dict):
                return self._unreadable(path)
            properties = schema.get("properties", {})
            if not properties:
                return value
            self.unknown |= {f"{path}.{k}" if path else k for k in value.keys() - properties}
            return {
                name: self.shape(sub, value.get(name), f"{path}.{name}" if path else name)
                for name, sub in properties.items()
            }
        if kind == "array":
            if not isinstance(value, list):
                return self._unreadable(path)
            items = schema.get("items")
            return [self.shape(items, v, f"{path}[]") for v in value] if items else value
        return self._scalar(kind, value, path)

    def _scalar(self, kind: str, value: t.Any, path: str) -> t.Any:  # noqa: PLR0911
        is_number = isinstance(value, (int, decimal.Decimal)) and not isinstance(value, bool)
        if kind == "string":
            if isinstance(value, str):
                return value
            return str(value) if is_number else self._unreadable(path)
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            text = value.strip().lower() if isinstance(value, str) else None
            return text == "true" if text in {"true", "false"} else self._unreadable(path)
        number = value if is_number else self._number(value)
        if number is None:
            return self._unreadable(path)
        if kind == "integer":
            return int(number) if number == int(number) else self._unreadable(path)
        return number

    @staticmethod
    def _number(value: t.Any) -> t.Any:
        if isinstance(value, float):
            return decimal.Decimal(repr(value))
        if isinstance(value, str):
            try:
                number = decimal.Decimal(value.strip())
            except decimal.InvalidOperation:
                return None
            return number if number.is_finite() else None
        return None

    def _or_unreadable(self, path: str, value: t.Any, read: t.Callable[[str], str]) -> t.Any:
        if isinstance(value, str):
            try:
                return read(value)
            except ValueError:
                pass
        return self._unreadable(path)

    def _unreadable(self, path: str) -> None:
        self.unreadable[path] += 1


ANY_JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**20), max_value=10**20),
        st.decimals(allow_nan=False, allow_infinity=False, places=4),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=8),
        st.sampled_from(
            [
                "12.50",
                " true ",
                "FALSE",
                "7",
                "1e3",
                "NaN",
                "2026-10-28T22:30:03.066+02:00",
                "2026-12-26",
                "2016-12-31T23:59:60Z",
                "not a date",
            ]
        ),
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)


def as_decoded(value: t.Any) -> t.Any:
    """A fresh copy of ``value`` as the tap decodes it off the wire (numbers with a fraction
    kept as their text: numbers.py)."""
    return _DECODER.decode(ENCODER.encode(value))


def as_numbers(value: t.Any) -> t.Any:
    """A fresh copy of ``value`` as JSON read with exact numbers: what the rules speak of,
    and what a target reads from the tap's output."""
    return DECIMALS.decode(ENCODER.encode(value))


def values_for(schema: dict) -> st.SearchStrategy[t.Any]:
    """A value for one schema node: mostly of its own shape, sometimes anything at all."""
    declared = schema.get("type", [])
    kinds = ({declared} if isinstance(declared, str) else set(declared)) - {"null"}
    own: st.SearchStrategy[t.Any]
    if "object" in kinds and schema.get("properties"):
        fields = {name: values_for(sub) for name, sub in schema["properties"].items()}
        own = st.fixed_dictionaries({}, optional={**fields, "notInTheSchema": ANY_JSON})
    elif "array" in kinds and isinstance(schema.get("items"), dict):
        own = st.lists(values_for(schema["items"]), max_size=3)
    else:
        own = ANY_JSON
    return st.one_of(own, own, ANY_JSON)


@pytest.mark.parametrize("examples", EXAMPLES)
@pytest.mark.parametrize("stream", sorted(SCHEMAS))
def test_compiled_shaper_matches_the_rules_on_any_value(stream: str, examples: int) -> None:
    schema = SCHEMAS[stream]

    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(value=values_for(schema))
    def check(value: t.Any) -> None:
        expected_issues = Reference()
        expected = expected_issues.shape(schema, as_numbers(value))
        issues = ShapeIssues()
        shaped = Shaper(schema, issues).shape(as_decoded(value))
        assert as_numbers(shaped) == expected
        assert issues.unknown_fields == expected_issues.unknown
        assert issues.unreadable == expected_issues.unreadable

    check()


def test_a_record_already_in_shape_is_returned_as_is() -> None:
    schema = SCHEMAS["invoices"]
    record = dict.fromkeys(schema["properties"]) | {"id": "i-1", "totalAmount": 1}
    assert Shaper(schema, ShapeIssues()).shape(record) is record
