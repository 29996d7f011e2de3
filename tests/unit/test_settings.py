"""The settings as the tap, meltano.yml and the MeltanoHub definition describe them.

The boolean, integer and number settings exist; text is coerced to each JSON type as
Meltano and environment variables give it (``coerce_value``); every setting is described
in meltano.yml and on the Hub with the ``kind`` of its JSON type; and a setting marked
secret is named in an error without its value. How each setting reaches the tap, four
ways: tests/support/settings.py.
"""

from __future__ import annotations

import json
import typing as t
from decimal import Decimal

import pytest

from tap_maesn_qonto.errors import InvalidConfigError
from tap_maesn_qonto.settings import CONFIG_SCHEMA, coerce_value
from tap_maesn_qonto.tap import TapMaesnQonto
from tests.support.configs import ACCOUNT_KEY, API_KEY
from tests.support.settings import (
    MELTANO_KINDS,
    PROPERTIES,
    PYTHON_TYPES,
    REPRESENTATIVES,
    SCALARS,
    json_types,
    plugin_settings,
)
from tests.support.tap import REPO_ROOT

if t.TYPE_CHECKING:
    pass

#: The kind each JSON type of the tap's settings is described with. A number is a string:
#: Meltano 4.4 casts an environment (or .env) value of ``kind: decimal`` to Decimal and then
#: cannot write the tap's config ("Object of type Decimal is not JSON serializable"); the
#: tap reads "1.25" as the number 1.25. Secrets are strings marked ``sensitive: true``
#: (``kind: password`` is deprecated).
HUB_SETTING_SCHEMA = (
    REPO_ROOT / "vendor" / "meltanohub-schemas" / "common" / "base_setting.schema.json"
)
KIND_OF_JSON_TYPE = {
    "string": "string",
    "date-time": "date_iso8601",
    "integer": "integer",
    "boolean": "boolean",
    "number": "string",
    "array": "array",
    "object": "object",
}


def test_the_schema_has_boolean_integer_and_number_settings() -> None:
    # A guard for the parametrisation: the settings the issue names are among them.
    assert {"max_requests_per_second", "sandbox", "page_size"} <= set(SCALARS)
    # The default tier's share of the sweeps: one setting of each JSON type.
    assert sorted(SCALARS[n] for n in REPRESENTATIVES) == sorted(PYTHON_TYPES)
    assert {SCALARS[n] for n in SCALARS} == set(PYTHON_TYPES)


@pytest.mark.parametrize(
    ("json_type", "value", "text", "result"),
    [
        ("number", Decimal("1.25"), False, 1.25),
        ("number", 2, False, 2.0),
        ("number", " 1.5e1 ", True, 15.0),
        ("number", "1e999", True, "1e999"),  # not finite: left for the validation
        ("number", "nan", True, "nan"),
        ("number", True, False, True),
        ("integer", Decimal("50.0"), False, 50),
        ("integer", Decimal("1.5"), False, 1.5),  # named as 1.5, not Decimal('1.5')
        ("integer", "50", False, "50"),  # text in a JSON file: a mistake, named
        ("integer", "-1", True, -1),
        ("integer", "5.0", True, "5.0"),
        ("boolean", "TRUE", True, True),
        ("boolean", "off", True, False),
        ("boolean", "", True, ""),
        ("boolean", "yes", False, "yes"),
        ("boolean", 1, True, 1),
    ],
)
def test_coerce_value(json_type: str, value: t.Any, text: bool, result: t.Any) -> None:
    coerced = coerce_value(json_type, value, text=text)
    assert coerced == result
    assert type(coerced) is type(result)


# --------------------------------------------------------------------------- kinds agree


def _kind_for(prop: dict[str, t.Any]) -> str:
    types = json_types(prop)
    assert len(types) == 1, f"one JSON type (null aside) per setting, not {prop.get('type')}"
    json_type = next(iter(types))
    if json_type == "string" and prop.get("format") == "date-time":
        json_type = "date-time"
    return KIND_OF_JSON_TYPE[json_type]


@pytest.mark.parametrize("source", ["meltano.yml", "hub"])
def test_every_setting_is_described_with_the_kind_of_its_json_type(source: str) -> None:
    described = plugin_settings(source)
    hub_kinds = set(json.loads(HUB_SETTING_SCHEMA.read_text())["properties"]["kind"]["enum"])
    problems = [f"{name} is missing" for name in PROPERTIES if name not in described]
    problems += [
        f"{name} is not a setting of the tap" for name in described if name not in PROPERTIES
    ]
    for name in sorted(set(PROPERTIES) & set(described)):
        kind, want = described[name].get("kind"), _kind_for(PROPERTIES[name])
        if kind != want:
            problems.append(f"{name}: kind {kind!r}, its JSON type wants {want!r}")
        if kind not in MELTANO_KINDS or kind not in hub_kinds or kind in {"decimal", "password"}:
            problems.append(f"{name}: kind {kind!r} is not one Meltano and the Hub both serve")
        if bool(described[name].get("sensitive")) != bool(PROPERTIES[name].get("secret")):
            problems.append(f"{name}: sensitive must be {bool(PROPERTIES[name].get('secret'))}")
    assert not problems, f"{source}:\n- " + "\n- ".join(problems)


class _TapWithAnotherSecret(TapMaesnQonto):
    """The tap with one more setting marked secret, as a future setting would be."""

    config_jsonschema: t.ClassVar[dict] = {
        **CONFIG_SCHEMA,
        "properties": {
            **CONFIG_SCHEMA["properties"],
            "proxy_password": {"type": ["string", "null"], "minLength": 12, "secret": True},
        },
    }


@pytest.mark.parametrize("value", ["pw-short", 424242424242])
def test_any_setting_marked_secret_is_named_without_its_value(value: object) -> None:
    config = {"api_key": API_KEY, "account_key": ACCOUNT_KEY, "proxy_password": value}
    with pytest.raises(InvalidConfigError) as info:
        _TapWithAnotherSecret(config=config)
    message = str(info.value)
    assert "'proxy_password'" in message
    assert str(value) not in message
