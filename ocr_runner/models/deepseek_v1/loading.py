"""Load the original DeepSeek-OCR safetensors as they are on disk, through a key mapping.

Every original tensor name maps onto one module parameter (renamed by ``_RULES``), three (CLIP's fused
``qkv_proj`` split into q/k/v) or a slice of one (each routed expert's gate/up/down
written into the fused 3-D expert tensors). The load is strict: a checkpoint that leaves
any parameter unfilled, or carries a tensor this architecture has no place for, is
refused with the names at fault. The one tolerated extra is CLIP's patch convolution,
which the original also keeps but never runs (CLIP reads SAM's features instead).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

UNUSED_KEYS = frozenset({"model.vision_model.embeddings.patch_embedding.weight"})

# (original name, module parameter name): ``{x}`` stands for one dotted segment, ``{x*}`` for the rest of
# the name. One table serves both directions: loading (original -> module) and naming what is missing
# (module -> original). First match wins; CLIP's fused qkv and the routed experts are handled before it.
_RULES: tuple[tuple[str, str], ...] = (
    ("model.sam_model.patch_embed.proj.{p}", "vision.sam_model.patch_embed.projection.{p}"),
    ("model.sam_model.pos_embed", "vision.sam_model.pos_embed"),
    ("model.sam_model.blocks.{n}.norm{k}.{p}", "vision.sam_model.layers.{n}.layer_norm{k}.{p}"),
    ("model.sam_model.blocks.{n}.attn.{rest*}", "vision.sam_model.layers.{n}.attn.{rest*}"),
    ("model.sam_model.blocks.{n}.mlp.{rest*}", "vision.sam_model.layers.{n}.mlp.{rest*}"),
    ("model.sam_model.neck.0.{p}", "vision.sam_model.neck.conv1.{p}"),
    ("model.sam_model.neck.1.{p}", "vision.sam_model.neck.layer_norm1.{p}"),
    ("model.sam_model.neck.2.{p}", "vision.sam_model.neck.conv2.{p}"),
    ("model.sam_model.neck.3.{p}", "vision.sam_model.neck.layer_norm2.{p}"),
    ("model.sam_model.net_2.{p}", "vision.sam_model.proj.conv1.{p}"),
    ("model.sam_model.net_3.{p}", "vision.sam_model.proj.conv2.{p}"),
    ("model.vision_model.embeddings.{rest*}", "vision.vision_model.embeddings.{rest*}"),
    ("model.vision_model.pre_layrnorm.{p}", "vision.vision_model.pre_layrnorm.{p}"),
    ("model.vision_model.transformer.layers.{n}.{rest*}", "vision.vision_model.encoder.layers.{n}.{rest*}"),
    ("model.projector.layers.{p}", "vision.projector.{p}"),
    ("model.image_newline", "image_newline"),
    ("model.view_seperator", "view_separator"),  # sic: the original's spelling
    ("lm_head.{p}", "lm_head.{p}"),
    ("model.{rest*}", "language_model.{rest*}"),  # embed_tokens, norm, layers.N.{self_attn, mlp, norms}
)


def _compile(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{\w+\*?\})", template)
    regex = "".join(
        (f"(?P<{p[1:-2]}>.+)" if p.endswith("*}") else f"(?P<{p[1:-1]}>[^.]+)") if p.startswith("{") else re.escape(p)
        for p in parts
    )
    return re.compile(regex)


def _fill(template: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\*?\}", lambda m: values[m.group(1)], template)


_FORWARD = tuple((_compile(original), mine) for original, mine in _RULES)
_BACKWARD = tuple((_compile(mine), original) for original, mine in _RULES)


def rename(name: str, rules=_FORWARD) -> str | None:
    for pattern, template in rules:
        if match := pattern.fullmatch(name):
            return _fill(template, match.groupdict())
    return None


_CLIP_QKV = re.compile(r"model\.vision_model\.transformer\.layers\.(\d+)\.self_attn\.qkv_proj\.(weight|bias)")
_EXPERT = re.compile(r"model\.layers\.(\d+)\.mlp\.experts\.(\d+)\.(gate|up|down)_proj\.weight")


class CheckpointMismatch(RuntimeError):
    """The checkpoint's tensors do not fit the architecture its config describes."""


@dataclass(frozen=True)
class Write:
    """Copy ``source[src_slice]`` into ``parameter[dst_index]``; ``slot`` names the part filled (strict check)."""

    target: str
    slot: Any = None
    dst_index: Any = None
    src_slice: Any = None


def plan_writes(key: str, shape: tuple[int, ...], intermediate: int) -> list[Write] | None:
    """Where one original tensor goes; None when this architecture has no place for it."""
    if match := _CLIP_QKV.fullmatch(key):
        layer, kind = match.groups()
        width = shape[0] // 3
        prefix = f"vision.vision_model.encoder.layers.{layer}.self_attn."
        return [
            Write(f"{prefix}{name}_proj.{kind}", src_slice=slice(i * width, (i + 1) * width))
            for i, name in enumerate("qkv")
        ]
    if match := _EXPERT.fullmatch(key):
        layer, expert, kind = match.group(1), int(match.group(2)), match.group(3)
        prefix = f"language_model.layers.{layer}.mlp.experts."
        if kind == "down":
            return [Write(prefix + "down_proj", slot=(expert,), dst_index=expert)]
        rows = slice(0, intermediate) if kind == "gate" else slice(intermediate, 2 * intermediate)
        return [Write(prefix + "gate_up_proj", slot=(expert, kind), dst_index=(expert, rows))]
    target = rename(key)
    return [Write(target)] if target is not None else None


def expected_slots(params: dict[str, Any], num_experts: int) -> set[tuple[str, Any]]:
    """Every (parameter, slot) a complete checkpoint fills."""
    slots: set[tuple[str, Any]] = set()
    for name in params:
        if name.endswith("experts.gate_up_proj"):
            slots |= {(name, (e, kind)) for e in range(num_experts) for kind in ("gate", "up")}
        elif name.endswith("experts.down_proj"):
            slots |= {(name, (e,)) for e in range(num_experts)}
        else:
            slots.add((name, None))
    return slots


def checkpoint_files(folder: Path) -> list[Path]:
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        names = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        return [folder / name for name in names]
    single = folder / "model.safetensors"
    if single.is_file():
        return [single]
    found = sorted(folder.glob("*.safetensors"))
    if not found:
        raise CheckpointMismatch(f"no safetensors weights in {folder}")
    return found


def iter_tensors(files: list[Path], stack: ExitStack) -> Iterator[tuple[str, Callable[[], Any], tuple[int, ...]]]:
    """(name, loader, shape) for every tensor, without reading the data until asked (files stay open in ``stack``)."""
    from safetensors import safe_open

    for file in files:
        handle = stack.enter_context(safe_open(str(file), framework="pt"))
        for key in handle.keys():  # noqa: SIM118 - safe_open handles are not mappings
            shape = tuple(handle.get_slice(key).get_shape())
            yield key, (lambda h=handle, k=key: h.get_tensor(k)), shape


def load_state(model, files: list[Path], intermediate: int, num_experts: int) -> None:
    """Fill ``model``'s parameters from the original tensors; raise CheckpointMismatch before writing anything wrong."""
    with ExitStack() as stack:
        _load_state(model, iter_tensors(files, stack), intermediate, num_experts)


def _load_state(model, tensors, intermediate: int, num_experts: int) -> None:
    import torch

    params = dict(model.named_parameters())
    expected = expected_slots(params, num_experts)
    filled: set[tuple[str, Any]] = set()
    unexpected: list[str] = []
    wrong_shape: list[str] = []
    plans: list[tuple[str, Callable[[], Any], list[Write]]] = []
    for key, loader, shape in tensors:
        if key in UNUSED_KEYS:
            continue
        writes = plan_writes(key, shape, intermediate)
        if writes is None or any((w.target, w.slot) not in expected for w in writes):
            unexpected.append(key)
            continue
        for write in writes:
            target = params[write.target]
            want = tuple(target[write.dst_index].shape) if write.dst_index is not None else tuple(target.shape)
            got = _sliced_shape(shape, write.src_slice)
            if want != got:
                wrong_shape.append(f"{key} {list(shape)} -> {write.target} expects {list(want)}")
            filled.add((write.target, write.slot))
        plans.append((key, loader, writes))
    missing = sorted({_original_name(t, s) for t, s in expected - filled})
    if missing or unexpected or wrong_shape:
        raise CheckpointMismatch(_mismatch_message(missing, sorted(unexpected), wrong_shape))
    with torch.no_grad():
        for _key, loader, writes in plans:
            tensor = loader()
            for write in writes:
                source = tensor[write.src_slice] if write.src_slice is not None else tensor
                target = params[write.target]
                destination = target[write.dst_index] if write.dst_index is not None else target
                destination.copy_(source.to(device=target.device, dtype=target.dtype))
    log.info("loaded %d original tensors into %d parameters", len(plans), len(params))


def _sliced_shape(shape: tuple[int, ...], part: slice | None) -> tuple[int, ...]:
    if part is None:
        return shape
    return (len(range(*part.indices(shape[0]))), *shape[1:])


def _original_name(target: str, slot: Any) -> str:
    """Name a missing parameter (or part of one) the way the original checkpoint does."""
    if slot is not None and ".experts." in target:
        layer = target.split(".")[2]
        kind = slot[1] if len(slot) > 1 else "down"
        return f"model.layers.{layer}.mlp.experts.{slot[0]}.{kind}_proj.weight"
    if match := re.fullmatch(r"vision\.vision_model\.encoder\.layers\.(\d+)\.self_attn\.[qkv]_proj\.(\w+)", target):
        return f"model.vision_model.transformer.layers.{match.group(1)}.self_attn.qkv_proj.{match.group(2)}"
    return rename(target, _BACKWARD) or target


def _mismatch_message(missing: list[str], unexpected: list[str], wrong_shape: list[str], shown: int = 8) -> str:
    parts = ["checkpoint does not match the DeepSeek-OCR v1 architecture its config.json describes:"]
    for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape)):
        if items:
            more = f" (+{len(items) - shown} more)" if len(items) > shown else ""
            parts.append(f"{len(items)} {label}: {', '.join(items[:shown])}{more}")
    return " ".join(parts)


def read_config(folder: Path):
    from .config import DeepseekV1Config

    return DeepseekV1Config.from_dict(json.loads((folder / "config.json").read_text(encoding="utf-8")))


def load_pretrained(folder: Path, dtype, device: str, attn_implementation: str = "sdpa", config=None):
    """Build the v1 model for ``folder``'s config.json (or ``config``) and fill it from its safetensors, strictly."""
    import torch
    from transformers.initialization import no_init_weights

    from .modeling import DeepseekOcrV1ForCausalLM

    config = config if config is not None else read_config(folder)
    files = checkpoint_files(folder)
    # SAM uses a relative-position bias: flash-attention can only serve the decoder.
    config.text._attn_implementation = attn_implementation
    config.sam._attn_implementation = "sdpa"
    config.clip._attn_implementation = "sdpa"
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device), no_init_weights():
            model = DeepseekOcrV1ForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    load_state(model, files, config.text.moe_intermediate_size, config.text.n_routed_experts)
    return model.eval()
