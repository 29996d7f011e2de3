"""Every boolean, integer and number setting, given each way a user gives it.

The settings are read from the tap's config schema (its own and the SDK's built-in ones),
not listed here. Each one is given

1. in a JSON config file to the command line (singer-sdk reads 1.25 as a Decimal),
2. as an environment variable with ``--config ENV`` (text: "1.25", "50", "true"),
3. through Meltano, with this repository's meltano.yml plugin definition: ``meltano
   config set`` and an environment variable, then ``meltano invoke`` (Meltano casts by
   the setting's ``kind`` and writes the tap's config file; ``kind: decimal`` could not),
4. through Meltano with the MeltanoHub definition's ``kind``,

and must reach the tap as bool, int or float. The tap runs as :data:`PROBE`: the real
command line (``tap_maesn_qonto.cli.main``), which writes the type and value of every
setting the tap was built with to ``$SETTINGS_PROBE_OUT``. 1 and 2
(tests/cli/test_settings_four_ways.py) run a short sync against the emulator; 3 and 4
(tests/e2e/test_settings_meltano.py, Meltano 4.4.1 through uv) run discovery, which builds
the tap from the same config file. The kinds themselves are checked in
tests/unit/test_settings.py.
"""

from __future__ import annotations

import copy
import math
import os
import sys
import typing as t

import pytest
import yaml

from tap_maesn_qonto.tap import TapMaesnQonto
from tests.support.tap import REPO_ROOT

if t.TYPE_CHECKING:
    from pathlib import Path

MELTANO_YML = REPO_ROOT / "meltano.yml"
HUB_DEFINITION = (
    REPO_ROOT / "hub" / "_data" / "meltano" / "extractors" / "tap-maesn-qonto" / "maesn-qonto.yml"
)
ENV_PREFIX = "TAP_MAESN_QONTO_"
PYTHON_TYPES = {"boolean": "bool", "integer": "int", "number": "float"}
#: Meltano 4.4.1's setting kinds (``meltano.core.setting_definition.SettingKind``;
#: tests/e2e/test_settings_meltano.py checks this list against the real Meltano).
MELTANO_KINDS = frozenset(
    {
        "string",
        "integer",
        "boolean",
        "decimal",
        "date_iso8601",
        "email",
        "password",
        "oauth",
        "options",
        "file",
        "array",
        "object",
        "hidden",
    }
)

#: The tap's command line, recording the settings it was built with (never the keys).
PROBE = """\
import json, os, sys
from tap_maesn_qonto import cli
from tap_maesn_qonto.tap import TapMaesnQonto

_init = TapMaesnQonto.__init__
_SECRET = {"api_key", "account_key", "accounts"}


def _recording_init(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    seen = {k: [type(v).__name__, repr(v)] for k, v in self.config.items() if k not in _SECRET}
    with open(os.environ["SETTINGS_PROBE_OUT"], "w", encoding="utf-8") as out:
        json.dump(seen, out)


TapMaesnQonto.__init__ = _recording_init
sys.argv[0] = "tap-maesn-qonto"
cli.main()
"""


def write_probe(path: Path) -> Path:
    """:data:`PROBE` as an executable at ``path``, run by this interpreter."""
    path.write_text(f"#!{sys.executable}\n{PROBE}", encoding="utf-8")
    path.chmod(0o755)
    return path


def full_schema() -> dict[str, t.Any]:
    """The tap's config schema with the SDK's built-in settings (flattening_*...)."""
    schema = copy.deepcopy(TapMaesnQonto.config_jsonschema)
    TapMaesnQonto.append_builtin_config(schema)
    return schema


SCHEMA = full_schema()
PROPERTIES: dict[str, dict[str, t.Any]] = SCHEMA["properties"]


def json_types(prop: dict[str, t.Any]) -> set[str]:
    types = prop.get("type", [])
    return ({types} if isinstance(types, str) else set(types)) - {"null"}


#: Every boolean, integer and number setting, with its JSON type.
SCALARS = {
    name: next(iter(types))
    for name, prop in PROPERTIES.items()
    if len(types := json_types(prop)) == 1 and types <= set(PYTHON_TYPES)
}


#: One setting of each JSON type (those the issue named): the default tier's share of the
#: sweeps over :data:`SCALARS`; the e2e tier runs every setting.
REPRESENTATIVES = ("sandbox", "page_size", "max_requests_per_second")


def every_scalar() -> list[t.Any]:
    """``pytest.param`` s of every setting of :data:`SCALARS` (sorted): the representatives
    in the default tier, the others marked ``e2e``."""
    return [
        pytest.param(name, marks=() if name in REPRESENTATIVES else pytest.mark.e2e)
        for name in sorted(SCALARS)
    ]


def sample(name: str) -> bool | int | float:
    """A valid value of setting ``name`` that is not its default (so it proves it was read)."""
    prop, json_type = PROPERTIES[name], SCALARS[name]
    default = prop.get("default")
    if json_type == "boolean":
        return not default
    if json_type == "number":  # a fraction, as the README's 1.25: what used to fail
        return math.floor(prop.get("minimum", 0)) + 30.25
    if "enum" in prop:
        return next(v for v in reversed(prop["enum"]) if v != default)
    value = default + 1 if isinstance(default, int) else prop.get("minimum", 2)
    return min(value, prop.get("maximum", value))


def as_text(value: bool | int | float) -> str:
    """``value`` as an environment variable or a ``meltano config set`` argument gives it."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def expected(name: str) -> list[str]:
    """What the probe must see for setting ``name``: its Python type and the sample's repr."""
    value = sample(name)
    return [PYTHON_TYPES[SCALARS[name]], repr(value)]


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any TAP_MAESN_QONTO_* variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    return {**env, **extra}


def plugin_settings(source: str) -> dict[str, dict[str, t.Any]]:
    """The settings of the tap as ``source`` ("meltano.yml" or "hub") describes them."""
    if source == "meltano.yml":
        document = yaml.safe_load(MELTANO_YML.read_text(encoding="utf-8"))
        (plugin,) = [
            p for p in document["plugins"]["extractors"] if p["name"] == TapMaesnQonto.name
        ]
    else:
        plugin = yaml.safe_load(HUB_DEFINITION.read_text(encoding="utf-8"))
    return {setting["name"]: setting for setting in plugin["settings"]}
