"""Publishing: what Meltano, MeltanoHub, PyPI and GitHub Actions read from this repository.

Four descriptions of the tap must agree with what the tap says about itself
(`tap-maesn-qonto --about --format json`):

- `meltano.yml`, the Meltano project used to develop and try the tap;
- `hub/_data/meltano/extractors/tap-maesn-qonto/maesn-qonto.yml`, the MeltanoHub plugin
  definition (it goes to the same sub-path of github.com/meltano/hub), which must also
  validate against MeltanoHub's JSON schemas, vendored in `vendor/meltanohub-schemas/`;
- `pyproject.toml`, which PyPI and installers read;
- `.github/`, the CI, release and Dependabot configuration, validated with the schemas
  that ship inside check-jsonschema.

Everything here runs offline.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import typing as t
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from packaging.specifiers import SpecifierSet
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from tap_maesn_qonto.accounts import ACCOUNT_FORMS

REPO_ROOT = Path(__file__).resolve().parents[2]
MELTANO_YML = REPO_ROOT / "meltano.yml"
PYPROJECT = REPO_ROOT / "pyproject.toml"
HUB_DEFINITION = (
    REPO_ROOT / "hub" / "_data" / "meltano" / "extractors" / "tap-maesn-qonto" / "maesn-qonto.yml"
)
HUB_SCHEMAS = REPO_ROOT / "vendor" / "meltanohub-schemas"
HUB_EXTRACTOR_SCHEMA = HUB_SCHEMAS / "plugin_definitions" / "extractors.schema.json"
GITHUB_DIR = REPO_ROOT / ".github"
WORKFLOWS = sorted([*GITHUB_DIR.glob("workflows/*.yml"), *GITHUB_DIR.glob("workflows/*.yaml")])
DEPENDABOT = GITHUB_DIR / "dependabot.yml"

TAP_NAME = "tap-maesn-qonto"
SCRIPT_TARGET = "tap_maesn_qonto.cli:main"

# Meltano setting kind -> (JSON Schema type, JSON Schema format) in the tap's --about settings.
KIND_TO_JSON_TYPE: dict[str, tuple[str, str | None]] = {
    "string": ("string", None),
    "boolean": ("boolean", None),
    "integer": ("integer", None),
    "date_iso8601": ("string", "date-time"),
    "object": ("object", None),
    "array": ("array", None),
}

FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*['\"]?(?P<ref>[^\s'\"#]+)['\"]?\s*(?P<rest>.*)$")
VERSION_COMMENT = re.compile(r"^#\s*v\d+(\.\d+){0,2}\b")
# Any request check-jsonschema might try to make goes to a closed port and fails.
PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)
NO_NETWORK_ENV = dict.fromkeys(PROXY_VARIABLES, "http://127.0.0.1:9")

Mapping = dict[str, t.Any]


# --------------------------------------------------------------------------- loading


def load_yaml(path: Path) -> t.Any:
    """Parse one YAML file, failing with the parser's position when it is not valid YAML."""
    assert path.is_file(), f"{path.relative_to(REPO_ROOT)} is missing: create it."
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        pytest.fail(
            f"{path.relative_to(REPO_ROOT)} is not valid YAML; fix it (a plain value that "
            f"contains ': ' must be quoted):\n{exc}"
        )


def non_null_type(prop: Mapping) -> set[str]:
    """The JSON types of an --about setting, without "null" (which only means optional)."""
    types = prop.get("type", [])
    return {types} if isinstance(types, str) else set(types) - {"null"}


def by_name(settings: list[Mapping], source: str) -> dict[str, Mapping]:
    names = [s["name"] for s in settings]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert not duplicates, f"{source} lists these settings more than once: {duplicates}"
    return {s["name"]: s for s in settings}


def workflow_triggers(workflow: dict[t.Any, t.Any]) -> Mapping:
    # YAML 1.1 (PyYAML) reads the bare key `on` as the boolean True, so keys are not all str.
    return workflow.get("on", workflow.get(True)) or {}


def workflow_label(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT))


@pytest.fixture(scope="module")
def about() -> Mapping:
    """`tap-maesn-qonto --about --format json`, run the way an installer would run it."""
    result = subprocess.run(
        [sys.executable, "-m", "tap_maesn_qonto", "--about", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, f"--about failed; fix the tap:\n{result.stderr}"
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def about_settings(about: Mapping) -> dict[str, Mapping]:
    # singer-sdk 0.55 adds emit_activate_version_messages to every tap that declares the
    # capability; this tap's own reconciles decide when ACTIVATE_VERSION goes out, so the
    # setting is refused when true (settings.py) and not listed for Meltano or the Hub.
    properties = about["settings"]["properties"]
    return {name: p for name, p in properties.items() if name not in SDK_BUILT_INS_REFUSED}


#: Settings newer singer-sdk versions add that this tap accepts only at their default.
SDK_BUILT_INS_REFUSED = frozenset({"emit_activate_version_messages"})


@pytest.fixture(scope="module")
def meltano_project() -> Mapping:
    return load_yaml(MELTANO_YML)


@pytest.fixture(scope="module")
def meltano_extractor(meltano_project: Mapping) -> Mapping:
    extractors = meltano_project.get("plugins", {}).get("extractors", [])
    matches = [p for p in extractors if p.get("name") == TAP_NAME]
    assert len(matches) == 1, f"meltano.yml must declare exactly one extractor named {TAP_NAME}"
    return matches[0]


@pytest.fixture(scope="module")
def hub_definition() -> Mapping:
    return load_yaml(HUB_DEFINITION)


@pytest.fixture(scope="module")
def pyproject() -> Mapping:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def workflows() -> dict[str, Mapping]:
    assert WORKFLOWS, "There are no workflows in .github/workflows/: add test.yml and release.yml."
    return {workflow_label(path): load_yaml(path) for path in WORKFLOWS}


def described_settings(
    meltano_extractor: Mapping, hub_definition: Mapping
) -> dict[str, dict[str, Mapping]]:
    """The settings of meltano.yml's extractor and of the Hub definition, by name."""
    return {
        "meltano.yml": by_name(meltano_extractor.get("settings", []), "meltano.yml"),
        "the Hub definition": by_name(hub_definition.get("settings", []), "The Hub definition"),
    }


# --------------------------------------------------------------------------- MeltanoHub schema


def hub_schema_validator() -> jsonschema.Draft7Validator:
    """A validator for MeltanoHub's extractor schema that resolves every `$ref` offline.

    The Hub's schemas identify themselves with relative `$id`s ("extractors.schema.json",
    "common/common.schema.json", ...) and their `$ref`s resolve to exactly those ids, so
    every vendored file is registered under its own `$id`. The registry has no `retrieve`:
    a `$ref` to anything not vendored raises instead of reaching the network.
    """
    resources = []
    for path in sorted(HUB_SCHEMAS.rglob("*.schema.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        resources.append(
            (contents["$id"], Resource.from_contents(contents, default_specification=DRAFT7))
        )
    registry: Registry = Registry().with_resources(resources)
    schema = json.loads(HUB_EXTRACTOR_SCHEMA.read_text(encoding="utf-8"))

    format_checker = jsonschema.FormatChecker()

    @format_checker.checks("uri", raises=ValueError)
    def is_uri(value: object) -> bool:  # jsonschema checks "uri" only with rfc3987 installed
        if not isinstance(value, str):
            return True
        parts = urlsplit(value)
        return bool(parts.scheme and parts.netloc)

    return jsonschema.Draft7Validator(schema, registry=registry, format_checker=format_checker)


def schema_errors(instance: Mapping) -> list[str]:
    errors = sorted(hub_schema_validator().iter_errors(instance), key=lambda e: list(e.path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]


def test_hub_definition_validates_against_the_vendored_meltanohub_schema(
    hub_definition: Mapping,
) -> None:
    errors = schema_errors(hub_definition)
    assert not errors, (
        "The Hub definition is invalid for MeltanoHub; fix these keys:\n" + "\n".join(errors)
    )


def test_the_vendored_meltanohub_schema_is_really_enforced(hub_definition: Mapping) -> None:
    broken = {
        **hub_definition,
        "unknown_key": 1,
        "domain_url": "not a url",
        "settings": [{"name": "x", "kind": "secret"}],
    }
    errors = "\n".join(schema_errors(broken))
    assert "'unknown_key' was unexpected" in errors, (
        "additionalProperties of extractors.schema.json is not applied: check the validator"
    )
    assert "'secret' is not one of" in errors, (
        "common/base_setting.schema.json is not applied through its $ref: check the registry"
    )
    assert "is not a 'uri'" in errors, "domain_url's format: uri is not checked: check is_uri"


def test_hub_definition_identifies_the_plugin(
    hub_definition: Mapping, meltano_extractor: Mapping, pyproject: Mapping
) -> None:
    expected = {
        "name": TAP_NAME,
        "variant": "maesn-qonto",
        "namespace": meltano_extractor.get("namespace"),
        "executable": meltano_extractor.get("executable"),
        "pip_url": pyproject["project"]["name"],
        "repo": pyproject["project"]["urls"]["Repository"],
        "maintenance_status": "active",
        "quality": "silver",
    }
    for key, value in expected.items():
        assert hub_definition.get(key) == value, (
            f"Set `{key}: {value}` in the Hub definition (it has {hub_definition.get(key)!r})"
        )
    for key in ("label", "description", "docs", "domain_url", "keywords"):
        assert hub_definition.get(key), f"Give the Hub definition a `{key}`"
    missing = {"meltano_sdk", "qonto", "maesn"} - set(hub_definition["keywords"])
    assert not missing, f"Add the keywords {sorted(missing)} to the Hub definition"


def test_every_hub_setting_has_a_label_description_and_kind(hub_definition: Mapping) -> None:
    for setting in hub_definition.get("settings", []):
        for key in ("label", "description", "kind"):
            assert setting.get(key), f"Give Hub setting {setting.get('name')!r} a `{key}`"


# --------------------------------------------------------------------------- settings agree


def assert_no_problems(problems: list[str], summary: str) -> None:
    assert not problems, summary + "\n- " + "\n- ".join(problems)


def test_setting_names_agree_between_meltano_yml_hub_and_about(
    about_settings: dict[str, Mapping], meltano_extractor: Mapping, hub_definition: Mapping
) -> None:
    problems = []
    for source, settings in described_settings(meltano_extractor, hub_definition).items():
        problems += [
            f"setting {name!r} is in --about but not in {source}: add it"
            for name in about_settings
            if name not in settings
        ]
        problems += [
            f"setting {name!r} is in {source} but not in --about: remove it, or add it "
            "to the tap's config_jsonschema"
            for name in settings
            if name not in about_settings
        ]
    assert_no_problems(problems, "Setting names differ:")


def test_settings_are_sensitive_exactly_when_the_tap_marks_them_secret(
    about_settings: dict[str, Mapping], meltano_extractor: Mapping, hub_definition: Mapping
) -> None:
    problems = []
    for source, settings in described_settings(meltano_extractor, hub_definition).items():
        for name, setting in settings.items():
            secret = bool(about_settings.get(name, {}).get("secret", False))
            if bool(setting.get("sensitive", False)) != secret:
                problems.append(
                    f"setting {name!r} is {'secret' if secret else 'not secret'} in --about: "
                    f"set `sensitive: {str(secret).lower()}` on it in {source}"
                )
    assert_no_problems(problems, "Sensitive settings differ:")


def test_no_setting_uses_the_deprecated_password_kind(
    meltano_extractor: Mapping, hub_definition: Mapping
) -> None:
    problems = [
        f"setting {name!r} in {source} has `kind: password`, which Meltano deprecates: "
        "use `kind: string` with `sensitive: true`"
        for source, settings in described_settings(meltano_extractor, hub_definition).items()
        for name, setting in settings.items()
        if setting.get("kind") == "password"
    ]
    assert_no_problems(problems, "Deprecated setting kinds:")


def test_setting_kinds_agree_with_the_json_types_of_about(
    about_settings: dict[str, Mapping], meltano_extractor: Mapping, hub_definition: Mapping
) -> None:
    # Keyed by (type, format); looked up with type None when --about gives no type.
    json_type_to_kind: dict[tuple[str | None, str | None], str] = {
        json_type: kind for kind, json_type in KIND_TO_JSON_TYPE.items()
    }
    # Not `kind: decimal`, which Meltano 4.4 cannot write to the tap's config when the value
    # comes from the environment; the tap reads the text (tests/cli/test_settings_four_ways.py).
    json_type_to_kind["number", None] = "string"
    problems = []
    for source, settings in described_settings(meltano_extractor, hub_definition).items():
        for name, setting in settings.items():
            if name not in about_settings:
                continue  # reported by the names test
            prop = about_settings[name]
            types = non_null_type(prop)
            json_format = "date-time" if prop.get("format") == "date-time" else None
            expected = json_type_to_kind.get((next(iter(types), None), json_format), "?")
            if len(types) != 1 or expected == "?":
                problems.append(
                    f"setting {name!r} has the JSON type {prop.get('type')} in --about, which "
                    f"maps to no kind: use one type of {sorted(KIND_TO_JSON_TYPE.values())}"
                )
            elif setting.get("kind") != expected:
                problems.append(
                    f"setting {name!r} is `kind: {setting.get('kind')}` in {source}, but its "
                    f"--about type {prop.get('type')} (format {prop.get('format')}) means "
                    f"`kind: {expected}`: make them agree"
                )
    assert_no_problems(problems, "Setting kinds disagree with the tap's JSON types:")


def test_setting_defaults_agree_with_about(
    about_settings: dict[str, Mapping], meltano_extractor: Mapping, hub_definition: Mapping
) -> None:
    problems = []
    for source, settings in described_settings(meltano_extractor, hub_definition).items():
        for name, setting in settings.items():
            prop = about_settings.get(name, {})
            if "value" not in setting and "default" not in prop:
                continue
            value, default = setting.get("value"), prop.get("default")
            if (type(value), value) != (type(default), default):
                problems.append(
                    f"setting {name!r} defaults to {default!r} in --about but has "
                    f"`value: {value!r}` in {source}: make them equal"
                )
    assert_no_problems(problems, "Setting defaults differ:")


def test_settings_group_validation_is_the_tap_required_settings(
    about: Mapping, meltano_extractor: Mapping, hub_definition: Mapping
) -> None:
    # The tap requires api_key plus the accounts in one of their forms.
    required = about["settings"].get("required", [])
    expected = [sorted([*required, form]) for form in ACCOUNT_FORMS]
    for source, plugin in (("meltano.yml", meltano_extractor), ("the Hub", hub_definition)):
        groups = [sorted(group) for group in plugin.get("settings_group_validation", [])]
        assert groups == expected, (
            f"Set `settings_group_validation: {expected}` in {source} (the tap requires "
            f"{required} and the accounts as one of {ACCOUNT_FORMS}; it has {groups})"
        )


def test_capabilities_agree(
    about: Mapping, meltano_extractor: Mapping, hub_definition: Mapping
) -> None:
    tap = about["capabilities"]
    for source, plugin in (("meltano.yml", meltano_extractor), ("the Hub", hub_definition)):
        listed = plugin.get("capabilities", [])
        assert sorted(listed) == sorted(tap), (
            f"Capabilities differ; set {source}'s to --about's {tap} "
            f"(missing {sorted(set(tap) - set(listed))}, extra {sorted(set(listed) - set(tap))})"
        )


def test_supported_python_versions_agree(
    about: Mapping, hub_definition: Mapping, pyproject: Mapping
) -> None:
    versions = about["supported_python_versions"]
    assert hub_definition.get("supported_python_versions") == versions, (
        f"Set `supported_python_versions: {versions}` in the Hub definition (from --about)"
    )
    requires = SpecifierSet(pyproject["project"]["requires-python"])
    for version in versions:
        assert requires.contains(f"{version}.0"), (
            f"requires-python {requires} excludes supported Python {version}: widen it"
        )
    major, minor = map(int, versions[0].split("."))
    assert not requires.contains(f"{major}.{minor - 1}.0"), (
        f"requires-python {requires} admits Python {major}.{minor - 1}, which is not in the "
        "classifiers: tighten it or add the classifier"
    )


# --------------------------------------------------------------------------- meltano.yml


def test_meltano_project_opts_out_of_anonymous_usage_stats(meltano_project: Mapping) -> None:
    assert meltano_project.get("send_anonymous_usage_stats") is False, (
        "Set `send_anonymous_usage_stats: false` at the top of meltano.yml"
    )


def test_meltano_project_installs_the_tap_from_this_checkout(meltano_extractor: Mapping) -> None:
    assert meltano_extractor.get("pip_url") == "-e .", (
        f"Set `pip_url: -e .` on the {TAP_NAME} extractor in meltano.yml, so `meltano install` "
        "uses this checkout"
    )


def test_meltano_project_has_a_default_environment(meltano_project: Mapping) -> None:
    default = meltano_project.get("default_environment")
    names = [env.get("name") for env in meltano_project.get("environments", [])]
    assert default, (
        "Set `default_environment` in meltano.yml: without an active environment "
        "`meltano run` tracks no state"
    )
    assert default in names, (
        f"default_environment {default!r} is not one of meltano.yml's environments {names}"
    )


def test_meltano_project_pins_duckdb_for_target_duckdb(meltano_project: Mapping) -> None:
    loaders = {p.get("name"): p for p in meltano_project.get("plugins", {}).get("loaders", [])}
    assert "target-duckdb" in loaders, "Add the target-duckdb loader to meltano.yml"
    requirements = str(loaders["target-duckdb"].get("pip_url", "")).split()
    assert "duckdb==1.2.2" in requirements, (
        "Pin `duckdb==1.2.2` in target-duckdb's pip_url in meltano.yml: with duckdb >= 1.3 "
        "target-duckdb 0.8.0 drops the first row of every batch"
    )


def test_meltano_project_validates_against_meltanos_schema() -> None:
    result = check_jsonschema("vendor.meltano", MELTANO_YML)
    assert result.returncode == 0, (
        f"meltano.yml is invalid for Meltano; fix it:\n{result.stdout}{result.stderr}"
    )


# --------------------------------------------------------------------------- GitHub config


def check_jsonschema(builtin_schema: str, *paths: Path) -> subprocess.CompletedProcess[str]:
    """Run the installed check-jsonschema with one of its builtin schemas and no network."""
    executable = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    assert executable, (
        "check-jsonschema is not installed next to this Python: `uv sync` the test group"
    )
    env = {k: v for k, v in os.environ.items() if k.upper() != "NO_PROXY"} | NO_NETWORK_ENV
    return subprocess.run(
        [executable, "--builtin-schema", builtin_schema, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


@pytest.mark.parametrize(
    "name", ["github-workflows.json", "dependabot.json", "meltano.json"], ids=str
)
def test_check_jsonschema_ships_its_builtin_schemas(name: str) -> None:
    vendor = importlib.import_module("check_jsonschema.builtin_schemas.vendor")
    assert vendor.__file__ is not None
    schema = Path(vendor.__file__).parent / name
    assert schema.is_file(), (
        f"check-jsonschema has no builtin {name}, so validation would need the network: "
        "upgrade check-jsonschema"
    )


def test_check_jsonschema_rejects_an_invalid_workflow_offline(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  x:\n    steps: []\n    runs_on: ubuntu-latest\n")
    result = check_jsonschema("vendor.github-workflows", broken)
    assert result.returncode == 1, (
        "check-jsonschema accepted a workflow without runs-on, or could not run offline:\n"
        f"{result.stdout}{result.stderr}"
    )
    assert "runs_on" in result.stdout or "runs-on" in result.stdout


def test_workflows_validate_against_the_github_workflow_schema() -> None:
    assert WORKFLOWS, "There are no workflows in .github/workflows/: add test.yml and release.yml."
    result = check_jsonschema("vendor.github-workflows", *WORKFLOWS)
    assert result.returncode == 0, f"Fix these GitHub workflows:\n{result.stdout}{result.stderr}"


def test_dependabot_config_validates_against_the_dependabot_schema() -> None:
    assert DEPENDABOT.is_file(), "Add .github/dependabot.yml"
    result = check_jsonschema("vendor.dependabot", DEPENDABOT)
    assert result.returncode == 0, (
        f".github/dependabot.yml is invalid; fix it:\n{result.stdout}{result.stderr}"
    )


def test_dependabot_updates_uv_and_github_actions_weekly_with_a_cooldown() -> None:
    updates = {u["package-ecosystem"]: u for u in load_yaml(DEPENDABOT).get("updates", [])}
    for ecosystem in ("uv", "github-actions"):
        assert ecosystem in updates, f"Add a `{ecosystem}` entry to .github/dependabot.yml"
        update = updates[ecosystem]
        assert update.get("directory") == "/", f"Set `directory: /` for {ecosystem} updates"
        assert update.get("schedule", {}).get("interval") == "weekly", (
            f"Set `schedule: {{interval: weekly}}` for {ecosystem} updates"
        )
        assert update.get("cooldown"), (
            f"Give {ecosystem} updates a `cooldown` so brand-new releases wait a few days"
        )


def all_uses(workflow: Mapping) -> list[str]:
    """Every `uses:` of a parsed workflow: reusable workflows and steps."""
    uses = []
    for job in workflow.get("jobs", {}).values():
        uses += [job["uses"]] if "uses" in job else []
        uses += [step["uses"] for step in job.get("steps", []) if "uses" in step]
    return uses


def test_every_action_is_pinned_to_a_full_commit_sha(workflows: dict[str, Mapping]) -> None:
    problems = []
    for path in WORKFLOWS:
        found = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            match = USES_LINE.match(line)
            if not match:
                continue
            found.append(match["ref"])
            if match["ref"].startswith(("./", "docker://")):
                continue
            where = f"{workflow_label(path)}:{number}"
            action, _, ref = match["ref"].partition("@")
            if not FULL_SHA.match(ref):
                problems.append(f"{where}: pin {action} to a full 40-hex commit SHA, not {ref!r}")
            elif not VERSION_COMMENT.match(match["rest"]):
                problems.append(
                    f"{where}: add the release of {action}'s SHA as a comment, e.g. `# v1.2.3`"
                )
        expected = all_uses(workflows[workflow_label(path)])
        if sorted(found) != sorted(expected):
            problems.append(
                f"{workflow_label(path)}: write each `uses:` on one line as `uses: owner/repo@sha"
                f" # vX.Y.Z` (the YAML has {expected}, the lines show {found})"
            )
    assert_no_problems(problems, "Actions are not pinned:")


def test_every_workflow_sets_read_only_top_level_permissions(workflows: dict[str, Mapping]) -> None:
    for label, workflow in workflows.items():
        assert "permissions" in workflow, (
            f"{label}: set top-level `permissions: {{contents: read}}` (or `{{}}`)"
        )
        permissions = workflow["permissions"] or {}
        assert permissions not in ("write-all", "read-all"), (
            f"{label}: list top-level permissions explicitly, e.g. `contents: read`"
        )
        writes = sorted(k for k, v in permissions.items() if v == "write")
        assert not writes, (
            f"{label}: top-level permissions grant write on {writes}; move them to the one "
            "job that needs them"
        )


def grants_id_token(permissions: t.Any) -> bool:
    return permissions == "write-all" or (
        isinstance(permissions, dict) and permissions.get("id-token") == "write"
    )


def test_id_token_write_is_granted_only_to_the_release_publish_job(
    workflows: dict[str, Mapping],
) -> None:
    grants = [
        f"{label} (top level)"
        for label, w in workflows.items()
        if grants_id_token(w.get("permissions"))
    ]
    for label, workflow in workflows.items():
        grants += [
            f"{label} job {job_id}"
            for job_id, job in workflow.get("jobs", {}).items()
            if grants_id_token(job.get("permissions"))
        ]
    assert grants == [".github/workflows/release.yml job publish"], (
        "Only the `publish` job of release.yml may have `id-token: write` (PyPI trusted "
        f"publishing); it is granted to: {grants}"
    )


def steps_using(job: Mapping, action: str) -> list[Mapping]:
    return [s for s in job.get("steps", []) if str(s.get("uses", "")).startswith(f"{action}@")]


def test_checkouts_drop_credentials_and_fetch_tags_where_the_version_is_built(
    workflows: dict[str, Mapping],
) -> None:
    problems = []
    for label, workflow in workflows.items():
        for job_id, job in workflow.get("jobs", {}).items():
            scripts = " ".join(str(s.get("run", "")) for s in job.get("steps", []))
            builds_version = re.search(r"\buv (build|sync|run)\b", scripts) is not None
            for step in steps_using(job, "actions/checkout"):
                inputs = step.get("with", {})
                if inputs.get("persist-credentials") is not False:
                    problems.append(
                        f"{label} job {job_id}: give actions/checkout `persist-credentials: false`"
                    )
                if builds_version and inputs.get("fetch-depth") != 0:
                    problems.append(
                        f"{label} job {job_id} builds the package: check out with "
                        "`fetch-depth: 0` so hatch-vcs sees the tags"
                    )
    assert_no_problems(problems, "Checkouts are unsafe or too shallow:")


def test_ci_runs_lint_typing_tests_and_a_package_check(
    workflows: dict[str, Mapping], about: Mapping
) -> None:
    workflow = workflows.get(".github/workflows/test.yml")
    assert workflow, "Add .github/workflows/test.yml"
    triggers = workflow_triggers(workflow)
    assert "main" in (triggers.get("push") or {}).get("branches", []), (
        "Run test.yml on push to main"
    )
    assert "pull_request" in triggers, "Run test.yml on pull_request"
    jobs = workflow.get("jobs", {})
    expected_commands = {
        "lint": ["ruff check", "ruff format --check"],
        "typing": ["mypy"],
        "pytest": ["uv sync --locked", "pytest -n 2"],
        "package": ["uv build", "twine check --strict", "--about"],
    }
    for job_id, commands in expected_commands.items():
        assert job_id in jobs, f"Add a `{job_id}` job to test.yml"
        scripts = "\n".join(str(s.get("run", "")) for s in jobs[job_id].get("steps", []))
        for command in commands:
            assert command in scripts, f"test.yml job {job_id} must run `{command}`"
    matrix = jobs["pytest"].get("strategy", {}).get("matrix", {}).get("python-version")
    assert matrix == about["supported_python_versions"], (
        f"Test on every supported Python: set the pytest matrix to "
        f"{about['supported_python_versions']} (it is {matrix})"
    )


def test_release_publishes_tagged_builds_to_pypi_with_trusted_publishing(
    workflows: dict[str, Mapping],
) -> None:
    workflow = workflows.get(".github/workflows/release.yml")
    assert workflow, "Add .github/workflows/release.yml"
    triggers = workflow_triggers(workflow)
    assert set(triggers) == {"push"}, "Run release.yml only on push (of version tags)"
    assert triggers["push"].get("tags") == ["v*"], "Run release.yml on pushed tags `v*` only"
    assert "branches" not in triggers["push"], "Do not release on branch pushes"
    jobs = workflow.get("jobs", {})
    assert {"build", "publish"} <= set(jobs), "release.yml needs a `build` and a `publish` job"
    publish = jobs["publish"]
    assert publish.get("needs") in ("build", ["build"]), "The publish job must `needs: build`"
    environment = publish.get("environment")
    environment_name = environment.get("name") if isinstance(environment, dict) else environment
    assert environment_name == "pypi", (
        "Give the publish job `environment: pypi` (the trusted publisher is bound to it)"
    )
    uploads = steps_using(publish, "pypa/gh-action-pypi-publish")
    assert len(uploads) == 1, "Publish with one pypa/gh-action-pypi-publish step"
    assert not {"password", "user"} & set(uploads[0].get("with", {})), (
        "Remove the PyPI token from the publish step: trusted publishing needs none"
    )
    assert steps_using(jobs["build"], "actions/upload-artifact"), "Upload dist/ from the build job"
    assert steps_using(publish, "actions/download-artifact"), "Download dist/ in the publish job"


# --------------------------------------------------------------------------- pyproject.toml


def test_pyproject_builds_with_hatchling_and_a_vcs_version(pyproject: Mapping) -> None:
    build = pyproject.get("build-system", {})
    assert build.get("build-backend") == "hatchling.build", (
        'Set `build-backend = "hatchling.build"` in [build-system]'
    )
    requires = " ".join(build.get("requires", []))
    for requirement in ("hatchling", "hatch-vcs"):
        assert requirement in requires, f"Add {requirement} to [build-system] requires"
    project = pyproject["project"]
    assert "version" not in project, "Remove the static version: hatch-vcs sets it from tags"
    assert "version" in project.get("dynamic", []), 'Set `dynamic = ["version"]` in [project]'
    version = pyproject.get("tool", {}).get("hatch", {}).get("version", {})
    assert version.get("source") == "vcs", 'Set `source = "vcs"` in [tool.hatch.version]'
    assert version.get("fallback-version"), (
        "Set `fallback-version` in [tool.hatch.version] so builds without git history work"
    )


def test_pyproject_declares_license_readme_and_urls(pyproject: Mapping) -> None:
    project = pyproject["project"]
    assert project.get("name") == TAP_NAME, f'Set `name = "{TAP_NAME}"` in [project]'
    assert project.get("description"), "Give [project] a `description`"
    assert isinstance(project.get("license"), str), (
        'Set `license` to an SPDX expression, e.g. license = "Apache-2.0"'
    )
    license_files = project.get("license-files", [])
    assert license_files, 'Set `license-files = ["LICENSE"]` in [project]'
    for pattern in license_files:
        assert list(REPO_ROOT.glob(pattern)), f"license-files entry {pattern!r} matches no file"
    readme = project.get("readme")
    readme_path = readme if isinstance(readme, str) else (readme or {}).get("file")
    assert readme_path, "Set `readme` in [project]"
    assert (REPO_ROOT / readme_path).is_file(), f"The readme {readme_path!r} does not exist"
    urls = project.get("urls", {})
    for key in ("Homepage", "Repository", "Issues", "Changelog"):
        assert str(urls.get(key, "")).startswith("https://"), (
            f"Add a https `{key}` to [project.urls]"
        )


def test_pyproject_classifiers_name_every_supported_python(
    pyproject: Mapping, about: Mapping
) -> None:
    classifiers = pyproject["project"].get("classifiers", [])
    for version in about["supported_python_versions"]:
        classifier = f"Programming Language :: Python :: {version}"
        assert classifier in classifiers, f"Add the classifier {classifier!r} to pyproject.toml"


def test_pyproject_installs_the_tap_console_script(
    pyproject: Mapping, hub_definition: Mapping
) -> None:
    scripts = pyproject["project"].get("scripts", {})
    assert scripts.get(TAP_NAME) == SCRIPT_TARGET, (
        f'Set `{TAP_NAME} = "{SCRIPT_TARGET}"` in [project.scripts]'
    )
    module_name, _, attribute_path = SCRIPT_TARGET.partition(":")
    target: t.Any = importlib.import_module(module_name)
    for attribute in attribute_path.split("."):
        target = getattr(target, attribute)
    assert callable(target), f"{SCRIPT_TARGET} is not callable"
    assert hub_definition.get("executable") == TAP_NAME, (
        f"Set `executable: {TAP_NAME}` in the Hub definition (the console script's name)"
    )


BUILT_IN_SETTINGS = {"stream_maps", "stream_map_config", "faker_config"}


def test_readme_documents_every_setting_with_its_environment_variable(
    about_settings: dict[str, Mapping],
) -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    for name in about_settings:
        if name in BUILT_IN_SETTINGS or name.startswith("flattening_"):
            continue
        row = f"| `{name}` |"
        assert row in readme, f"Add a row for setting {name!r} to the README's settings table"
        line = next(line for line in readme.splitlines() if line.startswith(row))
        assert f"`TAP_MAESN_QONTO_{name.upper()}`" in line, (
            f"Give {name!r} its environment variable in the README's settings table"
        )


# --- the faker extra ------------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[2]


def test_the_faker_extra_is_declared() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["optional-dependencies"]["faker"] == ["singer-sdk[faker]~=0.54.9"]
