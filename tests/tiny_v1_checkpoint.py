"""Build a tiny random DeepSeek-OCR (v1) checkpoint in the ORIGINAL layout, for CPU tests.

Written the way the model hub has it: ``config.json`` with model_type "deepseek_vl_v2",
``language_config`` / ``vision_config.width`` / ``projector_config``; one
``model.safetensors`` whose tensor names and shapes are listed here independently of
the production key mapping (so a mapping mistake fails the tests instead of being
mirrored); tokenizer files. Sizes are a 1/4 pixel scale of the real model (SAM patch 4
instead of 16), so every resolution mode gives the real model's image-token counts.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.tiny_checkpoint import _build_tokenizer

# No global-attention SAM layer by default: on CPU it dominates the test time (a 64 x 64 grid).
SAM = {"width": 32, "layers": 2, "heads": 2, "global_attn_indexes": [], "downsample_channels": [32, 64],
       "patch_size": 4, "window_size": 4, "out_chans": 16}
CLIP = {"width": 64, "layers": 2, "heads": 4, "image_size": 224, "patch_size": 14}
TEXT = {"hidden_size": 64, "intermediate_size": 128, "moe_intermediate_size": 32, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 4, "n_routed_experts": 4, "n_shared_experts": 1,
        "num_experts_per_tok": 2, "first_k_dense_replace": 1}
SAM_IMAGE_SIZE = 256  # 1024 / 4


def v1_config(vocab_size: int, bos: int, eos: int, pad: int, sam: dict = SAM) -> dict:
    language = {
        "architectures": ["DeepseekV2ForCausalLM"], "model_type": "deepseek_v2", "vocab_size": vocab_size,
        **TEXT, "max_position_embeddings": 8192, "topk_method": "greedy", "n_group": 1, "topk_group": 1,
        "kv_lora_rank": None, "q_lora_rank": None, "qk_nope_head_dim": 0, "qk_rope_head_dim": 0, "v_head_dim": 0,
        "use_mla": False, "lm_head": True, "rm_head": False, "bos_token_id": bos, "eos_token_id": eos,
        "torch_dtype": "bfloat16",
    }
    return {
        "_name_or_path": "tiny-deepseek-ocr-v1",
        "architectures": ["DeepseekOCRForCausalLM"],
        "model_type": "deepseek_vl_v2",
        "candidate_resolutions": [[256, 256]],
        "global_view_pos": "head",
        "tile_tag": "2D",
        "language_config": language,
        "projector_config": {"input_dim": CLIP["width"] + sam["downsample_channels"][-1], "model_type": "mlp_projector",
                             "n_embed": TEXT["hidden_size"], "projector_type": "linear"},
        "vision_config": {"image_size": SAM_IMAGE_SIZE, "mlp_ratio": 3.7362, "model_name": "deeplip_b_l",
                          "model_type": "vision", "width": {"clip-l-14-224": CLIP, "sam_vit_b": sam}},
        # The original repeats the decoder settings at the top level.
        **{k: v for k, v in language.items() if k not in ("architectures", "model_type")},
        "pad_token_id": pad,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.46.3",
    }


def original_shapes(vocab_size: int, sam: dict = SAM) -> dict[str, tuple[int, ...]]:
    """Every tensor of the original checkpoint, by its original name, for the sizes above."""
    shapes: dict[str, tuple[int, ...]] = {}
    w, p, grid = sam["width"], sam["patch_size"], SAM_IMAGE_SIZE // sam["patch_size"]
    head = w // sam["heads"]
    prefix = "model.sam_model."
    shapes[prefix + "patch_embed.proj.weight"] = (w, 3, p, p)
    shapes[prefix + "patch_embed.proj.bias"] = (w,)
    shapes[prefix + "pos_embed"] = (1, grid, grid, w)
    for i in range(sam["layers"]):
        block = f"model.sam_model.blocks.{i}."
        span = grid if i in sam["global_attn_indexes"] else sam["window_size"]
        for name, shape in {
            "norm1.weight": (w,), "norm1.bias": (w,), "norm2.weight": (w,), "norm2.bias": (w,),
            "attn.qkv.weight": (3 * w, w), "attn.qkv.bias": (3 * w,),
            "attn.proj.weight": (w, w), "attn.proj.bias": (w,),
            "attn.rel_pos_h": (2 * span - 1, head), "attn.rel_pos_w": (2 * span - 1, head),
            "mlp.lin1.weight": (4 * w, w), "mlp.lin1.bias": (4 * w,),
            "mlp.lin2.weight": (w, 4 * w), "mlp.lin2.bias": (w,),
        }.items():
            shapes[block + name] = shape
    out, (d1, d2) = sam["out_chans"], sam["downsample_channels"]
    shapes.update({
        prefix + "neck.0.weight": (out, w, 1, 1), prefix + "neck.1.weight": (out,), prefix + "neck.1.bias": (out,),
        prefix + "neck.2.weight": (out, out, 3, 3), prefix + "neck.3.weight": (out,), prefix + "neck.3.bias": (out,),
        prefix + "net_2.weight": (d1, out, 3, 3), prefix + "net_3.weight": (d2, d1, 3, 3),
    })
    c, clip = CLIP["width"], "model.vision_model."
    positions = (CLIP["image_size"] // CLIP["patch_size"]) ** 2 + 1
    shapes.update({
        clip + "embeddings.class_embedding": (c,),
        clip + "embeddings.patch_embedding.weight": (c, 3, CLIP["patch_size"], CLIP["patch_size"]),
        clip + "embeddings.position_embedding.weight": (positions, c),
        clip + "pre_layrnorm.weight": (c,), clip + "pre_layrnorm.bias": (c,),
    })
    for i in range(CLIP["layers"]):
        layer = f"{clip}transformer.layers.{i}."
        for name, shape in {
            "self_attn.qkv_proj.weight": (3 * c, c), "self_attn.qkv_proj.bias": (3 * c,),
            "self_attn.out_proj.weight": (c, c), "self_attn.out_proj.bias": (c,),
            "layer_norm1.weight": (c,), "layer_norm1.bias": (c,), "layer_norm2.weight": (c,), "layer_norm2.bias": (c,),
            "mlp.fc1.weight": (4 * c, c), "mlp.fc1.bias": (4 * c,), "mlp.fc2.weight": (c, 4 * c), "mlp.fc2.bias": (c,),
        }.items():
            shapes[layer + name] = shape
    h = TEXT["hidden_size"]
    shapes.update({
        "model.projector.layers.weight": (h, c + d2), "model.projector.layers.bias": (h,),
        "model.image_newline": (h,), "model.view_seperator": (h,),
        "model.embed_tokens.weight": (vocab_size, h), "model.norm.weight": (h,), "lm_head.weight": (vocab_size, h),
    })
    inter, moe, experts = TEXT["intermediate_size"], TEXT["moe_intermediate_size"], TEXT["n_routed_experts"]
    shared = moe * TEXT["n_shared_experts"]
    for i in range(TEXT["num_hidden_layers"]):
        layer = f"model.layers.{i}."
        shapes[layer + "input_layernorm.weight"] = (h,)
        shapes[layer + "post_attention_layernorm.weight"] = (h,)
        for proj in "qkvo":
            shapes[f"{layer}self_attn.{proj}_proj.weight"] = (h, h)
        if i < TEXT["first_k_dense_replace"]:
            shapes.update({layer + "mlp.gate_proj.weight": (inter, h), layer + "mlp.up_proj.weight": (inter, h),
                           layer + "mlp.down_proj.weight": (h, inter)})
            continue
        shapes[layer + "mlp.gate.weight"] = (experts, h)
        for e in range(experts):
            expert = f"{layer}mlp.experts.{e}."
            shapes.update({expert + "gate_proj.weight": (moe, h), expert + "up_proj.weight": (moe, h),
                           expert + "down_proj.weight": (h, moe)})
        shapes.update({layer + "mlp.shared_experts.gate_proj.weight": (shared, h),
                       layer + "mlp.shared_experts.up_proj.weight": (shared, h),
                       layer + "mlp.shared_experts.down_proj.weight": (h, shared)})
    return shapes


def random_tensors(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict:
    import torch

    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, shape in shapes.items():
        values = torch.randn(shape, generator=generator)
        if name.endswith(("norm.weight", "norm1.weight", "norm2.weight", "layernorm.weight", "layrnorm.weight",
                          "neck.1.weight", "neck.3.weight")):
            values = 1.0 + 0.1 * values  # norms start near identity, as trained ones do
        elif name.endswith(("image_newline", "view_seperator", "class_embedding")):
            values = values / shape[-1] ** 0.5
        else:
            values = 0.02 * values
        tensors[name] = values.to(torch.bfloat16).contiguous()  # stored in bf16, as the original
    return tensors


def build_tiny_v1_checkpoint(
    path: Path, seed: int = 0, drop: tuple[str, ...] = (), extra: dict | None = None, sam: dict = SAM
) -> Path:
    """Write config.json, model.safetensors (original names) and the tokenizer to ``path``.

    ``drop`` leaves tensors out and ``extra`` adds some: for the strict-loading tests. ``sam``
    overrides the SAM sizes (e.g. global-attention layers, which the parity check uses).
    """
    from safetensors.torch import save_file

    tokenizer = _build_tokenizer()
    path.mkdir(parents=True, exist_ok=True)
    config = v1_config(len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id, sam)
    (path / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    tensors = random_tensors(original_shapes(len(tokenizer), sam), seed)
    for name in drop:
        del tensors[name]
    tensors.update(extra or {})
    save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save_pretrained(path)
    return path


if __name__ == "__main__":
    import sys

    print(build_tiny_v1_checkpoint(Path(sys.argv[1] if len(sys.argv) > 1 else "tiny-deepseek-ocr-v1")))
