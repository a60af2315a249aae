"""DeepSeek-OCR v1: DeepEncoder features placed into DeepSeek-V2-style MoE decoder inputs.

The decoder is transformers' ``DeepseekOcr2TextModel`` (the same 12-layer MoE with
standard multi-head attention) with an untied ``lm_head``. Image features are laid
out as the original does: the tiles form one grid ending every row with the learned
newline, then the global view (also a newline per row), then one view separator;
they replace the ``<image>`` placeholder tokens in order.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPooling, CausalLMOutputWithPast
from transformers.models.deepseek_ocr2.configuration_deepseek_ocr2 import DeepseekOcr2TextConfig
from transformers.models.deepseek_ocr2.modeling_deepseek_ocr2 import DeepseekOcr2TextModel

from .config import DeepseekV1Config
from .vision import DeepEncoder


class DeepseekOcrV1ForCausalLM(PreTrainedModel, GenerationMixin):
    """Module names follow the original checkpoint's where transformers' blocks allow (see ``loading``)."""

    config: DeepseekOcr2TextConfig
    config_class = DeepseekOcr2TextConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    _supports_sdpa = True
    _supports_flash_attn = True
    _no_split_modules = ["DeepseekOcr2TextDecoderLayer"]

    def __init__(self, v1_config: DeepseekV1Config) -> None:
        super().__init__(v1_config.text)
        self.v1_config = v1_config
        self.image_token_id: int | None = None  # set by the loader from the tokenizer's "<image>"
        self.vision = DeepEncoder(v1_config)
        self.image_newline = nn.Parameter(torch.empty(v1_config.hidden_size))
        self.view_separator = nn.Parameter(torch.empty(v1_config.hidden_size))
        self.language_model = DeepseekOcr2TextModel(v1_config.text)
        self.lm_head = nn.Linear(v1_config.hidden_size, v1_config.text.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.embed_tokens

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    # -- vision ----------------------------------------------------------------------------------

    def get_image_features(
        self,
        pixel_values: torch.Tensor,
        pixel_values_local: torch.Tensor | None = None,
        num_local_patches: list[int] | None = None,
        patches_grid: list[tuple[int, int]] | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPooling:
        """Per image (``pooler_output``, a list): [tile-grid rows + newline]*, [global rows + newline]*, separator.

        The same call shape as transformers' DeepSeek-OCR-2 (so callers can encode a few pages at a
        time), plus ``patches_grid``: (columns, rows) per image, which the tile layout needs.
        """
        counts = [int(c) for c in num_local_patches] if num_local_patches is not None else None
        if patches_grid is None:
            if pixel_values_local is not None:
                raise ValueError("DeepSeek-OCR v1 needs patches_grid (columns, rows per image) to lay out its tiles")
            patches_grid = [(1, 1)] * pixel_values.shape[0]
        global_features = self.vision(pixel_values)
        local_features = self.vision(pixel_values_local) if pixel_values_local is not None else None
        hidden = global_features.shape[-1]
        newline = self.image_newline.to(global_features.dtype)
        separator = self.view_separator.to(global_features.dtype)[None, :]
        side = int(global_features.shape[1] ** 0.5)
        out, next_tile = [], 0
        for index, (columns, rows) in enumerate(patches_grid):
            tile_count = columns * rows if columns * rows > 1 else 0
            if counts is not None and counts[index] != tile_count:
                raise ValueError(f"image {index}: {counts[index]} tiles for a {columns} x {rows} grid")
            parts = []
            if tile_count:
                assert local_features is not None
                tiles = local_features[next_tile : next_tile + tile_count]
                next_tile += tile_count
                tile_side = int(tiles.shape[1] ** 0.5)
                grid = tiles.view(rows, columns, tile_side, tile_side, hidden).permute(0, 2, 1, 3, 4)
                parts.append(_with_row_newlines(grid.reshape(rows * tile_side, columns * tile_side, hidden), newline))
            parts.append(_with_row_newlines(global_features[index].view(side, side, hidden), newline))
            parts.append(separator)
            out.append(torch.cat(parts, dim=0))
        return BaseModelOutputWithPooling(last_hidden_state=global_features, pooler_output=out)

    # -- forward ---------------------------------------------------------------------------------

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache=None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        pixel_values: torch.Tensor | None = None,
        pixel_values_local: torch.Tensor | None = None,
        patches_grid: list[tuple[int, int]] | None = None,
        num_local_patches: list[int] | None = None,
        mm_encoder_outputs: dict[str, BaseModelOutputWithPooling] | None = None,
        logits_to_keep: int = 0,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        """``mm_encoder_outputs={"image": get_image_features(...)}`` passes images already encoded."""
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)
        encoded = (mm_encoder_outputs or {}).get("image")
        if encoded is None and pixel_values is not None:
            encoded = self.get_image_features(pixel_values, pixel_values_local, num_local_patches, patches_grid)
        if encoded is not None:
            features = torch.cat(list(encoded.pooler_output), dim=0).to(inputs_embeds.dtype)
            mask = input_ids == self.image_token_id
            if int(mask.sum()) != features.shape[0]:
                raise ValueError(
                    f"Image features and image tokens do not match: {int(mask.sum())} tokens, "
                    f"{features.shape[0]} features"
                )
            inputs_embeds = inputs_embeds.masked_scatter(mask.unsqueeze(-1), features)
        outputs = self.language_model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            use_cache=use_cache,
        )
        hidden = outputs.last_hidden_state
        if logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        return CausalLMOutputWithPast(logits=self.lm_head(hidden), cache=outputs.cache)


def _with_row_newlines(grid: torch.Tensor, newline: torch.Tensor) -> torch.Tensor:
    """(rows, cols, hidden) -> (rows * (cols + 1), hidden), the newline embedding closing every row."""
    rows, _, hidden = grid.shape
    return torch.cat([grid, newline.view(1, 1, hidden).expand(rows, 1, hidden)], dim=1).reshape(-1, hidden)
