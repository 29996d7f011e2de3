"""scripts/generate_schemas.py, run as a maintainer runs it: the committed schemas are
exactly what it generates from Maesn's vendored OpenAPI spec, and its check mode says when
they are not. The rules it applies: tests/unit/test_schemas.py."""

from __future__ import annotations

import shutil
import typing as t
from pathlib import Path

import pytest

from tests.support.generator import generate

if t.TYPE_CHECKING:
    pass

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMAS_DIR = REPO_ROOT / "tap_maesn_qonto" / "schemas"

STREAM_COMPONENTS = {
    "invoices": "InvoiceResponseDto",
    "bills": "BillResponseDto",
    "booking_proposals": "BookingProposalResponseDto",
}
LINE_ITEM_STREAMS = ("invoice_line_items", "bill_line_items", "booking_proposal_line_items")
REGENERATE_HINT = "Schemas are stale: run `python scripts/generate_schemas.py`."


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of freshly generated schema files."""
    directory = tmp_path_factory.mktemp("generated")
    done = generate("--schemas-dir", str(directory))
    assert done.returncode == 0, done.stderr
    return directory


# -- The committed files are what the generator produces -------------------------------


def test_schema_files_are_exactly_the_generated_streams() -> None:
    files = {path.stem for path in SCHEMAS_DIR.glob("*.json")}
    assert files == set(STREAM_COMPONENTS) | set(LINE_ITEM_STREAMS)


@pytest.mark.parametrize("stream_name", [*STREAM_COMPONENTS, *LINE_ITEM_STREAMS])
def test_committed_schema_is_byte_identical_to_a_fresh_generation(
    stream_name: str, generated: Path
) -> None:
    committed_text = (SCHEMAS_DIR / f"{stream_name}.json").read_bytes()
    fresh_text = (generated / f"{stream_name}.json").read_bytes()
    assert committed_text == fresh_text, REGENERATE_HINT


def test_check_mode_reports_a_stale_file_as_a_diff(generated: Path, tmp_path: Path) -> None:
    shutil.copytree(generated, tmp_path, dirs_exist_ok=True)
    fresh = generate("--check", "--schemas-dir", str(tmp_path))
    assert (fresh.returncode, fresh.stdout) == (0, ""), fresh.stdout + fresh.stderr

    bills_path = tmp_path / "bills.json"
    bills_path.write_text(bills_path.read_text().replace('"number"', '"string"'))
    stale = generate("--check", "--schemas-dir", str(tmp_path))
    assert stale.returncode == 1, stale.stderr
    changed_lines = stale.stdout.splitlines()
    assert any(line.startswith("-") and '"string"' in line for line in changed_lines)
    assert any(line.startswith("+") and '"number"' in line for line in changed_lines)


def test_check_mode_passes_on_the_committed_files() -> None:
    checked = generate("--check")
    assert checked.returncode == 0, f"{REGENERATE_HINT}\n{checked.stdout}{checked.stderr}"
