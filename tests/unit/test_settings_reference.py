"""docs/configuration.md's table is generated from the settings' field descriptions and kept current."""

import pytest

from ocr_runner.settings import Settings
from ocr_runner.settings_reference import REFERENCE_FILE, committed_table, main, render_table

pytestmark = pytest.mark.unit


def test_every_setting_is_described():
    undescribed = [name for name, field in Settings.model_fields.items() if not (field.description or "").strip()]
    assert not undescribed, f"settings without a description: {undescribed}"


def test_the_committed_reference_is_current():
    assert committed_table(REFERENCE_FILE) == render_table(), (
        f"{REFERENCE_FILE} is stale: run python -m ocr_runner.settings_reference --write"
    )


def test_one_row_per_setting_named_by_its_environment_variable():
    rows = render_table().splitlines()[2:]
    assert [row.split("|")[1].strip().strip("`") for row in rows] == [name.upper() for name in Settings.model_fields]
    engine = next(row for row in rows if row.startswith("| `ENGINE` |"))
    assert "`auto` \\| `deepseek` \\| `rapidocr`" in engine


def test_the_command_checks_and_rewrites_between_the_markers(tmp_path, capsys):
    doc = tmp_path / "configuration.md"
    doc.write_text("intro\n<!-- settings:start -->\n| old |\n<!-- settings:end -->\nafter\n")
    assert main(["--file", str(doc)]) == 1
    assert main(["--write", "--file", str(doc)]) == 0
    assert main(["--file", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith("intro\n<!-- settings:start -->\n| variable |")
    assert text.endswith("<!-- settings:end -->\nafter\n")
    assert "| old |" not in text
    capsys.readouterr()
