"""DeepSeek-OCR (v1) on a tiny random checkpoint in the ORIGINAL layout, loaded by the production code.

Logit parity with the original implementation is checked outside the repository (see the
README, "Supported checkpoints"); these tests pin the plumbing: the checkpoint is found to
be v1 from its config, every original tensor lands where it should, the image-token
layout matches the original's formula in every mode, and batching changes nothing.
"""

import io
import json

import pytest
from PIL import Image
from safetensors import safe_open

from ocr_runner.engines import EnginePage, create_engine
from ocr_runner.engines.deepseek import DeepseekEngine
from ocr_runner.engines.deepseek_backends import V1Backend
from ocr_runner.models.deepseek_v1 import is_v1_config, read_checkpoint_config
from ocr_runner.models.deepseek_v1.loading import CheckpointMismatch
from ocr_runner.models.deepseek_v1.processing import tile_grid
from ocr_runner.tasks import PROMPTS, Task
from tests.helpers import engine_page as job
from tests.helpers import run_with_settings
from tests.tiny_v1_checkpoint import build_tiny_v1_checkpoint

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def engine(tiny_v1_settings) -> DeepseekEngine:
    engine = create_engine(tiny_v1_settings)
    assert isinstance(engine, DeepseekEngine)
    return engine


def test_factory_selects_v1_from_the_checkpoint_config(engine, tiny_v1_checkpoint, tmp_path):
    assert isinstance(engine.backend, V1Backend)
    assert engine.health().model_loaded and engine.health().engine == "deepseek"
    engine.warmup()  # a tiled batch of two at the engine's own tile size
    assert is_v1_config(read_checkpoint_config(str(tiny_v1_checkpoint)))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "deepseek_ocr2", "text_config": {}}))
    assert not is_v1_config(read_checkpoint_config(str(tmp_path)))
    assert read_checkpoint_config(str(tmp_path / "absent")) is None


def test_every_original_tensor_lands_in_its_parameter(engine, tiny_v1_checkpoint):
    import torch

    net = engine.net
    params = dict(net.named_parameters())
    inter = net.v1_config.text.moe_intermediate_size
    with safe_open(str(tiny_v1_checkpoint / "model.safetensors"), framework="pt") as f:
        qkv = f.get_tensor("model.vision_model.transformer.layers.1.self_attn.qkv_proj.weight").float()
        width = qkv.shape[0] // 3
        for i, name in enumerate("qkv"):
            got = params[f"vision.vision_model.encoder.layers.1.self_attn.{name}_proj.weight"]
            assert torch.equal(got, qkv[i * width : (i + 1) * width])
        fused = params["language_model.layers.1.mlp.experts.gate_up_proj"]
        assert torch.equal(fused[3, :inter], f.get_tensor("model.layers.1.mlp.experts.3.gate_proj.weight").float())
        assert torch.equal(fused[3, inter:], f.get_tensor("model.layers.1.mlp.experts.3.up_proj.weight").float())
        down = params["language_model.layers.1.mlp.experts.down_proj"]
        assert torch.equal(down[2], f.get_tensor("model.layers.1.mlp.experts.2.down_proj.weight").float())
        for original, mine in [
            ("model.view_seperator", "view_separator"),
            ("model.image_newline", "image_newline"),
            ("model.sam_model.net_3.weight", "vision.sam_model.proj.conv2.weight"),
            ("model.sam_model.neck.1.bias", "vision.sam_model.neck.layer_norm1.bias"),
            ("model.sam_model.blocks.1.attn.rel_pos_w", "vision.sam_model.layers.1.attn.rel_pos_w"),
            ("model.projector.layers.weight", "vision.projector.weight"),
            ("lm_head.weight", "lm_head.weight"),
        ]:
            assert torch.equal(params[mine], f.get_tensor(original).float()), original
    assert not torch.equal(params["lm_head.weight"], params["language_model.embed_tokens.weight"])  # untied


@pytest.mark.parametrize(
    ("drop", "extra", "message"),
    [
        (("model.layers.1.mlp.experts.2.up_proj.weight",), None,
         "1 missing: model.layers.1.mlp.experts.2.up_proj.weight"),
        (("model.sam_model.neck.0.weight",), None, "1 missing: model.sam_model.neck.0.weight"),
        ((), {"model.layers.7.self_attn.q_proj.weight": (64, 64)},
         "1 unexpected: model.layers.7.self_attn.q_proj.weight"),
        (("model.vision_model.transformer.layers.0.self_attn.qkv_proj.bias",), None,
         "1 missing: model.vision_model.transformer.layers.0.self_attn.qkv_proj.bias"),
        ((), {"model.mystery": (3,)}, "1 unexpected: model.mystery"),
        ((), {"model.projector.layers.bias": (65,)}, "wrong shape: model.projector.layers.bias [65]"),
    ],
)
def test_a_checkpoint_that_does_not_fit_is_refused(tiny_v1_settings, tmp_path, drop, extra, message):
    import torch

    extra = {name: torch.zeros(shape, dtype=torch.bfloat16) for name, shape in (extra or {}).items()}
    path = build_tiny_v1_checkpoint(tmp_path / "broken", drop=drop, extra=extra)
    with pytest.raises(CheckpointMismatch, match="does not match the DeepSeek-OCR v1 architecture") as error:
        create_engine(tiny_v1_settings.model_copy(update={"model_name": str(path)}))
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("mode", "size", "expected"),
    [
        # Original formula: q = ceil(view / 16 / 4); q * (q + 1) + 1, plus (rows * 10) * (cols * 10 + 1) for 640 tiles.
        ((512, 512, False), (1200, 800), 8 * 9 + 1),
        ((640, 640, False), (1200, 800), 10 * 11 + 1),
        ((1024, 1024, False), (1200, 800), 16 * 17 + 1),
        ((1280, 1280, False), (1200, 800), 20 * 21 + 1),
        ((1024, 640, True), (100, 80), 16 * 17 + 1),  # fits one tile: global view only
        ((1024, 640, True), (1200, 800), 16 * 17 + 1 + (2 * 10) * (3 * 10 + 1)),  # 3 x 2 tiles
        ((1024, 640, True), (300, 900), 16 * 17 + 1 + (3 * 10) * (1 * 10 + 1)),  # 1 x 3 tiles
    ],
)
def test_image_tokens_follow_the_original_layout(engine, mode, size, expected):
    processor = engine.backend.processor
    inputs = processor([Image.new("RGB", size, "white")], [PROMPTS[Task.OCR]], *mode)
    ids = inputs["input_ids"][0].tolist()
    image_id = engine.net.image_token_id
    assert ids.count(image_id) == expected
    # bos + the image block + "\nFree OCR.": no role tags, as the original.
    tokenizer = engine.backend.tokenizer
    text = tokenizer.encode("\nFree OCR.", add_special_tokens=False)
    assert ids == [tokenizer.bos_token_id, *[image_id] * expected, *text]


def test_tile_grid_picks_the_closest_aspect_ratio():
    assert tile_grid(1200, 800, 160) == (3, 2)
    assert tile_grid(300, 900, 160) == (1, 3)
    assert tile_grid(600, 300, 160) == (4, 2)  # 2:1 both; the larger grid because the image fills it
    assert tile_grid(400, 200, 160) == (2, 1)  # 2:1 both; the image is too small for 4 x 2
    assert tile_grid(2000, 100, 640) == (9, 1)  # clamped to 9 tiles


def test_batched_equals_single_across_tile_counts(engine, images):
    jobs = [job(image) for image in images]
    batched = engine.run_batch(jobs)
    singles = [engine.run_batch([j])[0] for j in jobs]
    assert [r.error for r in batched] == [None] * len(jobs)
    assert [r.output_tokens for r in batched] == [6] * len(jobs)
    assert [r.text for r in batched] == [r.text for r in singles]
    assert len({r.text for r in batched}) > 1  # the images are seen, not mixed up


@pytest.mark.parametrize(
    ("requested", "effective"),
    [
        ((1024, 640, True), (1024, 640, True)),
        ((1280, 1280, True), (1024, 640, True)),
        ((512, 512, False), (512, 512, False)),
        ((640, 640, False), (640, 640, False)),
        ((768, 768, False), (640, 640, False)),
        ((1024, 1024, False), (1024, 1024, False)),
        ((1280, 1280, False), (1280, 1280, False)),
    ],
)
def test_every_mode_runs_and_snaps(engine, images, requested, effective):
    base, tile, crop = requested
    [result] = engine.run_batch([job(images[3], base_size=base, image_size=tile, crop_mode=crop)])
    assert result.error is None and result.output_tokens == 6
    assert (result.effective_base_size, result.effective_image_size, result.effective_crop_mode) == effective


def test_mixed_modes_and_a_bad_item_in_one_batch(engine, images):
    jobs = [
        job(images[1], Task.MARKDOWN),
        job(images[2], Task.LOCATE, base_size=512, image_size=512, crop_mode=False),
        EnginePage(image=images[0], task=Task.OCR, prompt="<image><image>\nFree OCR."),  # two images for one
        job(images[3], Task.FIGURE, base_size=1280, image_size=1280, crop_mode=False),
    ]
    results = engine.run_batch(jobs)
    assert results[2].error and "<image>" in results[2].error and results[2].error_code == "unprocessable"
    good = [0, 1, 3]
    assert [results[i].text for i in good] == [engine.run_batch([jobs[i]])[0].text for i in good]


def test_images_encoded_ahead_give_the_same_tokens(engine, images):
    """Callers may encode a few pages at a time and pass the features in (as for DeepSeek-OCR-2)."""
    import torch
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    pages = [Image.open(io.BytesIO(image)) for image in images]
    inputs = engine.backend.prepare_inputs(pages, [PROMPTS[Task.OCR]] * len(pages), engine.supported_modes[0])
    net, greedy = engine.net, {"max_new_tokens": 4, "min_new_tokens": 4, "do_sample": False}
    counts, grids = inputs["num_local_patches"], inputs["patches_grid"]
    features = []
    with torch.inference_mode():
        direct = net.generate(**inputs, **greedy)
        for start in (0, 2):  # two pages at a time
            first, tiles = sum(counts[:start]), sum(counts[start : start + 2])
            local = inputs["pixel_values_local"][first : first + tiles] if tiles else None
            pixels = inputs["pixel_values"][start : start + 2]
            encoded = net.get_image_features(pixels, local, counts[start : start + 2], grids[start : start + 2])
            features += encoded.pooler_output
        dropped = ("pixel_values", "pixel_values_local", "num_local_patches")
        ahead = {k: v for k, v in inputs.items() if k not in dropped}
        ahead["mm_encoder_outputs"] = {"image": BaseModelOutputWithPooling(pooler_output=features)}
        from_features = net.generate(**ahead, **greedy)
    assert torch.equal(direct, from_features)


def test_threaded_preprocessing_and_chunked_vision_do_not_change_tokens(engine, images):
    jobs = [job(images[i % len(images)]) for i in range(9)]
    whole = run_with_settings(engine, jobs, preprocess_threads=1, vision_batch_pages=64)
    split = run_with_settings(engine, jobs, preprocess_threads=2, vision_batch_pages=2)
    assert [r.error for r in split] == [None] * len(jobs)
    assert [(r.text, r.output_tokens) for r in split] == [(r.text, r.output_tokens) for r in whole]
