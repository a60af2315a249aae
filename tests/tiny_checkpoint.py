"""Build a tiny random DeepSeek-OCR-2 checkpoint for CPU tests (recipe in DESIGN.md).

The checkpoint is saved with ``save_pretrained`` and loaded back by the production
engine, so the loading code path is the real one. Weights are random: tests check
plumbing (batching, padding, modes, decoding), never reading quality.
"""

from __future__ import annotations

from pathlib import Path

SPECIAL_TOKENS = ["<image>", "<|grounding|>", "<|ref|>", "<|/ref|>", "<|det|>", "<|/det|>"]
BOS, EOS, PAD = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>"


def _build_tokenizer(vocab_size: int = 320):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[BOS, EOS, PAD, *SPECIAL_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    corpus = ["Free OCR. Convert the document to markdown. Parse the figure. Locate in the image."] * 20
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=SPECIAL_TOKENS,
        padding_side="left",
    )


def build_tiny_checkpoint(path: Path, seed: int = 0) -> Path:
    """Write a ~2 MB random DeepSeek-OCR-2 model, processor and tokenizer to ``path``."""
    import torch
    from transformers import (
        DeepseekOcr2Config,
        DeepseekOcr2ForConditionalGeneration,
        DeepseekOcr2ImageProcessorPil,
        DeepseekOcr2Processor,
    )

    torch.manual_seed(seed)
    tokenizer = _build_tokenizer()
    vocab = len(tokenizer)
    config = DeepseekOcr2Config(
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        text_config={
            "vocab_size": vocab,
            "hidden_size": 64,
            "intermediate_size": 128,
            "moe_intermediate_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 4,
            "n_routed_experts": 4,
            "n_shared_experts": 1,
            "num_experts_per_tok": 2,
            "mlp_layer_types": ["dense", "sparse"],
            "max_position_embeddings": 2048,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "sam_config": {
                "hidden_size": 32,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "patch_size": 4,
                "image_size": 256,
                "window_size": 4,
                "global_attn_indexes": [],
                "output_channels": 16,
                "downsample_channels": [32, 64],
                # The default (1e-10) makes SAM output ~0: every image would look alike.
                "initializer_range": 0.02,
            },
            "encoder_config": {
                "hidden_size": 64,
                "intermediate_size": 128,
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "num_key_value_heads": 2,
            },
        },
    )
    model = DeepseekOcr2ForConditionalGeneration(config).eval()
    image_processor = DeepseekOcr2ImageProcessorPil(size={"height": 256, "width": 256}, tile_size=192)
    processor = DeepseekOcr2Processor(
        image_processor=image_processor, tokenizer=tokenizer, patch_size=4, downsample_ratio=4
    )
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


if __name__ == "__main__":
    import sys

    print(build_tiny_checkpoint(Path(sys.argv[1] if len(sys.argv) > 1 else "tiny-deepseek-ocr2")))
