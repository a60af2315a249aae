"""Telling the checkpoint layouts apart from config.json, on the genuine published configs."""

import copy

import pytest

from ocr_runner.models.deepseek_v1 import is_v1_config
from ocr_runner.models.layouts import Layout, UnsupportedCheckpoint, detect_layout
from tests.genuine import OCR2, V1, genuine_config


def test_the_published_v1_config_is_v1():
    assert detect_layout(genuine_config(V1), "deepseek-ai/DeepSeek-OCR") is Layout.V1
    assert is_v1_config(genuine_config(V1))


def test_the_published_ocr2_config_is_ocr2_not_v1():
    # It also says model_type deepseek_vl_v2 and has a language_config: keyed on those it reads as v1.
    config = genuine_config(OCR2)
    assert config["model_type"] == "deepseek_vl_v2" and "language_config" in config
    assert detect_layout(config, "deepseek-ai/DeepSeek-OCR-2") is Layout.OCR2_ORIGINAL
    assert not is_v1_config(config)


def test_the_converted_layout():
    assert detect_layout({"model_type": "deepseek_ocr2", "text_config": {}}, "x") is Layout.OCR2_CONVERTED


@pytest.mark.parametrize(
    ("config", "found"),
    [
        # DeepSeek-VL2 itself: the same model_type, a SigLIP tower.
        ({"model_type": "deepseek_vl_v2", "architectures": ["DeepseekVLV2ForCausalLM"], "language_config": {},
          "vision_config": {"model_name": "siglip_so400m_patch14_384", "width": 1152}},
         "matches neither"),
        ({"model_type": "qwen2_vl", "architectures": ["Qwen2VLForConditionalGeneration"]}, "'qwen2_vl'"),
        ({}, "empty"),
    ],
)
def test_anything_else_is_refused_naming_the_checkpoint_and_what_it_found(config, found):
    with pytest.raises(UnsupportedCheckpoint, match="some/model") as caught:
        detect_layout(config, "some/model")
    assert found in str(caught.value)


def test_a_config_that_contradicts_itself_is_refused():
    config = copy.deepcopy(genuine_config(OCR2))
    config["architectures"] = ["DeepseekOCRForCausalLM"]  # v1's class on OCR-2's towers
    with pytest.raises(UnsupportedCheckpoint, match="contradicts itself"):
        detect_layout(config, "mixed")


def test_no_config_is_refused_naming_the_checkpoint():
    with pytest.raises(UnsupportedCheckpoint, match="^deepseek-ai/DeepSeek-OCR-2: no config.json"):
        detect_layout(None, "deepseek-ai/DeepSeek-OCR-2")
