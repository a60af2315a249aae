"""DeepSeek-OCR-2 as published (``deepseek-ai/DeepSeek-OCR-2``), loaded natively into transformers' classes.

The published checkpoint is written for its own remote code: config.json in the DeepSeek-VL2
layout (``model_type`` "deepseek_vl_v2", ``language_config``, ``vision_config.width`` with
``sam_vit_b`` and ``qwen2-0-5b``), processor_config.json for a ``DeepseekVLV2Processor``, a
``LlamaTokenizerFast`` tokenizer. Here:

- config.json is read into ``DeepseekOcr2Config``. The original code hard-codes most vision sizes
  (deepencoderv2.py: SAM ViT-B whose last convolution outputs the encoder width, a 24-layer
  Qwen2-0.5B-sized encoder with 14 heads, 2 KV heads, MLP 4864, rope theta 1e6); those are the
  defaults, and a scaled-down test checkpoint states its own under the same keys. The config's
  ``sam_vit_b.downsample_channels`` [512, 1024] is a leftover the original ignores (its
  ``net_3`` outputs 896): only its first entry is used.
- the weights keep their original names: transformers' ``conversion_mapping`` rules for
  ``deepseek_ocr2`` rename them (``sam_model.blocks.N.norm1.`` -> ``vision_tower.sam_encoder...``) and
  fuse the routed experts at load time; they cover every tensor the published index lists, and
  a tensor left over or a parameter left unfilled refuses the load.
- the processor is transformers' ``DeepseekOcr2Processor`` with processor_config.json's patch size,
  downsample ratio, mean and std; the tokenizer is tokenizer.json as published (BOS 0 first, as the
  original ``infer()`` places it).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SAM_KEY = "sam_vit_b"
ENCODER_KEY = "qwen2-0-5b"
IMAGE_TOKEN = "<image>"
# The original's tile (768) to global view (1024): a checkpoint built smaller keeps the ratio.
TILE_PER_GLOBAL = 768 / 1024
# What deepencoderv2.py hard-codes for the encoder (the config only says its width).
ENCODER_DEFAULTS = {"dim": 896, "layers": 24, "heads": 14, "kv_heads": 2, "intermediate_size": 4864,
                    "rope_theta": 1_000_000.0}


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def ocr2_config(raw: dict[str, Any], image_token_id: int = 128815):
    """transformers' ``DeepseekOcr2Config`` for a published OCR-2 config.json."""
    from transformers import DeepseekOcr2Config

    from .deepseek_v1.config import decoder_config

    text = decoder_config(raw.get("language_config") or raw)
    vision = raw.get("vision_config") or {}
    towers = vision.get("width") or {}
    sam, encoder = towers.get(SAM_KEY, {}), {**ENCODER_DEFAULTS, **towers.get(ENCODER_KEY, {})}
    width = int(encoder["dim"])
    projector = raw.get("projector_config") or {}
    if projector.get("projector_type", "linear") != "linear":
        raise ValueError(f"projector_type {projector.get('projector_type')!r} is not DeepSeek-OCR-2's ('linear')")
    if int(projector.get("input_dim", width)) != width:
        raise ValueError(f"projector input_dim {projector.get('input_dim')} != the vision encoder's width {width}")
    if int(projector.get("n_embed", text.hidden_size)) != text.hidden_size:
        raise ValueError("projector n_embed must equal the decoder hidden size")
    sam_width = int(sam.get("width", 768))
    sam_config = {
        "hidden_size": sam_width,
        "num_hidden_layers": int(sam.get("layers", 12)),
        "num_attention_heads": int(sam.get("heads", 12)),
        "image_size": int(sam.get("image_size", vision.get("image_size", 1024))),
        "patch_size": int(sam.get("patch_size", 16)),
        "window_size": int(sam.get("window_size", 14)),
        "global_attn_indexes": list(sam.get("global_attn_indexes", [2, 5, 8, 11])),
        "output_channels": int(sam.get("out_chans", 256)),
        "downsample_channels": [int((sam.get("downsample_channels") or [512])[0]), width],
        "mlp_dim": sam_width * 4,
        "layer_norm_eps": 1e-6,
        "initializer_range": 0.02,
    }
    encoder_config = {
        "hidden_size": width,
        "intermediate_size": int(encoder["intermediate_size"]),
        "num_hidden_layers": int(encoder["layers"]),
        "num_attention_heads": int(encoder["heads"]),
        "num_key_value_heads": int(encoder["kv_heads"]),
        "rope_parameters": {"rope_type": "default", "rope_theta": float(encoder["rope_theta"])},
        "rms_norm_eps": 1e-6,
    }
    return DeepseekOcr2Config(
        image_token_id=image_token_id,
        text_config=text.to_dict(),
        vision_config={"sam_config": sam_config, "encoder_config": encoder_config},
        tie_word_embeddings=False,
    )


def load_tokenizer(folder: Path):
    """tokenizer.json as published (its tokenizer_config.json names a transformers-4 class)."""
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast.from_pretrained(folder)
    image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    if not isinstance(image_token_id, int) or image_token_id == tokenizer.unk_token_id:
        raise ValueError(f"the tokenizer in {folder} has no {IMAGE_TOKEN} token")
    return tokenizer


def load_processor(folder: Path, tokenizer, raw: dict[str, Any]):
    """``DeepseekOcr2Processor`` with processor_config.json's settings (global view from config.json)."""
    from transformers import DeepseekOcr2ImageProcessorPil, DeepseekOcr2Processor

    settings = read_json(folder / "processor_config.json")
    sam = ((raw.get("vision_config") or {}).get("width") or {}).get(SAM_KEY, {})
    patch = int(settings.get("patch_size", 16))
    if patch != int(sam.get("patch_size", 16)):
        raise ValueError(f"processor patch_size {patch} != SAM patch size {sam.get('patch_size', 16)}")
    size = int((raw.get("vision_config") or {}).get("image_size", 1024))
    image_processor = DeepseekOcr2ImageProcessorPil(
        size={"height": size, "width": size},
        tile_size=round(size * TILE_PER_GLOBAL),
        image_mean=list(settings.get("image_mean", [0.5, 0.5, 0.5])),
        image_std=list(settings.get("image_std", [0.5, 0.5, 0.5])),
        do_normalize=bool(settings.get("normalize", True)),
    )
    return DeepseekOcr2Processor(
        image_processor=image_processor, tokenizer=tokenizer, patch_size=patch,
        downsample_ratio=int(settings.get("downsample_ratio", 4)),
    )


def load_model(folder: Path, config, dtype, device: str, attn_implementation: Any = "sdpa"):
    """The model from the original tensors, renamed by transformers' conversion mapping; strict."""
    from transformers import DeepseekOcr2ForConditionalGeneration

    from .deepseek_v1.loading import CheckpointMismatch

    model, info = DeepseekOcr2ForConditionalGeneration.from_pretrained(
        folder, config=config, dtype=dtype, attn_implementation=attn_implementation, output_loading_info=True,
    )
    problems = {kind: sorted(info.get(kind) or ()) for kind in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if any(problems.values()):
        detail = "; ".join(f"{len(v)} {k.replace('_', ' ')}: {', '.join(map(str, v[:6]))}"
                           for k, v in problems.items() if v)
        raise CheckpointMismatch(f"{folder}: weights do not match DeepSeek-OCR-2 as published ({detail})")
    return model.to(device)
