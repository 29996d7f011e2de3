"""The README's Meltano blocks, as tests/e2e/readme.py finds them.

The check itself runs Meltano (CI, .ci/run step 5); these tests hold that it still finds
every README block it runs, and that the README's extractor block declares the Hub's
settings. The check is a module of the e2e tier (``python -m tests.e2e.readme``).
"""

from __future__ import annotations

import yaml

from tests.e2e import readme as check


def test_the_readme_check_finds_every_block_it_runs() -> None:
    blocks = check.readme_blocks()
    assert {b.language for b in blocks} <= check.RUN_FENCES | check.SHOWN_FENCES
    (quick,) = [b for b in blocks if check.is_quick_start(b)]
    assert check.command_lines(quick) == ["bash scripts/quickstart.sh", "bash scripts/test.sh"]
    commands = [c for b in blocks if b.language == "bash" for c in check.command_lines(b)]
    assert "meltano config test tap-maesn-qonto" in commands
    assert "meltano run tap-maesn-qonto target-postgres" in commands
    # Meltano splits pip_url on whitespace: the README's must have none, and name the one
    # source the check rewrites to this checkout.
    pip_urls = [
        plugin["pip_url"]
        for b in blocks
        if b.language == "yaml"
        for plugins in yaml.safe_load(b.text).get("plugins", {}).values()
        for plugin in plugins
    ]
    assert pip_urls
    assert all(" " not in url for url in pip_urls)
    assert any(check.GIT_SOURCE in url for url in pip_urls)


def test_the_readme_extractor_block_declares_the_hub_settings() -> None:
    (extractor,) = [
        plugin
        for b in check.readme_blocks()
        if b.language == "yaml"
        for plugin in yaml.safe_load(b.text).get("plugins", {}).get("extractors", [])
    ]
    hub = yaml.safe_load(
        (check.ROOT / "hub/_data/meltano/extractors/tap-maesn-qonto/maesn-qonto.yml").read_text()
    )
    kinds = {s["name"]: (s.get("kind"), bool(s.get("sensitive"))) for s in hub["settings"]}
    assert {
        s["name"]: (s.get("kind"), bool(s.get("sensitive"))) for s in extractor["settings"]
    } == kinds
    assert extractor["capabilities"] == hub["capabilities"]
