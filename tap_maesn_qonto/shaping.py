"""Give every record exactly the shape of its stream's schema, cheaply.

The SDK's type conformance walks every record against the schema (about 44 % of
its per-record CPU). This module compiles the schema once into a small plan and
does in one pass what the tap needs instead: keep only schema properties (an API
that adds fields must not break targets), fill absent ones with null, normalize
every date-time to one UTC form, and coerce the few values an API sends in the
wrong JSON type (``"12.50"`` for a number, ``"true"`` for a boolean). Values
that cannot be read are set to null and reported, never guessed. Because the
output already has the schema's exact shape, streams can switch the SDK's
conformance off.
"""

from __future__ import annotations

import collections
import decimal
import typing as t
from dataclasses import dataclass, field

from tap_maesn_qonto import numbers
from tap_maesn_qonto.timestamps import normalize_timestamp

JSON = t.Any


# Values of exactly these Python types already have the schema's JSON type and pass
# through untouched; anything else goes through the (slower) coercion methods. Exact
# type checks, because bool is an int subclass but not a JSON number.
_PASS_THROUGH: dict[str, frozenset[type]] = {
    "string": frozenset({str}),
    "number": frozenset({int, decimal.Decimal, numbers.Raw}),  # Raw: numbers.py
    "integer": frozenset({int}),
    "boolean": frozenset({bool}),
}


_ALL_PASS_THROUGH = frozenset().union(*_PASS_THROUGH.values())


def _needs_converting(pass_types: frozenset[type]) -> str:
    """The generated test, after ``item is not None``, that a value is not already right."""
    if not pass_types:
        return ""
    first, *others = sorted(kind.__name__ for kind in pass_types)
    return f" and (kind := type(item)) is not {first}" + "".join(
        f" and kind is not {other}" for other in others
    )


def _types(prop: dict) -> set[str]:
    declared = prop.get("type", [])
    return {declared} if isinstance(declared, str) else set(declared)


@dataclass
class ShapeIssues:
    """Counts of values the shaper had to change, for one log line per kind."""

    unknown_fields: set[str] = field(default_factory=set)
    unreadable: collections.Counter[str] = field(default_factory=collections.Counter)

    def lines(self) -> list[str]:
        """What was changed, one line per kind (after a stream's sync)."""
        said = []
        if self.unknown_fields:
            said.append(
                "fields not in the tap's schema were dropped: "
                f"{', '.join(sorted(self.unknown_fields))}. A newer tap-maesn-qonto may know them."
            )
        said += [
            f"{count} value(s) of {path} could not be read as the schema's type and were "
            "emitted as null."
            for path, count in sorted(self.unreadable.items())
        ]
        return said

    def note_unreadable(self, path: str) -> bool:
        """Count an unreadable value; return True the first time a path is seen."""
        self.unreadable[path] += 1
        return self.unreadable[path] == 1


class Shaper:
    """A compiled plan that reshapes one JSON value to one schema node."""

    def __init__(self, schema: dict, issues: ShapeIssues, path: str = "") -> None:
        self.path = path
        self.issues = issues
        kinds = _types(schema) - {"null"}
        self.kind = next(iter(kinds)) if len(kinds) == 1 else "any"
        self.is_datetime = self.kind == "string" and schema.get("format") == "date-time"
        self.fields: dict[str, Shaper] = {}
        self.items: Shaper | None = None
        if self.kind == "object":
            self.fields = {
                name: Shaper(sub, issues, f"{path}.{name}" if path else name)
                for name, sub in schema.get("properties", {}).items()
            }
        elif self.kind == "array" and isinstance(schema.get("items"), dict):
            self.items = Shaper(schema["items"], issues, f"{path}[]")
        self.pass_types = (
            frozenset() if self.is_datetime else _PASS_THROUGH.get(self.kind, frozenset())
        )
        self._field_names = frozenset(self.fields)
        #: Reshapes one non-null value; chosen once here, not per value.
        self.convert: t.Callable[[JSON], JSON] = self._choose_converter()

    def _choose_converter(self) -> t.Callable[[JSON], JSON]:
        if self.is_datetime:
            return self._datetime
        if self.kind == "object":
            return self._compile_object() if self.fields else self._free_object
        converters: dict[str, t.Callable[[JSON], JSON]] = {
            "array": self._array,
            "number": self._number,
            "integer": self._integer,
            "boolean": self._boolean,
            "string": self._string,
        }
        return converters.get(self.kind, _unchanged)

    def shape(self, value: JSON) -> JSON:
        """Return ``value`` reshaped to this node's schema."""
        if value is None or type(value) in self.pass_types:
            return value
        return self.convert(value)

    def _compile_object(self) -> t.Callable[[JSON], JSON]:
        """Compile this object's fields into one function: the hot loop of the whole tap.

        One generated statement per field does what a loop over the fields would (a
        lookup and an exact type check), at about half the cost: no per-field tuple
        unpacking, set membership or call unless the value needs changing. The dict
        is fresh from the JSON decoder and owned by the tap, so it is changed in
        place: values that are already right are not even copied.
        """
        names: dict[str, t.Any] = {
            "unreadable": self._unreadable,
            "with_schema_keys": self._with_schema_keys,
            "field_names": self._field_names,
            **{kind.__name__: kind for kind in _ALL_PASS_THROUGH},
        }
        lines = [
            "def shape_object(value):",
            "    if not isinstance(value, dict):",
            "        return unreadable(value)",
            f"    if len(value) != {len(self.fields)} or not field_names.issuperset(value):",
            "        value = with_schema_keys(value)",
        ]
        for number, (name, sub) in enumerate(self.fields.items()):
            if sub.convert is _unchanged:
                continue  # any value is right as it is
            names[f"convert_{number}"] = sub.convert
            lines += [
                f"    item = value[{name!r}]",
                f"    if item is not None{_needs_converting(sub.pass_types)}:",
                f"        value[{name!r}] = convert_{number}(item)",
            ]
        lines.append("    return value")
        exec("\n".join(lines), names)  # noqa: S102  # names come from the schema, as literals
        return t.cast("t.Callable[[JSON], JSON]", names["shape_object"])

    def _unreadable(self, value: JSON) -> None:
        self.issues.note_unreadable(self.path)
        del value  # the value itself is never logged: it may hold personal data

    def _datetime(self, value: JSON) -> str | None:
        if isinstance(value, str):
            try:
                return normalize_timestamp(value)
            except ValueError:
                pass
        self._unreadable(value)
        return None

    def _with_schema_keys(self, value: dict) -> dict:
        """Drop fields the schema does not know (noting them) and add missing ones as null."""
        for name in value.keys() - self._field_names:
            self.issues.unknown_fields.add(f"{self.path}.{name}" if self.path else name)
        return {name: value.get(name) for name in self.fields}

    def _free_object(self, value: JSON) -> dict | None:
        if isinstance(value, dict):
            return value
        self._unreadable(value)
        return None

    def _array(self, value: JSON) -> list | None:
        if not isinstance(value, list):
            self._unreadable(value)
            return None
        items = self.items
        if items is None:
            return value
        if items.pass_types:
            shape = items.shape
            return [shape(item) for item in value]
        convert = items.convert  # objects, arrays, date-times: every value is converted
        return [None if item is None else convert(item) for item in value]

    def _number(self, value: JSON) -> JSON:
        if isinstance(value, (int, decimal.Decimal)) and not isinstance(value, bool):
            return value
        if isinstance(value, numbers.Raw):
            return numbers.to_decimal(value)
        if isinstance(value, str):
            try:
                number = decimal.Decimal(value.strip())
            except decimal.InvalidOperation:
                pass
            else:
                if number.is_finite():
                    return number
        if isinstance(value, float):  # only reachable if a caller parsed without Decimal
            return decimal.Decimal(repr(value))
        self._unreadable(value)
        return None

    def _integer(self, value: JSON) -> int | None:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        number = self._number(value)
        if number is not None and number == int(number):
            return int(number)
        if number is not None:
            self._unreadable(value)
        return None

    def _boolean(self, value: JSON) -> bool | None:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
            return value.strip().lower() == "true"
        self._unreadable(value)
        return None

    def _string(self, value: JSON) -> str | None:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, decimal.Decimal, numbers.Raw)) and not isinstance(value, bool):
            return numbers.text_of(value)  # e.g. an account number sent as a number
        self._unreadable(value)
        return None


def _unchanged(value: JSON) -> JSON:
    return value
