"""Ways 3 and 4 of giving a setting: through Meltano (meltano.yml's and the Hub's kinds).

Every boolean, integer and number setting, set with ``meltano config set`` or an
environment variable in a project using this repository's meltano.yml plugin definition,
or the MeltanoHub definition's ``kind``, reaches the tap (run as the settings probe, through
``meltano invoke --discover``) as bool, int or float. Meltano 4.4.1 runs from uv's tool
cache; tests/support/settings.py says how the settings are found and what each way means.
"""

from __future__ import annotations

import json
import subprocess
import typing as t
from pathlib import Path

import pytest
import yaml

from tap_maesn_qonto.tap import TapMaesnQonto
from tests.support.settings import (
    ENV_PREFIX,
    MELTANO_KINDS,
    MELTANO_YML,
    SCALARS,
    as_text,
    clean_env,
    expected,
    plugin_settings,
    sample,
    write_probe,
)
from tests.support.tools import MELTANO, uvx_executable

if t.TYPE_CHECKING:
    pass

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
            env={**clean_env(**MELTANO_ENV), **(env or {})},
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
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_probe(tmp_path_factory.mktemp("probe") / "tap-maesn-qonto-probe")


@pytest.fixture(scope="module")
def meltano() -> str:
    return uvx_executable(MELTANO, "meltano")


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
        meltano, root / "config-set", list(plugin_settings("meltano.yml").values()), probe
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
            meltano, root / way.replace(" ", "-"), list(plugin_settings(source).values()), probe
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
