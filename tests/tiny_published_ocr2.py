"""A tiny random DeepSeek-OCR-2 checkpoint in the layout ``deepseek-ai/DeepSeek-OCR-2`` is published in.

Made from the tiny converted checkpoint (``tiny_checkpoint``), so the two are twins: the same
weights under the ORIGINAL tensor names, a config.json in the published DeepSeek-VL2 layout
(``model_type`` "deepseek_vl_v2", ``language_config``, ``vision_config.width`` with ``sam_vit_b``
and ``qwen2-0-5b``) stating the tiny sizes the original code hard-codes, and a processor_config.json
for ``DeepseekVLV2Processor``. The original names are listed here from the published checkpoint's
index, independently of any mapping, so a renaming mistake fails the tests instead of being mirrored.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

TEXT = {"hidden_size": 64, "intermediate_size": 128, "moe_intermediate_size": 32, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 4, "n_routed_experts": 4, "n_shared_experts": 1,
        "num_experts_per_tok": 2, "first_k_dense_replace": 1, "max_position_embeddings": 2048}
SAM = {"width": 32, "layers": 2, "heads": 2, "global_attn_indexes": [], "downsample_channels": [32, 64],
       "patch_size": 4, "window_size": 4, "out_chans": 16}
ENCODER = {"dim": 64, "layers": 2, "heads": 4, "kv_heads": 2, "intermediate_size": 128, "rope_theta": 10000.0}


def published_config(vocab_size: int, bos: int, eos: int) -> dict:
    language = {
        "architectures": ["DeepseekV2ForCausalLM"], "vocab_size": vocab_size, **TEXT, "topk_method": "greedy",
        "n_group": 1, "topk_group": 1, "kv_lora_rank": None, "q_lora_rank": None, "qk_nope_head_dim": 0,
        "qk_rope_head_dim": 0, "v_head_dim": 0, "use_mla": False, "lm_head": True, "rm_head": False,
        "bos_token_id": bos, "eos_token_id": eos, "torch_dtype": "bfloat16",
    }
    return {
        "_name_or_path": "tiny-deepseek-ocr-2-published",
        "candidate_resolutions": [[256, 256]],
        "global_view_pos": "head",
        "architectures": ["DeepseekOCR2ForCausalLM"],
        "language_config": language,
        "model_type": "deepseek_vl_v2",
        "projector_config": {"input_dim": ENCODER["dim"], "model_type": "mlp_projector",
                             "n_embed": TEXT["hidden_size"], "projector_type": "linear"},
        "tile_tag": "2D",
        "torch_dtype": "bfloat16",
        "transformers_version": "4.46.3",
        "vision_config": {"image_size": 256, "mlp_ratio": 3.7362, "model_name": "deepencoderv2", "model_type": "vision",
                          "width": {"qwen2-0-5b": ENCODER, "sam_vit_b": SAM}},
        **{k: v for k, v in language.items() if k != "architectures"},
    }


PROCESSOR_CONFIG = {
    "add_special_token": False, "candidate_resolutions": [[256, 256]], "downsample_ratio": 4, "ignore_id": -100,
    "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "image_token": "<image>", "mask_prompt": False,
    "normalize": True, "pad_token": "<｜▁pad▁｜>", "patch_size": 4, "processor_class": "DeepseekVLV2Processor",
    "sft_format": "deepseek",
}


def original_names() -> set[str]:
    """Every tensor name of the published checkpoint (its model.safetensors.index.json), at the tiny sizes."""
    names = {"model.sam_model.pos_embed", "model.sam_model.patch_embed.proj.weight",
             "model.sam_model.patch_embed.proj.bias"}
    for i in range(SAM["layers"]):
        names |= {f"model.sam_model.blocks.{i}.{n}" for n in (
            "norm1.weight", "norm1.bias", "attn.rel_pos_h", "attn.rel_pos_w", "attn.qkv.weight", "attn.qkv.bias",
            "attn.proj.weight", "attn.proj.bias", "norm2.weight", "norm2.bias", "mlp.lin1.weight", "mlp.lin1.bias",
            "mlp.lin2.weight", "mlp.lin2.bias")}
    names |= {f"model.sam_model.{n}" for n in (
        "neck.0.weight", "neck.1.weight", "neck.1.bias", "neck.2.weight", "neck.3.weight", "neck.3.bias",
        "net_2.weight", "net_3.weight")}
    for i in range(ENCODER["layers"]):
        names |= {f"model.qwen2_model.model.model.layers.{i}.{n}" for n in (
            "self_attn.q_proj.weight", "self_attn.q_proj.bias", "self_attn.k_proj.weight", "self_attn.k_proj.bias",
            "self_attn.v_proj.weight", "self_attn.v_proj.bias", "self_attn.o_proj.weight", "mlp.gate_proj.weight",
            "mlp.up_proj.weight", "mlp.down_proj.weight", "input_layernorm.weight", "post_attention_layernorm.weight")}
    names |= {"model.qwen2_model.model.model.norm.weight", "model.qwen2_model.query_768.weight",
              "model.qwen2_model.query_1024.weight", "model.projector.layers.weight", "model.projector.layers.bias",
              "model.view_seperator", "model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"}
    for i in range(TEXT["num_hidden_layers"]):
        layer = f"model.layers.{i}."
        names |= {layer + n for n in ("self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
                                      "self_attn.o_proj.weight", "input_layernorm.weight",
                                      "post_attention_layernorm.weight")}
        if i < TEXT["first_k_dense_replace"]:
            names |= {layer + f"mlp.{p}_proj.weight" for p in ("gate", "up", "down")}
            continue
        names |= {layer + "mlp.gate.weight"}
        names |= {layer + f"mlp.shared_experts.{p}_proj.weight" for p in ("gate", "up", "down")}
        names |= {layer + f"mlp.experts.{e}.{p}_proj.weight" for e in range(TEXT["n_routed_experts"])
                  for p in ("gate", "up", "down")}
    return names


def build_published_twin(converted: Path, path: Path) -> Path:
    """The published-layout twin of the tiny converted checkpoint at ``converted``."""
    from safetensors import safe_open
    from safetensors.torch import save_file
    from transformers import AutoTokenizer

    with safe_open(str(converted / "model.safetensors"), framework="pt") as handle:
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    expected = original_names()
    if set(tensors) != expected:
        extra, missing = sorted(set(tensors) - expected)[:5], sorted(expected - set(tensors))[:5]
        raise AssertionError(f"the converted checkpoint's tensors are not the published names: "
                             f"extra {extra}, missing {missing}")
    path.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    tokenizer = AutoTokenizer.from_pretrained(converted)
    config = published_config(len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id)
    (path / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    (path / "processor_config.json").write_text(json.dumps(PROCESSOR_CONFIG, indent=2), encoding="utf-8")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(converted / name, path / name)
    return path
