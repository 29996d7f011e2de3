"""Every boolean, integer and number setting, given each way a user gives it.

The settings are read from the tap's config schema (its own and the SDK's built-in ones),
not listed here. Each one is given

1. in a JSON config file to the command line (singer-sdk reads 1.25 as a Decimal),
2. as an environment variable with ``--config ENV`` (text: "1.25", "50", "true"),
3. through Meltano, with this repository's meltano.yml plugin definition: ``meltano
   config set`` and an environment variable, then ``meltano invoke`` (Meltano casts by
   the setting's ``kind`` and writes the tap's config file; ``kind: decimal`` could not),
4. through Meltano with the MeltanoHub definition's ``kind``,

and must reach the tap as bool, int or float. The tap runs as
:data:`PROBE`: the real command line (``tap_maesn_qonto.cli.main``), which writes the type and
value of every setting the tap was built with to ``$SETTINGS_PROBE_OUT``. 1 and 2 run a
short sync against the emulator; 3 and 4 (``e2e``, Meltano 4.4.1 through uv) run discovery,
which builds the tap from the same config file. A value of the right form but wrong content
(``"abc"`` for an integer) stops the tap with one line naming the setting, no traceback.
"""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
import typing as t
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from tap_maesn_qonto.emulator import Emulator
from tap_maesn_qonto.settings import coerce_value
from tap_maesn_qonto.tap import TapMaesnQonto
from tests.helpers import load_script
from tests.support.configs import API_KEY, tap_config
from tests.support.tap import REPO_ROOT

if t.TYPE_CHECKING:
    from collections.abc import Iterator

MELTANO_YML = REPO_ROOT / "meltano.yml"
HUB_DEFINITION = (
    REPO_ROOT / "hub" / "_data" / "meltano" / "extractors" / "tap-maesn-qonto" / "maesn-qonto.yml"
)
HUB_SETTING_SCHEMA = (
    REPO_ROOT / "vendor" / "meltanohub-schemas" / "common" / "base_setting.schema.json"
)
ENV_PREFIX = "TAP_MAESN_QONTO_"
PYTHON_TYPES = {"boolean": "bool", "integer": "int", "number": "float"}
#: Meltano 4.4.1's setting kinds (``meltano.core.setting_definition.SettingKind``; the e2e
#: test below checks this list against the real Meltano).
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
#: The kind each JSON type of the tap's settings is described with. A number is a string:
#: Meltano 4.4 casts an environment (or .env) value of ``kind: decimal`` to Decimal and then
#: cannot write the tap's config ("Object of type Decimal is not JSON serializable"); the
#: tap reads "1.25" as the number 1.25. Secrets are strings marked ``sensitive: true``
#: (``kind: password`` is deprecated).
KIND_OF_JSON_TYPE = {
    "string": "string",
    "date-time": "date_iso8601",
    "integer": "integer",
    "boolean": "boolean",
    "number": "string",
    "array": "array",
    "object": "object",
}
#: Settings whose sample value needs another setting to be valid.
COMPANIONS: dict[str, dict[str, t.Any]] = {
    "shard_index": {"shard_count": 2},
    # The emulator's one account ("default") is in shard 1 of 2. (Shard 0 holds none here,
    # and a shard without accounts currently ends in KeyError: 'account_label', client.py.)
    "shard_count": {"shard_index": 1},
    "flattening_enabled": {"flattening_max_depth": 1},  # singer-sdk requires it then
}

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


# --------------------------------------------------------------------------- the settings


def _full_schema() -> dict[str, t.Any]:
    """The tap's config schema with the SDK's built-in settings (flattening_*...)."""
    schema = copy.deepcopy(TapMaesnQonto.config_jsonschema)
    TapMaesnQonto.append_builtin_config(schema)
    return schema


SCHEMA = _full_schema()
PROPERTIES: dict[str, dict[str, t.Any]] = SCHEMA["properties"]


def _json_types(prop: dict[str, t.Any]) -> set[str]:
    types = prop.get("type", [])
    return ({types} if isinstance(types, str) else set(types)) - {"null"}


SCALARS = {
    name: next(iter(types))
    for name, prop in PROPERTIES.items()
    if len(types := _json_types(prop)) == 1 and types <= set(PYTHON_TYPES)
}


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
    value = sample(name)
    return [PYTHON_TYPES[SCALARS[name]], repr(value)]


def test_the_schema_has_boolean_integer_and_number_settings() -> None:
    # A guard for the parametrisation: the settings the issue names are among them.
    assert {"max_requests_per_second", "sandbox", "page_size"} <= set(SCALARS)
    assert {SCALARS[n] for n in SCALARS} == set(PYTHON_TYPES)


# --------------------------------------------------------------------------- running the tap


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("probe") / "tap-maesn-qonto-probe"
    path.write_text(f"#!{sys.executable}\n{PROBE}", encoding="utf-8")
    path.chmod(0o755)
    return path


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(counts={"invoices": 3, "bills": 3, "bookingProposals": 3}) as emu:
        yield emu


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any TAP_MAESN_QONTO_* variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    return {**env, **extra}


def run_probe(
    probe: Path, args: list[str], tmp_path: Path, env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], dict[str, list[str]]]:
    out = tmp_path / "settings-seen.json"
    result = subprocess.run(
        [str(probe), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "SETTINGS_PROBE_OUT": str(out)},
        check=False,
    )
    seen = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    return result, seen


def _assert_ran(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]


def _assert_one_error_naming(result: subprocess.CompletedProcess[str], name: str) -> None:
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, result.stderr[-3000:]
    assert "Invalid config" in errors[0], errors[0]
    assert f"config[{name!r}]" in errors[0], errors[0]


# --------------------------------------------------------------------------- 1. JSON file


@pytest.mark.parametrize("name", sorted(SCALARS))
def test_a_json_config_file_gives_the_python_type(
    name: str, probe: Path, emulator: Emulator, tmp_path: Path
) -> None:
    config = tap_config(emulator, **COMPANIONS.get(name, {}), **{name: sample(name)})
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")

    result, seen = run_probe(probe, ["--config", str(path)], tmp_path, _clean_env())

    _assert_ran(result)
    assert seen[name] == expected(name)
    assert '"type":"RECORD"' in result.stdout.replace(" ", "")  # a real sync ran


def test_a_number_setting_also_reads_the_text_meltano_writes(
    probe: Path, emulator: Emulator, tmp_path: Path
) -> None:
    # `kind: string` (see KIND_OF_JSON_TYPE): Meltano writes "1.25", quoted.
    config = tap_config(emulator, max_requests_per_second="30.25")
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")

    result, seen = run_probe(probe, ["--config", str(path)], tmp_path, _clean_env())

    _assert_ran(result)
    assert seen["max_requests_per_second"] == ["float", "30.25"]


@pytest.mark.parametrize(
    ("name", "value"),
    [("max_requests_per_second", "fast"), ("page_size", "50"), ("sandbox", "yes")],
)
def test_text_that_is_not_the_json_type_is_named_in_one_line(
    name: str, value: str, probe: Path, tmp_path: Path
) -> None:
    # In a JSON file only number settings read text (as Meltano writes it); "50" for an
    # integer or "yes" for a boolean there is a mistake, named.
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"api_key": API_KEY, "account_key": "a", name: value}))

    result, _ = run_probe(probe, ["--config", str(path)], tmp_path, _clean_env())

    _assert_one_error_naming(result, name)


# --------------------------------------------------------------------------- 2. environment


def _env_config(emulator: Emulator, **settings: t.Any) -> dict[str, str]:
    return {
        f"{ENV_PREFIX}{key.upper()}": as_text(value) if not isinstance(value, str) else value
        for key, value in tap_config(emulator, **settings).items()
    }


@pytest.mark.parametrize("name", sorted(SCALARS))
def test_an_environment_variable_gives_the_python_type(
    name: str, probe: Path, emulator: Emulator, tmp_path: Path
) -> None:
    env = _clean_env(**_env_config(emulator, **COMPANIONS.get(name, {}), **{name: sample(name)}))

    result, seen = run_probe(probe, ["--config", "ENV"], tmp_path, env)

    _assert_ran(result)
    assert seen[name] == expected(name)
    assert '"type":"RECORD"' in result.stdout.replace(" ", "")


@pytest.mark.parametrize("name", sorted(SCALARS))
def test_a_bad_environment_value_is_named_in_one_line(
    name: str, probe: Path, emulator: Emulator, tmp_path: Path
) -> None:
    # singer-sdk's own reading: int("abc") raised (a traceback), and "maybe" was false.
    bad = "maybe" if SCALARS[name] == "boolean" else "abc"
    env = _clean_env(**_env_config(emulator, **{name: bad}))

    result, seen = run_probe(probe, ["--config", "ENV"], tmp_path, env)

    _assert_one_error_naming(result, name)
    assert not seen  # the tap was never built


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


def _plugin_settings(source: str) -> dict[str, dict[str, t.Any]]:
    if source == "meltano.yml":
        document = yaml.safe_load(MELTANO_YML.read_text(encoding="utf-8"))
        (plugin,) = [
            p for p in document["plugins"]["extractors"] if p["name"] == TapMaesnQonto.name
        ]
    else:
        plugin = yaml.safe_load(HUB_DEFINITION.read_text(encoding="utf-8"))
    return {setting["name"]: setting for setting in plugin["settings"]}


def _kind_for(prop: dict[str, t.Any]) -> str:
    types = _json_types(prop)
    assert len(types) == 1, f"one JSON type (null aside) per setting, not {prop.get('type')}"
    json_type = next(iter(types))
    if json_type == "string" and prop.get("format") == "date-time":
        json_type = "date-time"
    return KIND_OF_JSON_TYPE[json_type]


@pytest.mark.parametrize("source", ["meltano.yml", "hub"])
def test_every_setting_is_described_with_the_kind_of_its_json_type(source: str) -> None:
    described = _plugin_settings(source)
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


# --------------------------------------------------------------------------- 3, 4. Meltano

MELTANO_ENV = {
    "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
    "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
    "NO_COLOR": "1",
}


class MeltanoProject:
    """A throwaway Meltano project whose tap-maesn-qonto is :data:`PROBE`."""

    def __init__(self, meltano: str, root: Path, settings: list[dict[str, t.Any]], probe: Path):
        self.meltano, self.root = meltano, root
        source = yaml.safe_load(MELTANO_YML.read_text(encoding="utf-8"))
        (plugin,) = [p for p in source["plugins"]["extractors"] if p["name"] == TapMaesnQonto.name]
        plugin = {**plugin, "settings": settings, "executable": str(probe)}
        plugin.pop("pip_url", None)  # nothing to install: the probe runs this checkout
        project = {
            "send_anonymous_usage_stats": False,
            "project_id": "settings-four-ways",
            "plugins": {"extractors": [plugin]},
        }
        root.mkdir(parents=True)
        (root / "meltano.yml").write_text(yaml.safe_dump(project, sort_keys=False))

    def __call__(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.meltano, *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=300,
            env={**_clean_env(**MELTANO_ENV), **(env or {})},
            check=False,
        )

    def discover(
        self, env: dict[str, str] | None = None
    ) -> tuple[subprocess.CompletedProcess[str], dict[str, list[str]]]:
        out = self.root / "settings-seen.json"
        out.unlink(missing_ok=True)
        result = self(
            "invoke",
            TapMaesnQonto.name,
            "--discover",
            env={**(env or {}), "SETTINGS_PROBE_OUT": str(out)},
        )
        seen = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
        return result, seen


@pytest.fixture(scope="module")
def meltano() -> str:
    e2e = load_script("meltano_e2e")
    return str(e2e.uvx_executable(e2e.MELTANO, "meltano"))


@pytest.fixture(scope="module")
def meltano_runs(
    meltano: str, probe: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[subprocess.CompletedProcess[str], dict[str, list[str]], list[str]]]:
    """Each Meltano way, run once for every setting at the same time: its run, what the tap
    saw, and any `meltano config set` that failed."""
    root = tmp_path_factory.mktemp("meltano")
    env_values = {f"{ENV_PREFIX}{n.upper()}": as_text(sample(n)) for n in SCALARS}
    runs = {}

    config_set = MeltanoProject(
        meltano, root / "config-set", list(_plugin_settings("meltano.yml").values()), probe
    )
    failed = []
    for name in sorted(SCALARS):
        # "--": a value such as -1 is not an option.
        done = config_set("config", "set", TapMaesnQonto.name, "--", name, as_text(sample(name)))
        if done.returncode != 0:
            failed.append(f"meltano config set {name}: {done.stderr[-800:]}")
    runs["config set"] = (*config_set.discover(), failed)

    for way, source in (("environment", "meltano.yml"), ("hub kind", "hub")):
        project = MeltanoProject(
            meltano, root / way.replace(" ", "-"), list(_plugin_settings(source).values()), probe
        )
        runs[way] = (*project.discover(env_values), [])
    return runs


@pytest.mark.e2e
@pytest.mark.parametrize("way", ["config set", "environment", "hub kind"])
@pytest.mark.parametrize("name", sorted(SCALARS))
def test_meltano_gives_the_python_type(
    name: str,
    way: str,
    meltano_runs: dict[
        str, tuple[subprocess.CompletedProcess[str], dict[str, list[str]], list[str]]
    ],
) -> None:
    result, seen, failed = meltano_runs[way]
    assert not failed, "\n".join(failed)
    assert result.returncode == 0, result.stderr[-3000:]
    assert seen.get(name) == expected(name), (seen.get(name), result.stderr[-2000:])


@pytest.mark.e2e
def test_the_kinds_used_are_meltanos(meltano: str) -> None:
    python = Path(meltano).parent / "python"
    listed = subprocess.run(
        [
            str(python),
            "-c",
            "from meltano.core.setting_definition import SettingKind as K; print(*(k.value for k in K))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert set(listed.stdout.split()) == MELTANO_KINDS
