import pytest

from ocr_runner.settings import CONFIG_FILE_ENV, SettingsError, load_settings

pytestmark = pytest.mark.unit


def test_defaults_match_the_seed():
    settings = load_settings()
    assert (settings.base_size, settings.image_size, settings.crop_mode, settings.port) == (1024, 640, True, 8000)
    assert settings.model_name == "deepseek-community/DeepSeek-OCR-2"


def test_environment_overrides_yaml(tmp_path, monkeypatch):
    config = tmp_path / "c.yaml"
    config.write_text("max_batch_size: 4\nengine: rapidocr\n")
    monkeypatch.setenv(CONFIG_FILE_ENV, str(config))
    assert load_settings().max_batch_size == 4
    monkeypatch.setenv("MAX_BATCH_SIZE", "16")
    settings = load_settings()
    assert settings.max_batch_size == 16 and settings.engine == "rapidocr"


@pytest.mark.parametrize(
    ("env", "value", "named"),
    [
        ("ENGINE", "gpu-magic", "ENGINE"),
        ("PORT", "0", "PORT"),
        ("BASE_SIZE", "37", "BASE_SIZE"),
        ("CROP_MODE", "maybe", "CROP_MODE"),
        ("DEVICE", "tpu", "DEVICE"),
        ("MAX_BATCH_SIZE", "lots", "MAX_BATCH_SIZE"),
    ],
)
def test_invalid_values_stop_startup_naming_the_setting(monkeypatch, env, value, named):
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert named in str(info.value)


def test_unknown_yaml_key_is_rejected(tmp_path, monkeypatch):
    config = tmp_path / "c.yaml"
    config.write_text("max_batchsize: 4\n")
    monkeypatch.setenv(CONFIG_FILE_ENV, str(config))
    with pytest.raises(SettingsError, match="MAX_BATCHSIZE"):
        load_settings()
