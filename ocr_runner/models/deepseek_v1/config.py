"""The original DeepSeek-OCR ``config.json``, read as it is on the model hub.

Its layout: ``model_type`` "deepseek_vl_v2", decoder settings under ``language_config``,
``projector_config`` and ``vision_config.width`` with one entry per tower
(``sam_vit_b``, ``clip-l-14-224``). The original code hard-codes several vision sizes;
those are read here with the original values as defaults, so a scaled-down test
checkpoint can state its own (``patch_size``, ``window_size``, ``out_chans``,
``image_size`` under ``sam_vit_b``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SAM_KEY = "sam_vit_b"
CLIP_KEY = "clip-l-14-224"
# Pixel sizes of the full model: a checkpoint whose SAM patch is smaller is a scaled copy.
NOMINAL_SAM_PATCH = 16


def read_checkpoint_config(model_name: str) -> dict[str, Any] | None:
    """The checkpoint's config.json: a local folder's, the hub cache's, else fetched (the file alone) from the hub.

    None when there is none to read (e.g. offline and not cached); the engine's loader then reports it.
    """
    folder = Path(model_name)
    if folder.is_dir():
        path = folder / "config.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    if folder.is_absolute() or model_name.startswith("."):
        return None  # a path that does not exist is not a hub id
    try:
        from huggingface_hub import hf_hub_download, try_to_load_from_cache

        cached = try_to_load_from_cache(model_name, "config.json")
        path = Path(cached) if isinstance(cached, str) else Path(hf_hub_download(model_name, "config.json"))
        return json.loads(path.read_text(encoding="utf-8"))
    except Exception:  # noqa: BLE001 - unreachable hub, unknown id: "cannot tell", not an error here
        return None


def is_v1_config(config: dict[str, Any] | None) -> bool:
    """DeepSeek-OCR v1 as published (``deepseek_vl_v2`` with v1's towers; see ``models.layouts``)."""
    from ..layouts import Layout, UnsupportedCheckpoint, detect_layout

    if not config:
        return False
    try:
        return detect_layout(config, "config") is Layout.V1
    except UnsupportedCheckpoint:
        return False


@dataclass(frozen=True)
class DeepseekV1Config:
    """Everything needed to build the v1 model, as transformers sub-configs plus the projector and token settings."""

    text: Any  # DeepseekOcr2TextConfig
    sam: Any  # DeepseekOcr2SamVisionConfig
    clip: Any  # CLIPVisionConfig
    projector_input_dim: int
    raw: dict[str, Any]

    @property
    def hidden_size(self) -> int:
        return int(self.text.hidden_size)

    @property
    def sam_patch_size(self) -> int:
        return int(self.sam.patch_size)

    @property
    def scale(self) -> float:
        """Full-model pixels per checkpoint pixel (1.0 for the real checkpoint)."""
        return NOMINAL_SAM_PATCH / self.sam_patch_size

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> DeepseekV1Config:
        from transformers import CLIPVisionConfig
        from transformers.models.deepseek_ocr2.configuration_deepseek_ocr2 import DeepseekOcr2SamVisionConfig

        from ..layouts import Layout, detect_layout

        layout = detect_layout(config, str(config.get("_name_or_path") or "checkpoint"))
        if layout is not Layout.V1:
            raise ValueError(f"not a DeepSeek-OCR v1 config: {layout.value}")
        text = decoder_config(config.get("language_config") or config)

        vision = config.get("vision_config") or {}
        towers = vision.get("width") or {}
        sam = towers.get(SAM_KEY, {})
        clip = towers.get(CLIP_KEY, {})
        sam_width = int(sam.get("width", 768))
        sam_config = DeepseekOcr2SamVisionConfig(
            hidden_size=sam_width,
            num_hidden_layers=int(sam.get("layers", 12)),
            num_attention_heads=int(sam.get("heads", 12)),
            image_size=int(sam.get("image_size", vision.get("image_size", 1024))),
            patch_size=int(sam.get("patch_size", NOMINAL_SAM_PATCH)),
            window_size=int(sam.get("window_size", 14)),
            global_attn_indexes=list(sam.get("global_attn_indexes", [2, 5, 8, 11])),
            output_channels=int(sam.get("out_chans", 256)),
            downsample_channels=list(sam.get("downsample_channels", [512, 1024])),
            mlp_dim=int(sam_width * 4),
            layer_norm_eps=1e-6,
            initializer_range=0.02,
        )
        clip_width = int(clip.get("width", 1024))
        clip_config = CLIPVisionConfig(
            hidden_size=clip_width,
            intermediate_size=int(clip.get("ffn_hidden_size", 4 * clip_width)),
            num_hidden_layers=int(clip.get("layers", 24)),
            num_attention_heads=int(clip.get("heads", 16)),
            image_size=int(clip.get("image_size", 224)),
            patch_size=int(clip.get("patch_size", 14)),
            hidden_act="quick_gelu",
            layer_norm_eps=1e-5,
        )
        if sam_config.downsample_channels[-1] != clip_width:
            raise ValueError(
                f"SAM's last downsample channels ({sam_config.downsample_channels[-1]}) must equal the CLIP width "
                f"({clip_width}): CLIP takes the SAM feature map as its patch embeddings"
            )
        projector = config.get("projector_config") or {}
        if projector.get("projector_type", "linear") != "linear":
            raise ValueError(f"projector_type {projector.get('projector_type')!r} is not supported (v1 uses 'linear')")
        input_dim = int(projector.get("input_dim", clip_width + sam_config.downsample_channels[-1]))
        if input_dim != clip_width + sam_config.downsample_channels[-1]:
            raise ValueError(f"projector input_dim {input_dim} != CLIP width + SAM channels")
        if int(projector.get("n_embed", text.hidden_size)) != text.hidden_size:
            raise ValueError("projector n_embed must equal the decoder hidden size")
        if config.get("tile_tag", "2D") != "2D":
            raise ValueError(f"tile_tag {config.get('tile_tag')!r} is not supported (v1 uses '2D')")
        return cls(text=text, sam=sam_config, clip=clip_config, projector_input_dim=input_dim, raw=config)


def decoder_config(language: dict[str, Any]):
    """The DeepSeek-V2-style MoE decoder of a published checkpoint's ``language_config`` (v1 and OCR-2 share
    it) as transformers' ``DeepseekOcr2TextConfig``; settings that are not part of DeepSeek-OCR are refused."""
    from transformers.models.deepseek_ocr2.configuration_deepseek_ocr2 import DeepseekOcr2TextConfig

    if language.get("use_mla") or language.get("kv_lora_rank"):
        raise ValueError("DeepSeek-OCR checkpoints with multi-head latent attention (use_mla) are not supported")
    scoring = language.get("scoring_func", "softmax")
    if language.get("norm_topk_prob") or language.get("rope_scaling") or scoring != "softmax":
        raise ValueError("norm_topk_prob, rope_scaling and non-softmax expert scoring are not part of DeepSeek-OCR")
    return DeepseekOcr2TextConfig(**_text_kwargs(language))


def _text_kwargs(language: dict[str, Any]) -> dict[str, Any]:
    layers = int(language.get("num_hidden_layers", 12))
    first_dense = int(language.get("first_k_dense_replace", 1))
    moe_every = int(language.get("moe_layer_freq", 1))
    routed = language.get("n_routed_experts")
    mlp_types = [
        "sparse" if routed and i >= first_dense and i % moe_every == 0 else "dense" for i in range(layers)
    ]
    heads = int(language.get("num_attention_heads", 10))
    return {
        "vocab_size": int(language.get("vocab_size", 129280)),
        "hidden_size": int(language.get("hidden_size", 1280)),
        "intermediate_size": int(language.get("intermediate_size", 6848)),
        "moe_intermediate_size": int(language.get("moe_intermediate_size", 896)),
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": int(language.get("num_key_value_heads") or heads),
        "n_routed_experts": int(routed or 1),
        "n_shared_experts": int(language.get("n_shared_experts") or 0),
        "num_experts_per_tok": int(language.get("num_experts_per_tok") or 1),
        "routed_scaling_factor": float(language.get("routed_scaling_factor", 1.0)),
        "topk_method": language.get("topk_method", "greedy"),
        "n_group": int(language.get("n_group") or 1),
        "topk_group": int(language.get("topk_group") or 1),
        "mlp_layer_types": mlp_types,
        "max_position_embeddings": int(language.get("max_position_embeddings", 8192)),
        "rms_norm_eps": float(language.get("rms_norm_eps", 1e-6)),
        "rope_parameters": {"rope_type": "default", "rope_theta": float(language.get("rope_theta", 10000.0))},
        "attention_bias": bool(language.get("attention_bias", False)),
        "bos_token_id": language.get("bos_token_id", 0),
        "eos_token_id": language.get("eos_token_id", 1),
        "pad_token_id": language.get("pad_token_id"),
        "tie_word_embeddings": False,
    }
