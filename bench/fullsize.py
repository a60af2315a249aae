"""A full-size DeepSeek-OCR-2 checkpoint with random weights, for GPU benchmarks.

No weights can be downloaded here, so the benchmark builds the real architecture
(config values in DESIGN.md: 3.39 B parameters, ~1.2 B active per token) with random
weights and saves it with ``save_pretrained``; the engine then loads it through the
production path. Reading quality is meaningless, compute per token is the real one.

    python -m bench.fullsize /tmp/deepseek-ocr2-random --device cuda
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tests.tiny_checkpoint import _build_tokenizer


def fullsize_config(image_token_id: int, bos: int, eos: int, pad: int, text_layers: int = 12, encoder_layers: int = 24):
    """The real DeepSeek-OCR-2 sizes (the library's defaults are not the released model)."""
    from transformers import DeepseekOcr2Config

    return DeepseekOcr2Config(
        image_token_id=image_token_id,
        text_config={
            "vocab_size": 129280,
            "hidden_size": 1280,
            "intermediate_size": 6848,
            "moe_intermediate_size": 896,
            "num_hidden_layers": text_layers,
            "num_attention_heads": 10,
            "num_key_value_heads": 10,
            "head_dim": 128,
            "max_position_embeddings": 8192,
            "n_routed_experts": 64,
            "n_shared_experts": 2,
            "num_experts_per_tok": 6,
            "topk_method": "greedy",
            "n_group": 1,
            "topk_group": 1,
            "mlp_layer_types": ["dense"] + ["sparse"] * (text_layers - 1),
            "bos_token_id": bos,
            "eos_token_id": eos,
            "pad_token_id": pad,
        },
        vision_config={
            "sam_config": {"initializer_range": 0.02},
            "encoder_config": {
                "hidden_size": 896,
                "intermediate_size": 4864,
                "num_hidden_layers": encoder_layers,
                "num_attention_heads": 14,
                "num_key_value_heads": 2,
                "rope_theta": 1_000_000.0,
            },
        },
    )


def build_fullsize_checkpoint(path: Path, device: str = "cpu", text_layers: int = 12, encoder_layers: int = 24) -> Path:
    """Write the random full-size model (bf16), the real processor settings and a small tokenizer.

    The tokenizer is the tests' byte-level BPE: the model's embedding table keeps the real
    vocabulary size, so every matrix has its real shape; ids past the tokenizer decode to nothing.
    """
    import torch
    from transformers import (
        DeepseekOcr2ForConditionalGeneration,
        DeepseekOcr2ImageProcessorPil,
        DeepseekOcr2Processor,
    )

    tokenizer = _build_tokenizer()
    config = fullsize_config(
        tokenizer.convert_tokens_to_ids("<image>"),
        tokenizer.bos_token_id,
        tokenizer.eos_token_id,
        tokenizer.pad_token_id,
        text_layers=text_layers,
        encoder_layers=encoder_layers,
    )
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            model = DeepseekOcr2ForConditionalGeneration(config).eval()
    finally:
        torch.set_default_dtype(previous)
    processor = DeepseekOcr2Processor(image_processor=DeepseekOcr2ImageProcessorPil(), tokenizer=tokenizer)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", type=Path)
    parser.add_argument("--device", default="cpu", help="where to initialise the weights (cuda is much faster)")
    parser.add_argument("--text-layers", type=int, default=12, help="fewer only for a quick smoke run")
    parser.add_argument("--encoder-layers", type=int, default=24, help="fewer only for a quick smoke run")
    args = parser.parse_args()
    started = time.perf_counter()
    build_fullsize_checkpoint(args.path, args.device, args.text_layers, args.encoder_layers)
    size = sum(f.stat().st_size for f in args.path.glob("*.safetensors")) / 2**30
    print(f"{args.path}: {size:.2f} GiB of weights in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
