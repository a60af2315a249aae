"""DeepSeek-OCR v1's DeepEncoder: SAM ViT-B, then CLIP-L reading the SAM feature map, then the projector.

SAM (window attention, 16x convolutional compressor: neck + two stride-2 convs) is
transformers' ``DeepseekOcr2SamVisionEncoder``; CLIP-L's transformer layers are
transformers' ``CLIPEncoder``. What v1 adds is here: CLIP takes SAM's output as its
patch embeddings (its own patch convolution is never used), with a class token and
position embeddings resized bicubically (antialiased) to the SAM grid, and the
per-position features are CLIP (minus the class token) concatenated with SAM.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.models.clip.modeling_clip import CLIPEncoder
from transformers.models.deepseek_ocr2.modeling_deepseek_ocr2 import DeepseekOcr2SamVisionEncoder


class ClipOnSamEmbeddings(nn.Module):
    """Class token + SAM features as patch tokens + (resized) learned positions."""

    def __init__(self, config) -> None:
        super().__init__()
        self.embed_dim = config.hidden_size
        self.grid = config.image_size // config.patch_size
        self.class_embedding = nn.Parameter(torch.empty(self.embed_dim))
        self.position_embedding = nn.Embedding(self.grid * self.grid + 1, self.embed_dim)

    def positions(self, height: int, width: int) -> torch.Tensor:
        weight = self.position_embedding.weight
        if (height, width) == (self.grid, self.grid):
            return weight
        grid = weight[1:].reshape(1, self.grid, self.grid, -1).permute(0, 3, 1, 2)
        resized = nn.functional.interpolate(
            grid.float(), size=(height, width), mode="bicubic", antialias=True, align_corners=False
        ).to(weight.dtype)
        return torch.cat([weight[:1], resized.permute(0, 2, 3, 1).reshape(height * width, -1)], dim=0)

    def forward(self, sam_features: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = sam_features.shape
        tokens = sam_features.flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(tokens.dtype).expand(batch, 1, -1)
        return torch.cat([cls, tokens], dim=1) + self.positions(height, width).unsqueeze(0)


class ClipOnSam(nn.Module):
    """CLIP-L (pre-norm transformer, quick-GELU) over SAM's feature map; no post-norm, no pooling."""

    def __init__(self, config) -> None:
        super().__init__()
        self.embeddings = ClipOnSamEmbeddings(config)
        self.pre_layrnorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)  # original spelling
        self.encoder = CLIPEncoder(config)

    def forward(self, sam_features: torch.Tensor) -> torch.Tensor:
        hidden = self.pre_layrnorm(self.embeddings(sam_features))
        return self.encoder(inputs_embeds=hidden).last_hidden_state


class DeepEncoder(nn.Module):
    """Pixels of one view size (B, 3, S, S) -> projected tokens (B, (S / patch / 4)^2, hidden)."""

    def __init__(self, config) -> None:
        super().__init__()
        self.sam_model = DeepseekOcr2SamVisionEncoder(config.sam)
        self.vision_model = ClipOnSam(config.clip)
        self.projector = nn.Linear(config.projector_input_dim, config.hidden_size)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        sam = self.sam_model(pixel_values).last_hidden_state  # (B, C, h, w)
        clip = self.vision_model(sam)[:, 1:]
        return self.projector(torch.cat([clip, sam.flatten(2).transpose(1, 2)], dim=-1))
