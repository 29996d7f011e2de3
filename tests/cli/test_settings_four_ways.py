"""Ways 1 and 2 of giving a setting: a JSON config file, and environment variables.

Every boolean, integer and number setting (tests/support/settings.py says how they are
found, and the four ways) reaches the tap, run as the settings probe (the real command
line, recording what it was built with), as bool, int or float, in a short sync against
the emulator. A value of the right form but wrong content (``"abc"`` for an integer) stops
the tap with one line naming the setting, no traceback. Ways 3 and 4, through Meltano:
tests/e2e/test_settings_meltano.py. The default tier gives one setting of each JSON type
each way (``REPRESENTATIVES``); the e2e tier every one.
"""

from __future__ import annotations

import json
import subprocess
import typing as t
from pathlib import Path

import pytest

from tap_maesn_qonto.emulator import Emulator
from tests.support.configs import API_KEY, tap_config
from tests.support.settings import (
    ENV_PREFIX,
    SCALARS,
    as_text,
    clean_env,
    every_scalar,
    expected,
    sample,
    write_probe,
)

if t.TYPE_CHECKING:
    from collections.abc import Iterator
#: Settings whose sample value needs another setting to be valid.
COMPANIONS: dict[str, dict[str, t.Any]] = {
    "shard_index": {"shard_count": 2},
    # The emulator's one account ("default") is in shard 1 of 2. (Shard 0 holds none here,
    # and a shard without accounts currently ends in KeyError: 'account_label', client.py.)
    "shard_count": {"shard_index": 1},
    "flattening_enabled": {"flattening_max_depth": 1},  # singer-sdk requires it then
}

# --------------------------------------------------------------------------- running the tap


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_probe(tmp_path_factory.mktemp("probe") / "tap-maesn-qonto-probe")


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(counts={"invoices": 3, "bills": 3, "bookingProposals": 3}) as emu:
        yield emu


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


@pytest.mark.parametrize("name", every_scalar())
def test_a_json_config_file_gives_the_python_type(
    name: str, probe: Path, emulator: Emulator, tmp_path: Path
) -> None:
    config = tap_config(emulator, **COMPANIONS.get(name, {}), **{name: sample(name)})
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")

    result, seen = run_probe(probe, ["--config", str(path)], tmp_path, clean_env())

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

    result, seen = run_probe(probe, ["--config", str(path)], tmp_path, clean_env())

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

    result, _ = run_probe(probe, ["--config", str(path)], tmp_path, clean_env())

    _assert_one_error_naming(result, name)


# --------------------------------------------------------------------------- 2. environment


def _env_config(emulator: Emulator, **settings: t.Any) -> dict[str, str]:
    return {
        f"{ENV_PREFIX}{key.upper()}": as_text(value) if not isinstance(value, str) else value
        for key, value in tap_config(emulator, **settings).items()
    }


@pytest.mark.parametrize("name", every_scalar())
def test_an_environment_variable_gives_the_python_type(
    name: str, probe: Path, emulator: Emulator, tmp_path: Path
) -> None:
    env = clean_env(**_env_config(emulator, **COMPANIONS.get(name, {}), **{name: sample(name)}))

    result, seen = run_probe(probe, ["--config", "ENV"], tmp_path, env)

    _assert_ran(result)
    assert seen[name] == expected(name)
    assert '"type":"RECORD"' in result.stdout.replace(" ", "")


@pytest.mark.parametrize("name", every_scalar())
def test_a_bad_environment_value_is_named_in_one_line(
    name: str, probe: Path, emulator: Emulator, tmp_path: Path
) -> None:
    # singer-sdk's own reading: int("abc") raised (a traceback), and "maybe" was false.
    bad = "maybe" if SCALARS[name] == "boolean" else "abc"
    env = clean_env(**_env_config(emulator, **{name: bad}))

    result, seen = run_probe(probe, ["--config", "ENV"], tmp_path, env)

    _assert_one_error_naming(result, name)
    assert not seen  # the tap was never built
