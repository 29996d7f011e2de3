"""The stream schemas: generated from Maesn's vendored OpenAPI spec, and up to date.

The JSON files in tap_maesn_qonto/schemas/ are written by scripts/generate_schemas.py;
these tests pin down the rules it applies (tests/cli/test_generate_schemas.py runs it and
fails when a committed file is stale).
"""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.support.generator import generate

if t.TYPE_CHECKING:
    from collections.abc import Iterator

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = REPO_ROOT / "vendor" / "maesn-openapi.yaml"
SCHEMAS_DIR = REPO_ROOT / "tap_maesn_qonto" / "schemas"

STREAM_COMPONENTS = {
    "invoices": "InvoiceResponseDto",
    "bills": "BillResponseDto",
    "booking_proposals": "BookingProposalResponseDto",
}
NON_NULL_PROPERTIES = {"id", "target_system", "account_label"}

Schema = dict[str, t.Any]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of freshly generated schema files."""
    directory = tmp_path_factory.mktemp("generated")
    done = generate("--schemas-dir", str(directory))
    assert done.returncode == 0, done.stderr
    return directory


@pytest.fixture(scope="module")
def committed() -> dict[str, Schema]:
    return {
        name: json.loads((SCHEMAS_DIR / f"{name}.json").read_text(encoding="utf-8"))
        for name in STREAM_COMPONENTS
    }


@pytest.fixture(scope="module")
def spec_components() -> dict[str, Schema]:
    with SPEC_PATH.open(encoding="utf-8") as spec_file:
        return t.cast("dict[str, Schema]", yaml.safe_load(spec_file)["components"]["schemas"])


def subschemas(schema: Schema, path: str = "") -> Iterator[tuple[str, Schema]]:
    """Every (path, schema) reachable through properties and items, root included.

    Walks schema structure rather than dict keys, because Maesn uses property
    names such as `type` and `description` that look like JSON Schema keywords.
    """
    yield path or "<root>", schema
    for name, property_schema in schema.get("properties", {}).items():
        yield from subschemas(property_schema, f"{path}.{name}" if path else name)
    if "items" in schema:
        yield from subschemas(schema["items"], f"{path}[]")


def named_properties(schema: Schema) -> Iterator[tuple[str, str, Schema]]:
    """Every (path, property name, schema) of a property, at any depth."""
    for path, subschema in subschemas(schema):
        for name, property_schema in subschema.get("properties", {}).items():
            yield path, name, property_schema


def types_of(schema: Schema) -> list[str]:
    types = schema.get("type", [])
    return [types] if isinstance(types, str) else types


# -- Shape of every schema -------------------------------------------------------------


@pytest.mark.parametrize("stream_name", STREAM_COMPONENTS)
def test_schema_is_valid_draft7_json_schema(stream_name: str, committed: dict[str, Schema]) -> None:
    jsonschema.Draft7Validator.check_schema(committed[stream_name])


@pytest.mark.parametrize("stream_name", STREAM_COMPONENTS)
def test_top_level_is_a_non_null_object_describing_its_source(
    stream_name: str, committed: dict[str, Schema]
) -> None:
    schema = committed[stream_name]
    assert schema["type"] == "object"
    assert STREAM_COMPONENTS[stream_name] in schema["description"]
    assert "Do not edit by hand" in schema["description"]


@pytest.mark.parametrize("stream_name", STREAM_COMPONENTS)
def test_id_is_the_only_required_property_and_a_non_null_string(
    stream_name: str, committed: dict[str, Schema]
) -> None:
    schema = committed[stream_name]
    assert schema["required"] == ["id"]
    assert schema["properties"]["id"]["type"] == "string"
    nested_required = [
        path for path, sub in subschemas(schema) if sub is not schema and "required" in sub
    ]
    assert nested_required == [], "real responses may omit nested keys"


@pytest.mark.parametrize("stream_name", STREAM_COMPONENTS)
def test_updated_date_replication_key_is_a_nullable_top_level_date_time(
    stream_name: str, committed: dict[str, Schema]
) -> None:
    updated_date = committed[stream_name]["properties"]["updatedDate"]
    assert updated_date == {"type": ["string", "null"], "format": "date-time"}


@pytest.mark.parametrize("stream_name", STREAM_COMPONENTS)
def test_tap_provided_fields_are_non_null_strings(
    stream_name: str, committed: dict[str, Schema]
) -> None:
    properties = committed[stream_name]["properties"]
    for name in ("target_system", "account_label"):
        assert properties[name]["type"] == "string"
        assert properties[name]["description"]
    assert "qonto-sandbox" in properties["target_system"]["description"]


@pytest.mark.parametrize("stream_name", STREAM_COMPONENTS)
def test_every_other_property_allows_null_at_every_depth(
    stream_name: str, committed: dict[str, Schema]
) -> None:
    schema = committed[stream_name]
    non_nullable = [
        f"{path}.{name}"
        for path, name, property_schema in named_properties(schema)
        if "null" not in types_of(property_schema)
        and not (path == "<root>" and name in NON_NULL_PROPERTIES)
    ]
    assert non_nullable == []
    non_nullable_items = [
        path
        for path, sub in subschemas(schema)
        if path.endswith("[]") and "null" not in types_of(sub)
    ]
    assert non_nullable_items == []


@pytest.mark.parametrize("stream_name", STREAM_COMPONENTS)
def test_date_fields_are_date_time_at_every_depth_and_only_they_are(
    stream_name: str, committed: dict[str, Schema]
) -> None:
    for path, name, property_schema in named_properties(committed[stream_name]):
        is_date_field = name.endswith(("Date", "Date2"))
        assert (property_schema.get("format") == "date-time") == is_date_field, f"{path}.{name}"


@pytest.mark.parametrize("stream_name", STREAM_COMPONENTS)
def test_no_enum_anywhere_but_allowed_values_stay_documented(
    stream_name: str, committed: dict[str, Schema]
) -> None:
    # Maesn adds enum values over time; the tap must not reject new ones.
    schema = committed[stream_name]
    assert [path for path, sub in subschemas(schema) if "enum" in sub] == []
    assert schema["properties"]["status"]["description"].startswith("One of: DRAFT, ")


@pytest.mark.parametrize("stream_name", STREAM_COMPONENTS)
def test_no_object_forbids_additional_properties(
    stream_name: str, committed: dict[str, Schema]
) -> None:
    # Stream maps may add fields downstream.
    closed = [
        path
        for path, sub in subschemas(committed[stream_name])
        if sub.get("additionalProperties") is False
    ]
    assert closed == []


# -- Nested records stay typed ---------------------------------------------------------


def test_invoices_have_id_and_the_deprecated_invoice_id(
    committed: dict[str, Schema],
) -> None:
    properties = committed["invoices"]["properties"]
    assert properties["id"]["type"] == "string"
    assert properties["invoiceId"]["type"] == ["string", "null"]
    assert "deprecated" in properties["invoiceId"]["description"].lower()


def test_invoice_line_items_are_typed_objects(committed: dict[str, Schema]) -> None:
    line_items = committed["invoices"]["properties"]["lineItems"]
    assert line_items["type"] == ["array", "null"]
    line_item = line_items["items"]["properties"]
    assert line_item["unitAmount"]["type"] == ["number", "null"]
    assert line_item["quantity"]["type"] == ["number", "null"]
    assert line_item["createdDate"]["format"] == "date-time"
    assert line_item["updatedDate"]["format"] == "date-time"

    dimensions = line_item["dimensions"]
    assert dimensions["type"] == ["array", "null"]
    assert dimensions["items"]["type"] == ["object", "null"]
    assert set(dimensions["items"]["properties"]) == {"id", "categoryName", "name"}


def test_bill_line_items_keep_their_deferral_dates(
    committed: dict[str, Schema],
) -> None:
    line_item = committed["bills"]["properties"]["lineItems"]["items"]["properties"]
    for name in ("deferredStartDate", "deferredEndDate"):
        assert line_item[name] == {"type": ["string", "null"], "format": "date-time"}
    assert line_item["dimensions"]["items"]["properties"]["categoryName"]["type"] == [
        "string",
        "null",
    ]


def test_addresses_are_typed_and_keep_every_country_code(
    committed: dict[str, Schema],
) -> None:
    address = committed["invoices"]["properties"]["addresses"]["items"]
    assert address["type"] == ["object", "null"]
    # Unquoted `NO` (Norway) is a boolean in YAML 1.1; the generator must keep it.
    assert ", NO, " in address["properties"]["countryCode"]["description"]


def test_booking_proposal_addresses_accept_any_content(
    committed: dict[str, Schema],
) -> None:
    # BookingProposalAddress is `{}` in the spec. singer-sdk keeps unknown keys only
    # when additionalProperties is true, and needs `properties` on array items.
    address = committed["booking_proposals"]["properties"]["addresses"]["items"]
    assert address == {
        "type": ["object", "null"],
        "properties": {},
        "additionalProperties": True,
    }
    jsonschema.Draft7Validator(address).validate({"street": "Rue 1", "extra": {"any": [1]}})


# -- Nothing from the spec is dropped or retyped ---------------------------------------


def spec_property_mismatches(
    spec_schema: Schema, generated: Schema, components: dict[str, Schema], path: str
) -> Iterator[str]:
    """Spec properties missing from ``generated``, or typed differently, recursively."""
    if "$ref" in spec_schema:
        spec_schema = components[spec_schema["$ref"].rsplit("/", 1)[-1]]
    for name, spec_property in spec_schema.get("properties", {}).items():
        where = f"{path}.{name}"
        if name not in generated.get("properties", {}):
            yield f"{where}: missing"
            continue
        generated_property = generated["properties"][name]
        spec_type = components.get(spec_property.get("$ref", "").rsplit("/", 1)[-1], spec_property)[
            "type"
        ]
        if spec_type not in types_of(generated_property):
            yield f"{where}: {spec_type} became {generated_property.get('type')}"
        yield from spec_property_mismatches(spec_property, generated_property, components, where)
    if "items" in spec_schema:
        yield from spec_property_mismatches(
            spec_schema["items"], generated["items"], components, f"{path}[]"
        )


@pytest.mark.parametrize("stream_name", STREAM_COMPONENTS)
def test_every_spec_property_is_kept_with_its_json_type(
    stream_name: str, committed: dict[str, Schema], spec_components: dict[str, Schema]
) -> None:
    # Numbers stay numbers (the tap parses them as Decimal), booleans stay booleans.
    component = STREAM_COMPONENTS[stream_name]
    mismatches = list(
        spec_property_mismatches(
            spec_components[component],
            committed[stream_name],
            spec_components,
            component,
        )
    )
    assert mismatches == []
