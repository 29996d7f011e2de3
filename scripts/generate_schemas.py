"""Generate the tap's stream JSON schemas from Maesn's vendored OpenAPI spec.

Usage:
    python scripts/generate_schemas.py          # write tap_maesn_qonto/schemas/*.json
    python scripts/generate_schemas.py --check  # exit 1 + diff if a file is stale
    ... --schemas-dir DIR                       # write or check DIR instead (the tests)

singer-sdk's ``OpenAPISchema`` resolves every ``$ref`` and normalizes the OpenAPI
dialect (nullable, enum); two small subclasses fix what it gets wrong for this spec
(YAML booleans, dropped enum values). The result is then post-processed into what the
tap emits (see ``finish_property`` and ``build_schema``).
"""

from __future__ import annotations

import argparse
import copy
import difflib
import json
import re
import sys
import typing as t
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml
from singer_sdk import OpenAPISchema
from singer_sdk.schema.source import OpenAPISchemaNormalizer

if t.TYPE_CHECKING:
    from collections.abc import Sequence

Schema: t.TypeAlias = dict[str, t.Any]

REPO_ROOT = Path(__file__).resolve().parent.parent
SPEC_PATH = REPO_ROOT / "vendor" / "maesn-openapi.yaml"
SCHEMAS_DIR = REPO_ROOT / "tap_maesn_qonto" / "schemas"
SPEC_ORIGIN = "github.com/maesndev/sdk-typescript at commit b364da3"

PRIMARY_KEY = "id"

# The API returns dates in several shapes (plain dates, offsets, UTC); the tap
# normalizes every value of these fields to UTC RFC 3339, so the schema can promise
# date-time even though the spec types them as plain strings.
DATE_FIELD_NAME = re.compile(r"Date2?$")

TAP_PROVIDED_PROPERTIES: dict[str, Schema] = {
    "target_system": {
        "type": "string",
        "description": (
            "Maesn target system the record was read from: qonto or qonto-sandbox "
            "(sandbox rows can never be mistaken for production rows)."
        ),
    },
    "account_label": {
        "type": "string",
        "description": (
            "Non-secret label of the connected account (config setting "
            "account_label) the record was read from."
        ),
    },
}


@dataclass(frozen=True)
class StreamSource:
    """Where a stream's records are described in the spec."""

    component: str
    # Id field the spec still uses where newer Maesn docs say `id`; it is kept
    # (nullable) next to the generated `id` primary key.
    deprecated_id_field: str | None = None


STREAM_SOURCES: dict[str, StreamSource] = {
    "invoices": StreamSource("InvoiceResponseDto", deprecated_id_field="invoiceId"),
    "bills": StreamSource("BillResponseDto"),
    "booking_proposals": StreamSource("BookingProposalResponseDto"),
}


@dataclass(frozen=True)
class LineItemSource:
    """A child stream of one parent's ``lineItems``, one row per line."""

    parent: str  # the parent stream's name
    parent_key: str  # the column holding the parent's id


LINE_ITEM_SOURCES: dict[str, LineItemSource] = {
    "invoice_line_items": LineItemSource("invoices", "invoice_id"),
    "bill_line_items": LineItemSource("bills", "bill_id"),
    "booking_proposal_line_items": LineItemSource("booking_proposals", "booking_proposal_id"),
}


def line_item_columns(parent: str, parent_key: str) -> dict[str, Schema]:
    """The columns a line row carries besides the line's own fields."""
    return {
        parent_key: {"type": "string", "description": f"id of the {parent} record."},
        "position": {
            "type": "integer",
            "description": "Where the line stands in its parent's lineItems, from 1.",
        },
        "parent_line_count": {
            "type": "integer",
            "description": (
                "How many lines the parent had when this row was read: a row whose "
                "position is above the count on the parent's newest rows was removed."
            ),
        },
        "parent_updated_date": {
            "type": ["string", "null"],
            "format": "date-time",
            "description": "The parent's updatedDate when this row was read.",
        },
    }


class Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 booleans: only true/false are booleans.

    PyYAML follows YAML 1.1, where unquoted yes/no/on/off are booleans too, so the
    spec's country code `- NO` (Norway) would load as False.
    """


Yaml12Loader.yaml_implicit_resolvers = {
    first_char: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first_char, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def load_yaml_1_2(path: Path) -> dict[str, t.Any]:
    """Load a YAML file, reading only true/false as booleans."""
    with path.open(encoding="utf-8") as yaml_file:
        loader = Yaml12Loader(yaml_file)
        try:
            return t.cast("dict[str, t.Any]", loader.get_single_data())
        finally:
            loader.dispose()


class VendoredOpenAPISchema(OpenAPISchema):
    """``OpenAPISchema`` reading a local YAML spec with YAML 1.2 booleans."""

    def __init__(self, spec_path: Path, *, preprocessor: OpenAPISchemaNormalizer) -> None:
        """Read the spec at ``spec_path``, normalizing it with ``preprocessor``."""
        super().__init__(spec_path, preprocessor=preprocessor)
        self.spec_path = spec_path

    @cached_property
    def spec(self) -> dict[str, t.Any]:
        """The parsed spec (the SDK's own loader would use YAML 1.1 booleans)."""
        return load_yaml_1_2(self.spec_path)


class EnumAsDescriptionNormalizer(OpenAPISchemaNormalizer):
    """The SDK's normalizer, but enum values survive as documentation.

    Maesn adds enum values over time, so the schema must not reject unknown ones;
    the known values are still useful to whoever reads the catalog.
    """

    def handle_enum(self, schema: Schema) -> Schema:
        """Drop ``enum``, listing its values in the description instead."""
        values = ", ".join(str(value) for value in schema.pop("enum"))
        return with_description(schema, f"One of: {values}.")


def with_description(schema: Schema, text: str) -> Schema:
    """Append ``text`` to the schema's description, keeping any from the spec."""
    existing = schema.get("description")
    schema["description"] = f"{existing} {text}" if existing else text
    return schema


def allow_null(schema: Schema) -> Schema:
    """Add "null" to the schema's type (no-op when already nullable or untyped)."""
    if "type" not in schema:
        return schema
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    if "null" not in types:
        schema["type"] = [*types, "null"]
    return schema


def finish_property(name: str | None, schema: Schema) -> Schema:
    """Apply the tap's rules to one (possibly nested) schema, recursively.

    ``name`` is the property name, or None for array items.
    """
    # The spec marks almost every key required, yet real responses may omit keys;
    # only the top-level primary key is required (set in build_schema).
    schema.pop("required", None)
    types = schema.get("type", [])

    if name is not None and DATE_FIELD_NAME.search(name):
        if "string" not in types:
            msg = f"Date field {name!r} is not a string in the spec: {schema}"
            raise ValueError(msg)
        schema["format"] = "date-time"

    if "object" in types:
        finish_object(schema)
    if "array" in types and "items" in schema:
        # A null inside a list must not fail a whole record.
        schema["items"] = finish_property(None, allow_null(schema["items"]))
    return schema


def finish_object(schema: Schema) -> None:
    """Finish an object's properties; an object without any accepts anything."""
    properties: Schema = schema.setdefault("properties", {})
    if not properties:
        # e.g. BookingProposalAddress, which is `{}` in the spec: its content is
        # unknown, so let any keys through. singer-sdk drops keys missing from
        # `properties` unless additionalProperties is true, and raises KeyError on
        # an object inside an array that has no `properties` at all.
        schema["additionalProperties"] = True
    for name, property_schema in properties.items():
        properties[name] = finish_property(name, property_schema)


def add_primary_key(schema: Schema, stream: StreamSource) -> None:
    """Make `id` a required non-null string, generated when the spec lacks it."""
    properties = schema["properties"]
    if stream.deprecated_id_field:
        properties[PRIMARY_KEY] = {
            "type": "string",
            "description": (
                f"Primary key. The spec only has {stream.deprecated_id_field}; "
                "newer Maesn docs name this field id."
            ),
        }
        with_description(
            properties[stream.deprecated_id_field],
            "Deprecated by Maesn in favour of id; equal to id.",
        )
    properties[PRIMARY_KEY]["type"] = "string"
    schema["required"] = [PRIMARY_KEY]


def build_schema(source: OpenAPISchema, stream: StreamSource) -> Schema:
    """Build the JSON schema of one stream from its spec component."""
    # key_properties keeps `id` non-null; the normalizer makes everything else
    # nullable, because the API marks every field nullable.
    schema = finish_property(
        None, source.get_schema(stream.component, key_properties=[PRIMARY_KEY])
    )
    add_primary_key(schema, stream)
    schema["properties"].update(copy.deepcopy(TAP_PROVIDED_PROPERTIES))
    schema["description"] = (
        "Generated by scripts/generate_schemas.py from vendor/maesn-openapi.yaml "
        f"({stream.component}; {SPEC_ORIGIN}). Do not edit by hand."
    )
    return schema


def build_line_item_schema(parent_schema: Schema, source: LineItemSource) -> Schema:
    """A line-item stream's schema: the parent's lineItems items, plus where each sits."""
    line = copy.deepcopy(parent_schema["properties"]["lineItems"]["items"])
    line["type"] = "object"
    line["properties"].update(line_item_columns(source.parent, source.parent_key))
    line["properties"].update(copy.deepcopy(TAP_PROVIDED_PROPERTIES))
    line["required"] = [source.parent_key, "position"]
    component = STREAM_SOURCES[source.parent].component
    # "$comment", not "description": singer-sdk's flattening (0.54) looks up record keys
    # in the schema's top level, and a line has a field named description.
    line["$comment"] = (
        "Generated by scripts/generate_schemas.py from vendor/maesn-openapi.yaml "
        f"({component}.lineItems; {SPEC_ORIGIN}). Do not edit by hand."
    )
    return line


def build_schemas(spec_path: Path | str = SPEC_PATH) -> dict[str, Schema]:
    """Return stream name -> JSON schema, generated from the spec at ``spec_path``."""
    source = VendoredOpenAPISchema(Path(spec_path), preprocessor=EnumAsDescriptionNormalizer())
    schemas = {name: build_schema(source, stream) for name, stream in STREAM_SOURCES.items()}
    for name, line_source in LINE_ITEM_SOURCES.items():
        schemas[name] = build_line_item_schema(schemas[line_source.parent], line_source)
    return schemas


def render_schema(schema: Schema) -> str:
    """Serialize deterministically, so regenerating never produces a spurious diff."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def schema_path(stream_name: str, schemas_dir: Path = SCHEMAS_DIR) -> Path:
    """Where the schema of ``stream_name`` is committed."""
    return schemas_dir / f"{stream_name}.json"


def display_path(path: Path) -> str:
    """``path`` relative to the repository when inside it, for readable messages."""
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def write_schemas(schemas: dict[str, Schema], schemas_dir: Path = SCHEMAS_DIR) -> None:
    """Write every schema file."""
    for name, schema in schemas.items():
        path = schema_path(name, schemas_dir)
        path.write_text(render_schema(schema), encoding="utf-8", newline="\n")
        print(f"wrote {display_path(path)}")


def diff_schemas(schemas: dict[str, Schema], schemas_dir: Path = SCHEMAS_DIR) -> str:
    """Unified diff from the committed files to freshly generated ones ('' if equal)."""
    chunks: list[str] = []
    for name, schema in schemas.items():
        path = schema_path(name, schemas_dir)
        committed = path.read_text(encoding="utf-8") if path.exists() else ""
        label = display_path(path)
        chunks.extend(
            difflib.unified_diff(
                committed.splitlines(keepends=True),
                render_schema(schema).splitlines(keepends=True),
                fromfile=f"{label} (committed)",
                tofile=f"{label} (generated)",
            )
        )
    return "".join(chunks)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 and print a diff if a committed schema is stale",
    )
    parser.add_argument(
        "--schemas-dir",
        type=Path,
        default=SCHEMAS_DIR,
        help=f"where the schema files are (default: {display_path(SCHEMAS_DIR)})",
    )
    args = parser.parse_args(argv)
    schemas = build_schemas(SPEC_PATH)
    if not args.check:
        write_schemas(schemas, args.schemas_dir)
        return 0
    if diff := diff_schemas(schemas, args.schemas_dir):
        sys.stdout.write(diff)
        print("\nSchemas are stale: run `python scripts/generate_schemas.py`.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
