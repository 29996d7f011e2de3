"""The README's Meltano commands, as scripts/meltano_readme_check.py finds them.

The check itself runs Meltano (CI, .ci/run step 6); this test only holds that it still
finds the commands it runs in README.md. It imports the script by its path (tests/helpers.py)
because the script belongs to the README's owner: it moves into tests/e2e/ when that script
becomes a module.
"""

from __future__ import annotations

from tests.helpers import load_script


def test_the_readme_check_finds_the_meltano_commands_it_runs() -> None:
    own_project, repository = load_script("meltano_readme_check").readme_blocks()
    assert "meltano config test tap-maesn-qonto" in own_project
    assert any(
        line.startswith("meltano config set tap-maesn-qonto api_key") for line in own_project
    )
    assert "meltano --environment=emulator config test tap-maesn-qonto" in repository
    assert "meltano run tap-maesn-qonto target-jsonl" in repository
    assert repository[0].startswith("python3 -m tap_maesn_qonto.emulator")
    assert repository[-1] == "kill %1"
