"""DeepSeek-OCR (v1), loaded from the original checkpoint without trust_remote_code.

- ``config``: reads the original ``config.json`` (model_type ``deepseek_vl_v2``).
- ``modeling``: DeepEncoder (SAM ViT-B + CLIP-L on SAM features + projector) and the
  DeepSeek-V2-style MoE decoder, composed from transformers' building blocks.
- ``loading``: the original key names mapped onto the modules; missing or unexpected keys refuse the load.
- ``processing``: v1 views (global + 640 tiles) and the original image-token layout.
"""

from .config import DeepseekV1Config, is_v1_config, read_checkpoint_config

__all__ = ["DeepseekV1Config", "is_v1_config", "read_checkpoint_config"]
