"""A full-size DeepSeek-OCR-2 checkpoint with random weights, for GPU benchmarks.

No weights can be downloaded here, so the benchmark builds the real architecture from the genuine
published config.json (``../shared/checkpoints/deepseek-ocr-2``, read through the same translation
the engine uses for ``deepseek-ai/DeepSeek-OCR-2``: 3.39 B parameters, ~1.2 B active per token)
with random weights and saves it with ``save_pretrained`` (which writes the original tensor
names); the engine then loads it through the production path. ``--layout published`` writes the
genuine config.json, processor_config.json and tokenizer files beside the weights instead of
transformers' own, so the load goes through the published-layout path. Reading quality is
meaningless, compute per token is the real one.

    python -m bench.fullsize /tmp/deepseek-ocr2-random --device cuda [--layout published]
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import time
from pathlib import Path

GENUINE = Path(__file__).resolve().parents[1] / ".." / "shared" / "checkpoints"
GENUINE_OCR2 = GENUINE / "deepseek-ocr-2"
STAND_IN_TOKENIZER = GENUINE / "tokenizer-reconstructed" / "tokenizer.json"


def genuine_ocr2_config(text_layers: int | None = None, encoder_layers: int | None = None) -> dict:
    """The published config.json, with fewer layers only for a quick smoke run."""
    path = GENUINE_OCR2 / "config.json"
    if not path.is_file():
        raise SystemExit(f"{path} is absent: the genuine checkpoint files are needed to build the full-size model")
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw = copy.deepcopy(raw)
    if text_layers is not None:
        raw["language_config"]["num_hidden_layers"] = text_layers
    if encoder_layers is not None:
        raw["vision_config"]["width"]["qwen2-0-5b"]["layers"] = encoder_layers
    return raw


def fullsize_config(image_token_id: int = 128815, text_layers: int | None = None, encoder_layers: int | None = None):
    """transformers' config for the genuine DeepSeek-OCR-2 (the library's defaults are not the released model)."""
    from ocr_runner.models.deepseek_ocr2_published import ocr2_config

    return ocr2_config(genuine_ocr2_config(text_layers, encoder_layers), image_token_id)


def build_fullsize_checkpoint(path: Path, device: str = "cpu", text_layers: int | None = None,
                              encoder_layers: int | None = None, layout: str = "converted") -> Path:
    """Write the random full-size model (bf16) with its processor and tokenizer.

    ``converted``: transformers' layout with the stand-in of the genuine tokenizer (real ids).
    ``published``: the genuine config.json / processor_config.json / tokenizer files, as the hub has them.
    """
    import torch
    from transformers import DeepseekOcr2ForConditionalGeneration

    from ocr_runner.models.deepseek_ocr2_published import load_processor, load_tokenizer

    raw = genuine_ocr2_config(text_layers, encoder_layers)
    path.mkdir(parents=True, exist_ok=True)
    for source in [*GENUINE_OCR2.glob("*.json"), STAND_IN_TOKENIZER]:
        if source.name != "config.json":
            shutil.copyfile(source, path / source.name)
    tokenizer = load_tokenizer(path)
    config = fullsize_config(tokenizer.convert_tokens_to_ids("<image>"), text_layers, encoder_layers)
    config.text_config.pad_token_id = tokenizer.pad_token_id
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            model = DeepseekOcr2ForConditionalGeneration(config).eval()
    finally:
        torch.set_default_dtype(previous)
    model.save_pretrained(path)
    if layout == "published":
        (path / "config.json").write_text(json.dumps(raw, indent=1), encoding="utf-8")
        (path / "generation_config.json").unlink(missing_ok=True)  # none is published
    else:
        for name in ("processor_config.json", "tokenizer_config.json", "special_tokens_map.json"):
            (path / name).unlink(missing_ok=True)
        load_processor(GENUINE_OCR2, tokenizer, raw).save_pretrained(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", type=Path)
    parser.add_argument("--device", default="cpu", help="where to initialise the weights (cuda is much faster)")
    parser.add_argument("--text-layers", type=int, help="fewer than the published 12 only for a quick smoke run")
    parser.add_argument("--encoder-layers", type=int, help="fewer than the published 24 only for a quick smoke run")
    parser.add_argument("--layout", choices=("converted", "published"), default="converted",
                        help="transformers' layout, or the genuine config/processor/tokenizer files as published")
    args = parser.parse_args()
    started = time.perf_counter()
    build_fullsize_checkpoint(args.path, args.device, args.text_layers, args.encoder_layers, args.layout)
    size = sum(f.stat().st_size for f in args.path.glob("*.safetensors")) / 2**30
    print(f"{args.path}: {size:.2f} GiB of weights in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
