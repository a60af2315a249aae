"""What differs between DeepSeek-OCR checkpoints, behind one small interface.

The engine (``deepseek.py``) owns batching, generation, the repetition guard and
decoding; a backend owns the model, its tokenizer, the resolution modes it supports and
turning (images, prompts, mode) into model inputs. The backend is chosen from the
checkpoint's own config.json (``models.layouts``), so MODEL_NAME alone selects it:

- ``Ocr2Backend``: DeepSeek-OCR-2 through transformers (``AutoModelForImageTextToText``), or as published
  (``deepseek-ai/DeepSeek-OCR-2``: ``ocr_runner.models.deepseek_ocr2_published`` translates it).
- ``V1Backend``: DeepSeek-OCR (v1), the original checkpoint, through ``ocr_runner.models.deepseek_v1``.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

from ..modes import ResolutionMode
from ..settings import Settings
from .torch_env import flash_attention_importable

log = logging.getLogger(__name__)

# Global-view size of the full-size model; a checkpoint built smaller is scaled to it.
NOMINAL_GLOBAL_SIZE = 1024
# DeepSeek-OCR v1 modes in full-model pixels: Gundam (crop), Tiny, Small, Base, Large.
V1_MODES = (
    ResolutionMode(1024, 640, True),
    ResolutionMode(512, 512, False),
    ResolutionMode(640, 640, False),
    ResolutionMode(1024, 1024, False),
    ResolutionMode(1280, 1280, False),
)


def load_backend(settings: Settings, dtype, device: str) -> Ocr2Backend | V1Backend:
    """The backend for MODEL_NAME's checkpoint, by the layout its config.json describes (``models.layouts``);
    any other checkpoint is refused, naming it and what its config says."""
    from ..models.deepseek_v1 import read_checkpoint_config
    from ..models.layouts import Layout, detect_layout

    layout = detect_layout(read_checkpoint_config(settings.model_name), settings.model_name)
    if layout is Layout.V1:
        return V1Backend(settings, dtype, device)
    return Ocr2Backend(settings, dtype, device, published=layout is Layout.OCR2_ORIGINAL)


class _Backend:
    processor: Any

    def for_thread(self):
        """The same backend with its own processor, for preparing inputs on another thread."""
        clone = copy.copy(self)
        clone.processor = copy.deepcopy(self.processor)
        return clone


class Ocr2Backend(_Backend):
    family = "DeepSeek-OCR-2"

    def __init__(self, settings: Settings, dtype, device: str, published: bool = False) -> None:
        flash = {"text_config": "flash_attention_2", "vision_config": "sdpa", "": "sdpa"}
        if published:  # deepseek-ai/DeepSeek-OCR-2 as published: its config, processor and tokenizer translated
            from ..models import deepseek_ocr2_published as original

            self.family = "DeepSeek-OCR-2 (as published)"
            folder = checkpoint_folder(settings.model_name)
            raw = original.read_json(folder / "config.json")
            self.tokenizer = original.load_tokenizer(folder)
            config = original.ocr2_config(raw, self.tokenizer.convert_tokens_to_ids(original.IMAGE_TOKEN))
            self.processor = original.load_processor(folder, self.tokenizer, raw)
            self.attn_implementation, self.net = _load_with_attention(
                settings, device, lambda attn: original.load_model(folder, config, dtype, device, attn), flash=flash,
            )
        else:
            from transformers import AutoModelForImageTextToText, AutoProcessor

            self.processor = AutoProcessor.from_pretrained(settings.model_name)
            self.tokenizer = self.processor.tokenizer
            self.attn_implementation, self.net = _load_with_attention(
                settings, device, lambda attn: AutoModelForImageTextToText.from_pretrained(
                    settings.model_name, dtype=dtype, attn_implementation=attn
                ).to(device),
                flash=flash,
            )
        image_processor = self.processor.image_processor
        self._global = int(image_processor.size["height"])
        self.tile_pixels = int(image_processor.tile_size)
        self._scale = NOMINAL_GLOBAL_SIZE / self._global
        tile = round(self.tile_pixels * self._scale)
        self.supported_modes = (
            ResolutionMode(NOMINAL_GLOBAL_SIZE, tile, True),
            ResolutionMode(tile, tile, False),
            ResolutionMode(NOMINAL_GLOBAL_SIZE, NOMINAL_GLOBAL_SIZE, False),
        )

    def prepare_inputs(self, images: list[Any], prompts: list[str], mode: ResolutionMode):
        if mode.crop_mode:
            kwargs: dict[str, Any] = {
                "size": {"height": self._global, "width": self._global}, "tile_size": self.tile_pixels,
                "crop_to_patches": True,
            }
        else:
            side = round(mode.image_size / self._scale)
            kwargs = {"size": {"height": side, "width": side}, "tile_size": side, "crop_to_patches": False}
        return self.processor(images=images, text=prompts, return_tensors="pt", padding=True, **kwargs)


class V1Backend(_Backend):
    family = "DeepSeek-OCR (v1)"

    def __init__(self, settings: Settings, dtype, device: str) -> None:
        from transformers import PreTrainedTokenizerFast

        from ..models.deepseek_v1.loading import load_pretrained, read_config
        from ..models.deepseek_v1.processing import IMAGE_TOKEN, V1Processor

        folder = checkpoint_folder(settings.model_name)
        config = read_config(folder)  # before loading: a config error must not read as an attention fallback
        # tokenizer.json as written: the original's tokenizer class name is a transformers-4 one.
        self.tokenizer = PreTrainedTokenizerFast.from_pretrained(folder)
        image_token_id = self.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
        if not isinstance(image_token_id, int) or image_token_id == self.tokenizer.unk_token_id:
            raise ValueError(f"the tokenizer in {folder} has no {IMAGE_TOKEN} token")
        self.attn_implementation, self.net = _load_with_attention(
            settings, device, lambda attn: load_pretrained(folder, dtype, device, attn, config),
            flash="flash_attention_2",
        )
        self.net.image_token_id = image_token_id
        self.processor = V1Processor(self.tokenizer, image_token_id, config.sam_patch_size, config.scale)
        self.supported_modes = V1_MODES
        self.tile_pixels = self.processor.pixels(640)

    def prepare_inputs(self, images: list[Any], prompts: list[str], mode: ResolutionMode):
        return self.processor(images, prompts, mode.base_size, mode.image_size, mode.crop_mode)


def checkpoint_folder(model_name: str) -> Path:
    """A local folder as is; a hub id resolved to its snapshot (downloaded once, like from_pretrained would)."""
    folder = Path(model_name)
    if folder.is_dir():
        return folder
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(model_name, allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model"]))


def _load_with_attention(settings: Settings, device: str, load, flash: Any):
    """Load with flash-attention 2 on the text model when possible, else sdpa; say which."""
    requested = settings.attn_implementation
    if requested == "auto":
        use_flash = device.startswith("cuda") and flash_attention_importable()
        if not use_flash:
            log.info("attention: sdpa (flash-attn %s)", "not installed" if device.startswith("cuda") else "needs CUDA")
        requested = "flash_attention_2" if use_flash else "sdpa"
    if requested == "flash_attention_2":
        # SAM uses a relative-position bias, so flash-attention applies to the text decoder only.
        try:
            return "flash_attention_2 (text) + sdpa (vision)", load(flash)
        except (ImportError, ValueError) as exc:
            if settings.attn_implementation == "flash_attention_2":
                raise
            log.warning("flash_attention_2 unavailable (%s); falling back to sdpa", exc)
            requested = "sdpa"
    return requested, load(requested)
