"""The operations kit stays in step with the settings."""

from pathlib import Path

import pytest

from ocr_runner.settings import Settings, load_settings

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def env_lines(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text().splitlines():
        line = line.strip().lstrip("# ").strip()
        if "=" in line and line.split("=", 1)[0].isupper():
            key, value = line.split("=", 1)
            pairs[key] = value
    return pairs


def test_env_example_names_real_settings_with_valid_values(monkeypatch):
    pairs = env_lines(ROOT / ".env.example")
    fields = {name.upper() for name in Settings.model_fields}
    unknown = {k for k in pairs if k not in fields and not k.startswith("BENTOML_")}
    assert not unknown, unknown
    for key, value in pairs.items():
        if key != "API_KEYS_FILE":
            monkeypatch.setenv(key, value)
    assert load_settings().port == 8000


def test_systemd_unit_runs_bentoml_serve_from_the_install():
    unit = (ROOT / "deploy" / "deepseek-ocr.service").read_text()
    assert "ExecStart=/opt/deepseek-ocr/.venv/bin/bentoml serve" in unit
    assert "EnvironmentFile=-/opt/deepseek-ocr/.env" in unit
