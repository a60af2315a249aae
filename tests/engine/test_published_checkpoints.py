"""The official checkpoints as published: config.json, processor and tokenizer as the model hub has them.

The genuine small files are read from ``../shared/checkpoints`` (tests skip where it is absent):
the full-size architectures built from the genuine configs (on the meta device) have the published
sizes, the stand-in tokenizer gives the published ids with BOS where the original ``infer()`` puts
it, and a tiny checkpoint in the published OCR-2 layout (original tensor names) reads token for
token as its converted twin.
"""

import io
import json

import pytest
from PIL import Image

from ocr_runner.engines import create_engine
from ocr_runner.engines.deepseek_backends import Ocr2Backend
from ocr_runner.models import deepseek_ocr2_published as published
from ocr_runner.models.deepseek_v1.loading import CheckpointMismatch
from ocr_runner.modes import ResolutionMode
from ocr_runner.tasks import PROMPTS, Task
from tests.genuine import OCR2, TOKENIZER, V1, genuine, genuine_config, published_folder
from tests.helpers import engine_page
from tests.tiny_published_ocr2 import build_published_twin

pytestmark = pytest.mark.engine

BOS, IMAGE = 0, 128815


def _parameters_on_meta(build) -> int:
    import torch

    with torch.device("meta"):
        model = build()
    return sum(p.numel() for p in model.parameters())


def test_fullsize_ocr2_from_the_genuine_config_has_the_published_size():
    from transformers import DeepseekOcr2ForConditionalGeneration

    config = published.ocr2_config(genuine_config(OCR2))
    assert config.image_token_id == IMAGE
    assert (config.text_config.vocab_size, config.text_config.hidden_size, config.text_config.n_routed_experts) == (
        129280, 1280, 64)
    assert config.text_config.mlp_layer_types == ["dense"] + ["sparse"] * 11
    encoder, sam = config.vision_config.encoder_config, config.vision_config.sam_config
    assert (encoder.hidden_size, encoder.num_hidden_layers, encoder.num_key_value_heads) == (896, 24, 2)
    assert sam.downsample_channels == [512, 896]  # the original's net_3 outputs the encoder width
    count = _parameters_on_meta(lambda: DeepseekOcr2ForConditionalGeneration(config))
    assert 3.3e9 < count < 3.4e9, count  # 3,389,119,360 measured


def test_fullsize_v1_from_the_genuine_config_has_the_published_size():
    from ocr_runner.models.deepseek_v1.config import DeepseekV1Config
    from ocr_runner.models.deepseek_v1.modeling import DeepseekOcrV1ForCausalLM

    config = DeepseekV1Config.from_dict(genuine_config(V1))
    count = _parameters_on_meta(lambda: DeepseekOcrV1ForCausalLM(config))
    assert 3.3e9 < count < 3.4e9, count  # 3,335,504,128 measured


def test_the_genuine_ocr2_config_is_not_read_as_v1():
    from ocr_runner.models.deepseek_v1.config import DeepseekV1Config

    with pytest.raises(ValueError, match="not a DeepSeek-OCR v1 config: DeepSeek-OCR-2, as published"):
        DeepseekV1Config.from_dict(genuine_config(OCR2))


# -- the tokenizer as published ----------------------------------------------------------------


@pytest.fixture(scope="module")
def ocr2_files(tmp_path_factory):
    return published_folder(OCR2, tmp_path_factory.mktemp("published-ocr2-files"))


@pytest.fixture(scope="module")
def tokenizer(ocr2_files):
    return published.load_tokenizer(ocr2_files)


def test_the_stand_in_tokenizer_gives_the_published_ids(tokenizer):
    vectors = json.loads(genuine(TOKENIZER, "id_vectors.json").read_text(encoding="utf-8"))
    for token, token_id in vectors["special_ids"].items():
        assert tokenizer.convert_tokens_to_ids(token) == token_id, token
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id) == (0, 1, 2)
    for text, ids in vectors["vectors"]:
        assert tokenizer.encode(text, add_special_tokens=False) == ids, text


def _text_ids(tokenizer, prompt: str) -> list[int]:
    return tokenizer.encode(prompt.removeprefix("<image>"), add_special_tokens=False)


def test_ocr2_prompts_put_bos_first_then_the_image_then_the_text(tokenizer, ocr2_files):
    # The original infer(): BOS 0, the image tokens, the text after <image> (encoded without specials).
    processor = published.load_processor(ocr2_files, tokenizer, genuine_config(OCR2))
    assert (processor.patch_size, processor.downsample_ratio, processor.image_processor.tile_size) == (16, 4, 768)
    for task in (Task.OCR, Task.MARKDOWN):
        prompt = PROMPTS[task]
        inputs = processor(images=[Image.new("RGB", (700, 500), "white")], text=[prompt], return_tensors="pt",
                           crop_to_patches=False, size={"height": 768, "width": 768}, tile_size=768)
        ids = inputs["input_ids"][0].tolist()
        assert ids == [BOS] + [IMAGE] * 145 + _text_ids(tokenizer, prompt), task


def test_v1_prompts_put_bos_first_then_the_image_then_the_text(tmp_path):
    from ocr_runner.models.deepseek_v1.processing import V1Processor

    tokenizer = published.load_tokenizer(published_folder(V1, tmp_path / "v1"))
    processor = V1Processor(tokenizer, IMAGE, 16, 1.0)
    prompt = PROMPTS[Task.MARKDOWN]
    ids = processor([Image.new("RGB", (600, 400), "white")], [prompt], 640, 640, False)["input_ids"][0].tolist()
    image_tokens = ids.count(IMAGE)
    assert image_tokens > 0
    assert ids == [BOS] + [IMAGE] * image_tokens + _text_ids(tokenizer, prompt)


# -- the published OCR-2 layout, tiny, against its converted twin ------------------------------


@pytest.fixture(scope="module")
def twins(tiny_checkpoint, tiny_settings, tmp_path_factory):
    folder = build_published_twin(tiny_checkpoint, tmp_path_factory.mktemp("tiny-published-ocr2"))
    settings = tiny_settings.model_copy(update={"batching": "static", "max_new_tokens": 16, "min_new_tokens": 16})
    converted = create_engine(settings)
    original = create_engine(settings.model_copy(update={"model_name": str(folder)}))
    return folder, converted, original


def test_the_published_layout_loads_natively(twins):
    import torch

    _, converted, original = twins
    assert isinstance(original.backend, Ocr2Backend) and original.backend.family == "DeepSeek-OCR-2 (as published)"
    assert original.health().model_loaded
    mine, theirs = original.net.state_dict(), converted.net.state_dict()
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)


def test_the_published_layout_reads_token_for_token_as_its_converted_twin(twins, images):
    _, converted, original = twins
    modes = [{}, {"crop_mode": False, "base_size": 768, "image_size": 768},
             {"crop_mode": False, "base_size": 1024, "image_size": 1024}]
    pages = [engine_page(image, Task.OCR, **mode) for image in images[2:] for mode in modes]  # 3 and 6 tiles
    for page in pages:
        mode, image = converted.mode(page), Image.open(io.BytesIO(page.image)).convert("RGB")
        mine, theirs = (e.backend.prepare_inputs([image], [page.prompt], mode) for e in (original, converted))
        assert mine["input_ids"].tolist() == theirs["input_ids"].tolist()
        assert mine["pixel_values"].equal(theirs["pixel_values"])
    want = converted.run_batch(pages)
    got = original.run_batch(pages)
    assert [r.error for r in got] == [None] * len(pages)
    assert [(r.text, r.output_tokens) for r in got] == [(r.text, r.output_tokens) for r in want]
    assert original.supported_modes == converted.supported_modes == (
        ResolutionMode(1024, 768, True), ResolutionMode(768, 768, False), ResolutionMode(1024, 1024, False))


def test_a_published_checkpoint_missing_a_tensor_is_refused(twins, tmp_path):
    import shutil

    from safetensors import safe_open
    from safetensors.torch import save_file

    folder = twins[0]
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    with safe_open(str(folder / "model.safetensors"), framework="pt") as handle:
        tensors = {k: handle.get_tensor(k) for k in handle.keys() if k != "model.qwen2_model.query_768.weight"}  # noqa: SIM118
    save_file(tensors, str(broken / "model.safetensors"), metadata={"format": "pt"})
    raw = published.read_json(broken / "config.json")
    with pytest.raises(CheckpointMismatch, match="missing keys: .*query_768"):
        published.load_model(broken, published.ocr2_config(raw, 3), None, "cpu")
