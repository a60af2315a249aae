"""DeepSeek-OCR v1 preprocessing: the views the model sees and the image tokens that stand for them.

Per image (sizes in the checkpoint's pixels; the full model's are 512/640/1024/1280):

- crop mode: a global view padded to ``base_size`` (aspect kept, grey 127 border) plus,
  when the image is larger than one tile, a grid of ``image_size`` tiles (2 to 9, the
  grid whose aspect ratio is closest to the image's), tiles in row-major order;
- no crop: one view at ``image_size``; up to 640 it is squashed to a square, above it is
  padded like the global view.

Tokens (patch 16, 4x compression): a view of ``s`` pixels gives ``q = ceil(s / 16 / 4)``
rows of ``q`` features plus one newline each; the tile grid gives ``rows * q`` rows of
``cols * q + 1``; one view separator ends the image. The prompt is
``bos + text-before-<image> + image tokens + text-after``, no role tags.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

IMAGE_TOKEN = "<image>"
PAD_COLOR = (127, 127, 127)  # int(0.5 * 255): the normalisation mean
MIN_TILES, MAX_TILES = 2, 9
DOWNSAMPLE = 4
SQUASH_LIMIT = 640  # full-model pixels: non-crop views up to this size are resized, not padded


@dataclass(frozen=True)
class V1Views:
    global_view: Image.Image
    tiles: list[Image.Image]
    grid: tuple[int, int]  # (columns, rows); (1, 1) when there are no tiles


def tile_grid(
    width: int, height: int, tile: int, min_tiles: int = MIN_TILES, max_tiles: int = MAX_TILES
) -> tuple[int, int]:
    """(columns, rows) whose aspect ratio is closest to the image's; on a tie, the larger grid if the image fills it."""
    candidates = sorted(
        {
            (cols, rows)
            for n in range(min_tiles, max_tiles + 1)
            for cols in range(1, n + 1)
            for rows in range(1, n + 1)
            if min_tiles <= cols * rows <= max_tiles
        },
        key=lambda grid: grid[0] * grid[1],
    )
    aspect = width / height
    best, best_diff = (1, 1), float("inf")
    for cols, rows in candidates:
        diff = abs(aspect - cols / rows)
        if diff < best_diff:
            best, best_diff = (cols, rows), diff
        elif diff == best_diff and width * height > 0.5 * tile * tile * cols * rows:
            best = (cols, rows)
    return best


def make_views(image: Image.Image, base_size: int, image_size: int, crop_mode: bool, squash_limit: int) -> V1Views:
    image = image.convert("RGB")
    if crop_mode:
        tiles: list[Image.Image] = []
        grid = (1, 1)
        if image.width > image_size or image.height > image_size:
            grid = tile_grid(image.width, image.height, image_size)
            cols, rows = grid
            resized = image.resize((cols * image_size, rows * image_size), Image.Resampling.BICUBIC)
            tiles = [
                resized.crop((c * image_size, r * image_size, (c + 1) * image_size, (r + 1) * image_size))
                for r in range(rows)
                for c in range(cols)
            ]
        return V1Views(ImageOps.pad(image, (base_size, base_size), color=PAD_COLOR), tiles, grid)
    if image_size <= squash_limit:
        image = image.resize((image_size, image_size), Image.Resampling.BICUBIC)
    return V1Views(ImageOps.pad(image, (image_size, image_size), color=PAD_COLOR), [], (1, 1))


def image_token_count(base_size: int, image_size: int, crop_mode: bool, grid: tuple[int, int], patch_size: int) -> int:
    """The number of ``<image>`` tokens the original puts in the prompt for one image."""
    view = base_size if crop_mode else image_size
    queries = math.ceil(view // patch_size / DOWNSAMPLE)
    count = queries * (queries + 1) + 1
    cols, rows = grid
    if crop_mode and cols * rows > 1:
        tile_queries = math.ceil(image_size // patch_size / DOWNSAMPLE)
        count += (rows * tile_queries) * (cols * tile_queries + 1)
    return count


def to_pixels(image: Image.Image):
    """RGB in [0, 255] -> float tensor (3, H, W) normalised with mean = std = 0.5."""
    import torch

    array = np.asarray(image, dtype=np.float32) / 255.0
    return torch.from_numpy((array - 0.5) / 0.5).permute(2, 0, 1).contiguous()


class V1Processor:
    """Turns (images, prompts, mode) into the batched, left-padded tensors the v1 model takes."""

    def __init__(self, tokenizer, image_token_id: int, patch_size: int, scale: float) -> None:
        self.tokenizer = tokenizer
        self.image_token_id = image_token_id
        self.patch_size = patch_size
        self.scale = scale  # full-model pixels per checkpoint pixel
        self.bos_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else 0

    @property
    def pad_id(self) -> int:
        tokenizer = self.tokenizer
        return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def pixels(self, full_size: int) -> int:
        return round(full_size / self.scale)

    def prompt_ids(self, prompt: str, image_tokens: int) -> list[int]:
        before, image, after = prompt.partition(IMAGE_TOKEN)
        if not image:
            raise ValueError(f"prompt has no {IMAGE_TOKEN} placeholder")
        if IMAGE_TOKEN in after:
            raise ValueError(f"prompt has more than one {IMAGE_TOKEN}: one image per prompt")
        encode = lambda text: self.tokenizer.encode(text, add_special_tokens=False) if text else []  # noqa: E731
        return [self.bos_id, *encode(before), *[self.image_token_id] * image_tokens, *encode(after)]

    def __call__(self, images: list[Image.Image], prompts: list[str], base_size: int, image_size: int, crop_mode: bool):
        """Sizes in full-model pixels. Returns a transformers BatchFeature (so ``.to(device, dtype=...)`` works)."""
        import torch
        from transformers import BatchFeature

        base, tile = self.pixels(base_size), self.pixels(image_size)
        squash = self.pixels(SQUASH_LIMIT)
        rows, globals_, locals_, grids, counts = [], [], [], [], []
        for image, prompt in zip(images, prompts, strict=True):
            views = make_views(image, base, tile, crop_mode, squash)
            tokens = image_token_count(base, tile, crop_mode, views.grid, self.patch_size)
            rows.append(self.prompt_ids(prompt, tokens))
            globals_.append(to_pixels(views.global_view))
            locals_.extend(to_pixels(t) for t in views.tiles)
            grids.append(views.grid)
            counts.append(len(views.tiles))
        width = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):  # left padding: batched generation matches single runs
            input_ids[i, width - len(row) :] = torch.tensor(row)
            attention_mask[i, width - len(row) :] = 1
        data = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "pixel_values": torch.stack(globals_),
            "patches_grid": grids,
            "num_local_patches": counts,
        }
        if locals_:
            data["pixel_values_local"] = torch.stack(locals_)
        return BatchFeature(data=data, skip_tensor_conversion=["patches_grid", "num_local_patches"])
