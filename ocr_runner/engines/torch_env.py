"""Facts about the torch runtime, importable without loading any model."""

from __future__ import annotations

import importlib.util


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def gpu_name() -> str | None:
    if not cuda_available():
        return None
    import torch

    return str(torch.cuda.get_device_name(torch.cuda.current_device()))


def nvidia_device_present() -> bool:
    """Whether the kernel exposes an NVIDIA GPU, without importing torch (cheap, for start-up decisions)."""
    from pathlib import Path

    return Path("/dev/nvidiactl").exists() or any(Path("/dev").glob("nvidia[0-9]*"))


def flash_attention_importable() -> bool:
    return importlib.util.find_spec("flash_attn") is not None


def resolve_device(requested: str) -> str:
    if requested == "auto":
        return "cuda" if cuda_available() else "cpu"
    if requested.startswith("cuda") and not cuda_available():
        raise RuntimeError(f"DEVICE={requested} but torch sees no CUDA device")
    return requested
